"""Exceptions and warnings raised by entity_linker.

Every error is a ``ValueError`` subclass (so code written against spaCy's
``ValueError``s keeps working) and its message names the bad value and how to
fix it.
"""


class KBError(ValueError):
    """Base class of all knowledge-base errors."""


class KBTypeError(KBError, TypeError):
    """An argument has the wrong type (e.g. an entity id that is not a str)."""


class EmptyStringError(KBError):
    """An entity id or alias is the empty string."""


class VectorError(KBError):
    """An entity vector has the wrong length or holds NaN/inf."""


class ProbabilityError(KBError):
    """A prior probability is outside [0, 1], not finite, or a sum exceeds 1."""


class LengthMismatchError(KBError):
    """Parallel lists (entities, frequencies, vectors, probabilities) differ in length."""


class UnknownEntityError(KBError):
    """An alias refers to an entity that is not in the knowledge base."""


class UnknownAliasError(KBError):
    """An operation refers to an alias that is not in the knowledge base."""


class ReadOnlyKBError(KBError):
    """A memory-mapped knowledge base was asked to change."""


class KBNotFoundError(KBError, FileNotFoundError):
    """A KB path does not exist (a ValueError, as spaCy raises, and a FileNotFoundError)."""


class KBFormatError(KBError):
    """A knowledge-base file or byte string is corrupt, truncated or of an unknown version."""


class CorpusError(ValueError):
    """A corpus (gold docs to evaluate on, texts to link) that cannot be read;
    the message names the file and, where there is one, the line."""


class KBWarning(UserWarning):
    """Warnings about duplicate entities or aliases (the first one is kept)."""
