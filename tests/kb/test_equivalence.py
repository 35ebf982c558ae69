"""Our InMemoryLookupKB answers exactly like spacy.kb.InMemoryLookupKB.

Both KBs are built by the same add_entity / add_alias / append_alias calls and
then compared on every read method. Ids are "Q..." and aliases "alias_..." so
that no string is one of spaCy's reserved symbols (which spaCy's StringStore
maps to small fixed ids, see the README).
"""

import os
import tempfile
import warnings

import numpy
import pytest
import spacy
import spacy.kb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entity_linker import InMemoryLookupKB

# to_disk fsyncs; on tmpfs that is free, which keeps the many hypothesis round trips fast.
FAST_TMP = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None

UNKNOWN_ALIASES = ["alias_never_added", "alias_", "Q1", "alias_Zürich?"]
UNKNOWN_ENTITIES = ["Q_never_added", "Q", "alias_0"]


def apply_op(kb, op):
    """Run one build call on kb; return ("ok", n_warnings) or ("error", exception type name)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kind = op[0]
            if kind == "entity":
                _, entity, freq, vector = op
                kb.add_entity(entity, freq, list(vector))
            elif kind == "alias":
                _, alias, entities, priors = op
                kb.add_alias(alias, list(entities), list(priors))
            else:
                _, alias, entity, prior, ignore = op
                kb.append_alias(alias, entity, prior, ignore_warnings=ignore)
        except ValueError:
            return ("error", len(caught))
    return ("ok", len(caught))


def build_both(vocab, vector_length, ops):
    ours = InMemoryLookupKB(vocab, vector_length)
    theirs = spacy.kb.InMemoryLookupKB(vocab, vector_length)
    for op in ops:
        result_ours = apply_op(ours, op)
        result_theirs = apply_op(theirs, op)
        assert result_ours == result_theirs, op
    return ours, theirs


def f32(value):
    """A float rounded to float32 (both KBs store priors, freqs and vectors as float32)."""
    return float(numpy.float32(value))


def f32_list(values):
    return numpy.asarray(values, dtype=numpy.float32).tolist()


def candidate_rows(kb, alias):
    # Both KBs hold float32 values, so their Python floats must be exactly equal.
    return [
        (c.entity_, c.alias_, float(c.prior_prob), float(c.entity_freq), f32_list(c.entity_vector))
        for c in kb.get_alias_candidates(alias)
    ]


def assert_equivalent(ours, theirs, extra_aliases=(), extra_entities=()):
    """Every read method of ours answers like theirs (spaCy's KB)."""
    assert ours.get_size_entities() == theirs.get_size_entities()
    assert len(ours) == len(theirs)
    assert ours.is_empty() == theirs.is_empty()
    assert ours.get_size_aliases() == theirs.get_size_aliases()
    assert ours.entity_vector_length == theirs.entity_vector_length
    entities = theirs.get_entity_strings()
    aliases = theirs.get_alias_strings()
    assert sorted(ours.get_entity_strings()) == sorted(entities)
    assert sorted(ours.get_alias_strings()) == sorted(aliases)
    all_aliases = list(aliases) + [a for a in extra_aliases if a not in aliases]
    all_entities = list(entities) + [e for e in extra_entities if e not in entities]
    for alias in all_aliases:
        assert ours.contains_alias(alias) == theirs.contains_alias(alias), alias
        assert candidate_rows(ours, alias) == candidate_rows(theirs, alias), alias
    for entity in all_entities:
        assert ours.contains_entity(entity) == theirs.contains_entity(entity), entity
        assert f32_list(ours.get_vector(entity)) == f32_list(theirs.get_vector(entity)), entity
    if len(all_aliases) * len(all_entities) <= 10_000:
        pairs = [(e, a) for a in all_aliases for e in all_entities]
    else:  # big KB: every (candidate, alias) pair plus a fixed sample of other pairs
        rng = numpy.random.default_rng(0)
        pairs = [(c.entity_, a) for a in all_aliases for c in theirs.get_alias_candidates(a)]
        pairs += [
            (all_entities[int(i)], all_aliases[int(j)])
            for i, j in zip(rng.integers(len(all_entities), size=3000),
                            rng.integers(len(all_aliases), size=3000))
        ]
    for entity, alias in pairs:
        assert float(ours.get_prior_prob(entity, alias)) == float(
            theirs.get_prior_prob(entity, alias)
        ), (entity, alias)


def reloaded_versions(kb, vocab, directory):
    """kb after to_bytes/from_bytes, after to_disk/from_disk (both mapped), and a copy()."""
    from_bytes = InMemoryLookupKB(vocab, 1).from_bytes(kb.to_bytes())
    kb.to_disk(directory)
    from_disk = InMemoryLookupKB(vocab, 1).from_disk(directory)
    return {"from_bytes": from_bytes, "from_disk": from_disk, "copy": from_disk.copy()}


# ------------------------------------------------------------ hypothesis KBs

# Any text but lone surrogates (not encodable as UTF-8, so no valid id for either KB).
SUFFIX = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)


@st.composite
def kb_programs(draw):
    """(vector_length, ops): a random sequence of build calls over a small id pool."""
    vector_length = draw(st.integers(0, 4))
    n_ids = draw(st.integers(1, 10))
    ids = draw(st.lists(SUFFIX, min_size=n_ids, max_size=n_ids))
    ids = [f"Q{i}{suffix}" for i, suffix in enumerate(ids)]
    alias_pool = [f"alias_{s}" for s in draw(st.lists(SUFFIX, min_size=1, max_size=8))]
    floats = st.floats(-1e4, 1e4, allow_nan=False, width=32)
    grid = st.integers(0, 16).map(lambda k: k / 16)  # exact in binary: no rounding ties
    ops = []
    # Entities first (possibly duplicated), so most aliases can refer to them.
    for entity in draw(st.lists(st.sampled_from(ids), min_size=1, max_size=14)):
        vector = draw(st.lists(floats, min_size=vector_length, max_size=vector_length))
        ops.append(("entity", entity, draw(floats), vector))
    # Aliases and appends, interleaved with late entities.
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["alias", "alias", "append", "append", "entity"]))
        if kind == "entity":
            vector = draw(st.lists(floats, min_size=vector_length, max_size=vector_length))
            ops.append(("entity", draw(st.sampled_from(ids)), draw(floats), vector))
        elif kind == "alias":
            entities = draw(st.lists(st.sampled_from(ids), max_size=4))
            priors = draw(st.lists(grid, min_size=len(entities), max_size=len(entities)))
            ops.append(("alias", draw(st.sampled_from(alias_pool)), entities, priors))
        else:
            ops.append((
                "append",
                draw(st.sampled_from(alias_pool)),
                draw(st.sampled_from(ids)),
                draw(grid),
                draw(st.booleans()),
            ))
    return vector_length, ops


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(program=kb_programs())
def test_random_kb_answers_like_spacy_kb_also_after_round_trips(nlp, program):
    vector_length, ops = program
    ours, theirs = build_both(nlp.vocab, vector_length, ops)
    assert_equivalent(ours, theirs, UNKNOWN_ALIASES, UNKNOWN_ENTITIES)
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as tmp:
        for reloaded in reloaded_versions(ours, nlp.vocab, tmp).values():
            assert_equivalent(reloaded, theirs, UNKNOWN_ALIASES, UNKNOWN_ENTITIES)


def test_readme_example_answers_like_spacy(nlp):
    ops = [
        ("entity", "Q90", 120, [1.0, 0.0, 0.0]),
        ("entity", "Q830149", 8, [0.0, 1.0, 0.0]),
        ("alias", "Paris", ["Q90", "Q830149"], [0.9, 0.1]),
    ]
    ours, theirs = build_both(nlp.vocab, 3, ops)
    assert_equivalent(ours, theirs, ["Dallas"], ["Q1"])
    assert [c.entity_ for c in ours.get_alias_candidates("Paris")] == ["Q90", "Q830149"]


def test_errors_and_warnings_match_spacy_for_each_kind_of_bad_call(nlp):
    ops = [
        ("entity", "Q1", 1.0, [1.0, 2.0]),
        ("entity", "Q2", 2.0, [3.0, 4.0]),
        ("entity", "Q1", 5.0, [9.0, 9.0]),  # duplicate entity: warning, first kept
        ("alias", "alias_a", ["Q1", "Q2"], [0.5, 0.25]),
        ("alias", "alias_a", ["Q2"], [1.0]),  # duplicate alias: warning, first kept
        ("alias", "alias_b", ["Q1", "Q404"], [0.5, 0.25]),  # unknown entity: error
        ("alias", "alias_c", ["Q1", "Q2"], [0.75, 0.5]),  # sum > 1: error
        ("alias", "alias_d", ["Q1"], [0.5, 0.5]),  # length mismatch: error
        ("append", "alias_404", "Q1", 0.1, False),  # unknown alias: error
        ("append", "alias_a", "Q404", 0.1, False),  # unknown entity: error
        ("append", "alias_a", "Q2", 0.5, False),  # sum > 1: error
        ("append", "alias_a", "Q2", 0.125, False),  # duplicate candidate: warning
        ("append", "alias_a", "Q2", 0.125, True),  # duplicate, silenced
        ("alias", "alias_e", [], []),
        ("append", "alias_e", "Q2", 1.0, False),
    ]
    ours = InMemoryLookupKB(nlp.vocab, 2)
    theirs = spacy.kb.InMemoryLookupKB(nlp.vocab, 2)
    results = [(apply_op(ours, op), apply_op(theirs, op)) for op in ops]
    assert [r[0] for r in results] == [r[1] for r in results]
    assert [r[0] for r in results] == [
        ("ok", 0), ("ok", 0), ("ok", 1), ("ok", 0), ("ok", 1), ("error", 0), ("error", 0),
        ("error", 0), ("error", 0), ("error", 0), ("error", 0), ("ok", 1), ("ok", 0),
        ("ok", 0), ("ok", 0),
    ]
    assert_equivalent(ours, theirs, UNKNOWN_ALIASES + ["alias_b", "alias_c"], ["Q404"])


# ------------------------------------------------------- a large seeded KB


def seeded_program(seed=20240611, n_entities=2000, n_aliases=2500, n_appends=600,
                   vector_length=8):
    rng = numpy.random.default_rng(seed)
    ids = [f"Q{int(x)}" for x in rng.choice(10**7, size=n_entities, replace=False)]
    ids[:4] = ["Q_Zürich", "Q_東京", "Q_🦄", "Q_Ελλάδα"]
    ops = []
    vectors = rng.normal(size=(n_entities, vector_length)).astype(numpy.float32)
    freqs = rng.integers(1, 10_000, size=n_entities).astype(numpy.float32)
    for i, entity in enumerate(ids):
        ops.append(("entity", entity, float(freqs[i]), vectors[i].tolist()))
    for i in range(0, n_entities, 97):  # duplicates: spaCy and we keep the first
        ops.append(("entity", ids[i], 1.0, [0.5] * vector_length))
    totals = {}
    alias_texts = [f"alias_{i}_{ids[i % n_entities][-3:]}" for i in range(n_aliases)]
    for alias in alias_texts:
        k = int(rng.integers(0, 6))
        chosen = rng.choice(n_entities, size=k, replace=False)
        priors = rng.dirichlet(numpy.ones(k)) * rng.uniform(0.3, 0.9) if k else numpy.zeros(0)
        priors = [float(numpy.float32(p)) for p in priors]
        ops.append(("alias", alias, [ids[j] for j in chosen], priors))
        totals[alias] = sum(priors)
    for i in range(0, n_aliases, 211):  # duplicate aliases: the first is kept
        ops.append(("alias", alias_texts[i], [ids[0]], [0.01]))
    for _ in range(n_appends):
        alias = alias_texts[int(rng.integers(n_aliases))]
        room = 0.99 - totals[alias]
        if room <= 0.001:
            continue
        prior = float(numpy.float32(rng.uniform(0.0, room)))
        ops.append(("append", alias, ids[int(rng.integers(n_entities))], prior, True))
        totals[alias] += prior
    return vector_length, ops, ids, alias_texts


@pytest.fixture(scope="module")
def seeded_pair(nlp):
    vector_length, ops, ids, aliases = seeded_program()
    ours, theirs = build_both(nlp.vocab, vector_length, ops)
    return ours, theirs, ids, aliases


def test_seeded_2000_entity_kb_answers_like_spacy(seeded_pair):
    ours, theirs, ids, aliases = seeded_pair
    assert ours.get_size_entities() == 2000
    assert ours.get_size_aliases() == 2500
    assert_equivalent(ours, theirs, UNKNOWN_ALIASES, UNKNOWN_ENTITIES)


@pytest.fixture(scope="module")
def seeded_reloaded(seeded_pair, nlp, tmp_path_factory):
    return reloaded_versions(seeded_pair[0], nlp.vocab, tmp_path_factory.mktemp("seeded"))


@pytest.mark.parametrize("how", ["from_bytes", "from_disk", "copy"])
def test_seeded_kb_answers_like_spacy_after_round_trip(seeded_pair, seeded_reloaded, how):
    _, theirs, _, _ = seeded_pair
    assert_equivalent(seeded_reloaded[how], theirs, UNKNOWN_ALIASES, UNKNOWN_ENTITIES)


def test_seeded_kb_batch_lookups_agree_with_spacy_candidates(seeded_pair, nlp):
    ours, theirs, ids, aliases = seeded_pair
    queries = aliases[::7] + UNKNOWN_ALIASES
    offsets, rows, priors = ours.lookup_aliases(queries)
    for i, alias in enumerate(queries):
        expected = [(c.entity_, f32(c.prior_prob)) for c in theirs.get_alias_candidates(alias)]
        got = [
            (ours.get_entity_id(int(r)), f32(p))
            for r, p in zip(rows[offsets[i]:offsets[i + 1]], priors[offsets[i]:offsets[i + 1]])
        ]
        assert got == expected, alias
    doc = nlp.make_doc(" ".join(queries[:50]))
    spans = [doc[i:i + 1] for i in range(len(doc))]
    for span, cands in zip(spans, ours.get_candidates_batch(spans)):
        assert [(c.entity_, f32(c.prior_prob)) for c in cands] == [
            (c.entity_, f32(c.prior_prob)) for c in theirs.get_candidates(span)
        ]
    matrix = ours.get_vectors(ids[:300] + UNKNOWN_ENTITIES)
    assert matrix.tolist() == [f32_list(theirs.get_vector(e)) for e in ids[:300] + UNKNOWN_ENTITIES]
