"""The context encoder: one vector per entity mention, in the KB's vector space.

    docs ─ tok2vec ─────────────┐
        └ mention_windows ──────┴─ mention_pool ─ Maxout ─ Linear ─▶ (n_mentions, nO)

``mention_windows`` finds, for every mention in ``doc.ents``, its token span
and the window of ``n_sents`` sentences around it. ``mention_pool`` averages
the token vectors over the mention, over the window and over the whole doc,
and concatenates the three, so two mentions in one sentence get different
encodings (spaCy pools the window only). Training and prediction run this
same model over whole batches of docs: one tok2vec pass per batch.
"""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from thinc.api import Linear, Maxout, Model, chain, tuplify
from thinc.types import Floats2d, Ints2d

N_POOLS = 3  # mention mean, window mean, doc mean


def build_nel_encoder(
    tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None
) -> Model[List[Doc], Floats2d]:
    """Build the mention encoder (registered as ``entity_linker.EntityLinker.v1``).

    tok2vec (Model[List[Doc], List[Floats2d]]): The token-to-vector layer.
    nO (Optional[int]): Output width: the KB's entity_vector_length (set at initialize).
    RETURNS (Model[List[Doc], Floats2d]): One row per entity mention of the docs.
    """
    width = tok2vec.maybe_get_dim("nO")
    windows = mention_windows()
    hidden = Maxout(nO=width, nI=width * N_POOLS if width else None, nP=2, dropout=0.0)
    output_layer = Linear(nO=nO, nI=width)
    model = chain(tuplify(tok2vec, windows), mention_pool(), hidden, output_layer)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("mention_windows", windows)
    model.set_ref("output_layer", output_layer)
    return model


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
        ops.asarray2i(doc_windows(doc, n_sents) or ops.alloc2i(0, 4), dtype="int32")
        for doc in docs
    ]
    return out, lambda d_out: []


def mention_pool() -> Model[Tuple[List[Floats2d], List[Ints2d]], Floats2d]:
    """Concatenate the mean token vector of each mention, its window and its doc."""
    return Model("mention_pool", _pool_forward)


def _pool_forward(
    model: Model, inputs: Tuple[List[Floats2d], List[Ints2d]], is_train: bool
) -> Tuple[Floats2d, Callable]:
    tokvecs, windows = inputs
    xp = model.ops.xp
    width = tokvecs[0].shape[1] if tokvecs else 0
    lengths = [len(X) for X in tokvecs]
    counts = [len(W) for W in windows]
    # All docs in one array: each mean is (prefix[end] - prefix[start]) / length.
    doc_starts = xp.asarray([0] + lengths, dtype="int64").cumsum()
    X = xp.vstack(tokvecs) if sum(lengths) else xp.zeros((0, width), dtype="float32")
    n_mentions = sum(counts)
    if n_mentions == 0:
        return model.ops.alloc2f(0, width * N_POOLS), lambda dY: (
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
    starts = spans[:, 0::2]
    ends = spans[:, 1::2]
    sizes = xp.maximum(ends - starts, 1).astype("float32")
    prefix = xp.zeros((len(X) + 1, width), dtype="float32")
    xp.cumsum(X, axis=0, out=prefix[1:])
    Y = (prefix[ends] - prefix[starts]) / sizes[:, :, None]
    Y = Y.reshape(n_mentions, N_POOLS * width)

    def backprop(dY: Floats2d) -> Tuple[List[Floats2d], List]:
        d = (dY.reshape(n_mentions, N_POOLS, width) / sizes[:, :, None]).reshape(-1, width)
        # A difference array: +g at each span start, -g at its end, then cumsum.
        diff = xp.zeros((len(X) + 1, width), dtype="float32")
        xp.add.at(diff, starts.reshape(-1), d)
        xp.add.at(diff, ends.reshape(-1), -d)
        dX = xp.cumsum(diff[:-1], axis=0)
        return [dX[doc_starts[i] : doc_starts[i + 1]] for i in range(len(tokvecs))], []

    return Y, backprop
