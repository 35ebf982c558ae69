"""The context encoder: one vector per entity mention, in the KB's vector space.

    docs ─ tok2vec ─────────────┐
        └ mention_windows ──────┴─ mention_pool ─ (residual) Maxout ─ Linear ─▶ (n_mentions, nO)

``mention_windows`` finds, for every mention in ``doc.ents``, its token span
and the window of ``n_sents`` sentences around it. ``mention_pool`` averages
the token vectors over some of: the mention, its window, the whole doc, and
concatenates them. v2 (the default) pools the window and the doc through a
residual Maxout; v1 pools all three through a plain Maxout. Training and
prediction run this same model over whole batches of docs: one tok2vec pass
per batch.
"""

from typing import Callable, List, Optional, Sequence, Tuple

import numpy
from spacy.attrs import ENT_IOB, ENT_KB_ID, ENT_TYPE, NORM, ORTH, SENT_START, SPACY
from spacy.tokens import Doc
from thinc.api import HashEmbed, Linear, Maxout, Model, chain, tuplify, zero_init
from thinc.api import residual as with_residual
from thinc.types import Floats2d, Ints2d

# The spans a mention's encoding averages over, in the order they are concatenated.
POOLS = ("mention", "window", "doc")
CONTEXTS = ("doc", "windows")
# user_data key of the docs that context_windows cuts: their mentions' rows.
_WINDOW_ROWS = "entity_linker.window_rows"
_CUT_ATTRS = [ORTH, SPACY, NORM, ENT_IOB, ENT_TYPE, ENT_KB_ID, SENT_START]


def build_nel_encoder(
    tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None, context: str = "doc"
) -> Model[List[Doc], Floats2d]:
    """Build the mention encoder (registered as ``entity_linker.EntityLinker.v1``).

    tok2vec (Model[List[Doc], List[Floats2d]]): The token-to-vector layer.
    nO (Optional[int]): Output width: the KB's entity_vector_length (set at initialize).
    context (str): "doc": the tok2vec reads whole docs, and the doc's mean
        is the third pool. "windows": it reads only the mentions' windows of
        n_sents sentences (as spaCy's linker does), each window standing in
        for the doc: much less work on long docs whose mentions sit in a few
        sentences. Needs the linker's own tok2vec (a listener sees whole docs).
    RETURNS (Model[List[Doc], Floats2d]): One row per entity mention of the docs.
    """
    return _build_encoder(tok2vec, nO, context, POOLS, residual=False)


def build_nel_encoder_v2(
    tok2vec: Model[List[Doc], List[Floats2d]],
    nO: Optional[int] = None,
    context: str = "doc",
    pools: Sequence[str] = ("window", "doc"),
    residual: bool = True,
) -> Model[List[Doc], Floats2d]:
    """Build the mention encoder (registered as ``entity_linker.EntityLinker.v2``).

    The mean token vectors of the chosen ``pools`` are concatenated and go
    through a residual Maxout block and a Linear output layer. Unlike v1, the
    default pools leave out the mention's own tokens: a separate mention pool
    lets the model memorise each alias (in effect, its prior) instead of
    learning from the context, which slowed learning 2-3x in the ablations
    (benchmarks/learning_curves.py, BENCHMARKS.md); the residual block adds a little
    more speed.

    tok2vec (Model[List[Doc], List[Floats2d]]): The token-to-vector layer.
    nO (Optional[int]): Output width: the KB's entity_vector_length (set at initialize).
    context (str): "doc" or "windows", as in v1.
    pools (Sequence[str]): Which means to concatenate: of the "mention" tokens,
        of its "window" of n_sents sentences, of the whole "doc".
    residual (bool): Wrap the Maxout in a residual connection.
    RETURNS (Model[List[Doc], Floats2d]): One row per entity mention of the docs.
    """
    return _build_encoder(tok2vec, nO, context, pools, residual=residual)


def _build_encoder(tok2vec, nO, context: str, pools: Sequence[str], residual: bool):
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}.")
    pools = list(pools)
    if not pools or any(p not in POOLS for p in pools) or len(set(pools)) != len(pools):
        raise ValueError(
            f"pools must name each of {', '.join(POOLS)} at most once (and at least one), "
            f"got {pools!r}."
        )
    if context == "windows" and tok2vec.name == "tok2vec-listener":
        raise ValueError(
            "context = \"windows\" runs the linker's tok2vec over the mentions' windows, "
            "but this tok2vec listens to a shared tok2vec that reads whole docs. Use "
            "context = \"doc\" with a listener, or give the linker its own tok2vec."
        )
    width = tok2vec.maybe_get_dim("nO")
    pooled_width = width * len(pools) if width else None
    windows = mention_windows()
    if residual:
        hidden = with_residual(Maxout(nO=pooled_width, nI=pooled_width, nP=2, dropout=0.0))
        output_layer = Linear(nO=nO, nI=pooled_width)
    else:
        hidden = Maxout(nO=width, nI=pooled_width, nP=2, dropout=0.0)
        output_layer = Linear(nO=nO, nI=width)
    model = chain(tuplify(tok2vec, windows), mention_pool(pools), hidden, output_layer)
    if context == "windows":
        model = chain(context_windows(), model)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("mention_windows", windows)
    model.set_ref("output_layer", output_layer)
    model.attrs["context"] = context
    return model


def build_entity_correction(width: int, n_rows: int, seed: int = 7) -> Model:
    """A trainable correction of the KB's entity vectors: entity key (uint64)
    -> (width,) vector, added to the entity's KB vector when scoring.

    A hashed embedding table (each key sums 4 of ``n_rows`` rows), so memory is
    ``n_rows * width`` floats however many entities the KB holds; it starts at
    zero (the KB vectors unchanged) and learns for the entities seen in training.
    Its output is multiplied by ``attrs["gain"]`` (set with ``set_correction_gain``
    from the KB's vectors): Adam moves a weight by about the learning rate per
    step, which is tiny next to KB vectors of any size; the gain makes a step
    a fixed share of the KB vectors' scale.
    """
    embed = HashEmbed(nO=width, nV=n_rows, seed=seed, initializer=zero_init)
    return Model("entity_correction", _correction_forward, init=_correction_init,
                 layers=[embed], attrs={"gain": 1.0}, dims={"nO": width})


# A correction step of Adam's default learning rate (0.001) moves a coordinate by
# 1% of the KB vectors' RMS coordinate: 100 steps can move it by one RMS.
CORRECTION_GAIN = 10.0


def set_correction_gain(correction: Model, kb_vectors) -> None:
    """Scale the correction to the KB's vectors (their RMS coordinate, from a sample)."""
    sample = numpy.asarray(kb_vectors[:10000], dtype=numpy.float64)
    rms = float(numpy.sqrt((sample ** 2).mean())) if sample.size else 0.0
    correction.attrs["gain"] = CORRECTION_GAIN * (rms if rms > 0 else 1.0)


def _correction_init(model: Model, X=None, Y=None) -> None:
    model.layers[0].initialize()  # back to zeros


def _correction_forward(model: Model, keys, is_train: bool):
    gain = model.attrs["gain"]
    delta, backprop = model.layers[0](keys, is_train)
    return delta * gain, lambda d_delta: backprop(d_delta * gain)


def context_windows(n_sents: int = 0) -> Model[List[Doc], List[Doc]]:
    """The docs cut down to their mentions' windows: one Doc per run of
    overlapping windows, in order, so the mentions keep their order."""
    return Model("context_windows", _context_windows_forward, attrs={"n_sents": n_sents})


def _context_windows_forward(model: Model, docs: List[Doc], is_train: bool):
    n_sents = model.attrs["n_sents"]
    out: List[Doc] = []
    for doc in docs:
        rows = doc_windows(doc, n_sents)
        merged: List[List[int]] = []
        owners: List[int] = []  # the merged window of each mention
        # Window starts never decrease along doc.ents, so one pass merges overlaps.
        for _, _, start, end in rows:
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
            owners.append(len(merged) - 1)
        if merged and merged != [[0, len(doc)]]:
            windows = _cut(doc, merged)
            for window in windows:
                window.user_data[_WINDOW_ROWS] = []
            # The mentions' rows in their window's coordinates, so that
            # mention_windows need not find them again in the new docs.
            for (m_start, m_end, w_start, w_end), owner in zip(rows, owners):
                shift = merged[owner][0]
                windows[owner].user_data[_WINDOW_ROWS].append(
                    (m_start - shift, m_end - shift, w_start - shift, w_end - shift))
            out.extend(windows)
        elif merged:
            out.append(doc)
    if not out and docs:
        out.append(docs[0])  # no mention at all: keep one doc so the pooled width is known
    return out, lambda d_out: []


def _cut(doc: Doc, spans: List[List[int]]) -> List[Doc]:
    """New docs of the token ranges, with what the encoder reads: the words,
    token norms (a tokenizer exception may set them), entities and sentence
    starts. Much cheaper than Span.as_doc, which copies every attribute."""
    columns = doc.to_array(_CUT_ATTRS)
    orths = columns[:, 0].tolist()
    spaces = columns[:, 1].astype(bool).tolist()
    strings = doc.vocab.strings
    out = []
    for start, end in spans:
        window = Doc(doc.vocab, words=[strings[o] for o in orths[start:end]],
                     spaces=spaces[start:end])
        part = columns[start:end, 2:].copy()
        part[0, -1] = 1  # a window starts a sentence
        window.from_array(_CUT_ATTRS[2:], part)
        out.append(window)
    return out


def mention_windows(n_sents: int = 0) -> Model[List[Doc], List[Ints2d]]:
    """For each doc, an (n_ents, 4) array: mention start/end, window start/end (tokens)."""
    return Model("mention_windows", _windows_forward, attrs={"n_sents": n_sents})


def doc_windows(doc: Doc, n_sents: int) -> List[Tuple[int, int, int, int]]:
    if not doc.ents:
        return []
    if doc.has_annotation("SENT_START"):
        sent_starts = [sent.start for sent in doc.sents]
    else:
        sent_starts = [0]  # no sentence boundaries: the whole doc is the window
    bounds = sent_starts + [len(doc)]
    rows = []
    sent = 0
    for ent in doc.ents:  # ents are sorted, so the sentence index only moves forward
        while sent + 1 < len(sent_starts) and bounds[sent + 1] <= ent.start:
            sent += 1
        last = sent
        while last + 1 < len(sent_starts) and bounds[last + 1] < ent.end:
            last += 1
        first_window = max(0, sent - n_sents)
        last_window = min(len(sent_starts) - 1, last + n_sents)
        rows.append((ent.start, ent.end, bounds[first_window], bounds[last_window + 1]))
    return rows


def _windows_forward(model: Model, docs: List[Doc], is_train: bool):
    n_sents = model.attrs["n_sents"]
    ops = model.ops
    out = [
        ops.asarray2i(doc.user_data.get(_WINDOW_ROWS) or doc_windows(doc, n_sents)
                      or ops.alloc2i(0, 4), dtype="int32")
        for doc in docs
    ]
    return out, lambda d_out: []


def mention_pool(pools: Sequence[str] = POOLS
                 ) -> Model[Tuple[List[Floats2d], List[Ints2d]], Floats2d]:
    """Concatenate the mean token vectors of each mention's ``pools``: of the
    mention itself, its window and its doc (in that order)."""
    columns = [POOLS.index(p) for p in POOLS if p in pools]
    return Model("mention_pool", _pool_forward, attrs={"pools": columns})


def _pool_forward(
    model: Model, inputs: Tuple[List[Floats2d], List[Ints2d]], is_train: bool
) -> Tuple[Floats2d, Callable]:
    tokvecs, windows = inputs
    xp = model.ops.xp
    width = tokvecs[0].shape[1] if tokvecs else 0
    lengths = [len(X) for X in tokvecs]
    counts = [len(W) for W in windows]
    columns = model.attrs["pools"]
    n_pools = len(columns)
    # All docs in one array: each mean is (prefix[end] - prefix[start]) / length.
    doc_starts = xp.asarray([0] + lengths, dtype="int64").cumsum()
    X = xp.vstack(tokvecs) if sum(lengths) else xp.zeros((0, width), dtype="float32")
    n_mentions = sum(counts)
    if n_mentions == 0:
        return model.ops.alloc2f(0, width * n_pools), lambda dY: (
            [model.ops.alloc2f(n, width) for n in lengths], []
        )
    W = xp.vstack([w for w in windows if len(w)]).astype("int64")
    shift = xp.repeat(doc_starts[:-1], counts)
    doc_of = xp.repeat(xp.arange(len(tokvecs)), counts)
    # (start, end) of the mention, its window and its doc, in the joined array.
    spans = xp.stack([
        W[:, 0] + shift, W[:, 1] + shift,
        W[:, 2] + shift, W[:, 3] + shift,
        doc_starts[doc_of], doc_starts[doc_of + 1],
    ], axis=1)
    starts = spans[:, 0::2][:, columns]
    ends = spans[:, 1::2][:, columns]
    sizes = xp.maximum(ends - starts, 1).astype("float32")
    prefix = xp.zeros((len(X) + 1, width), dtype="float32")
    xp.cumsum(X, axis=0, out=prefix[1:])
    Y = (prefix[ends] - prefix[starts]) / sizes[:, :, None]
    Y = Y.reshape(n_mentions, n_pools * width)

    def backprop(dY: Floats2d) -> Tuple[List[Floats2d], List]:
        d = (dY.reshape(n_mentions, n_pools, width) / sizes[:, :, None]).reshape(-1, width)
        # A difference array: +g at each span start, -g at its end, then cumsum.
        diff = xp.zeros((len(X) + 1, width), dtype="float32")
        xp.add.at(diff, starts.reshape(-1), d)
        xp.add.at(diff, ends.reshape(-1), -d)
        dX = xp.cumsum(diff[:-1], axis=0)
        return [dX[doc_starts[i] : doc_starts[i + 1]] for i in range(len(tokvecs))], []

    return Y, backprop
