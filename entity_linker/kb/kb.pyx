"""The abstract knowledge base: the interface the EntityLinker relies on.

Same API as ``spacy.kb.KnowledgeBase``: subclasses implement
``get_candidates``, ``get_vector`` and serialization.
"""
from pathlib import Path
from typing import Iterable, Tuple, Union

from .candidate import Candidate


cdef class KnowledgeBase:
    """Stores unique identifiers for entities and their textual aliases, to
    support linking mentions to real-world concepts.

    This is an abstract class; use ``InMemoryLookupKB`` or subclass it.
    """

    def __init__(self, vocab, entity_vector_length: int):
        if type(self) is KnowledgeBase:
            raise TypeError(
                "KnowledgeBase is an abstract class and cannot be instantiated. "
                "Use entity_linker.InMemoryLookupKB, or subclass KnowledgeBase."
            )
        self.vocab = vocab
        self.entity_vector_length = entity_vector_length

    def get_candidates_batch(self, mentions: Iterable) -> Iterable[Iterable[Candidate]]:
        """Candidates for many mentions; one (possibly empty) list per mention.

        mentions (Iterable[Span]): The mentions.
        RETURNS (Iterable[Iterable[Candidate]]): Candidates per mention.
        """
        return [self.get_candidates(span) for span in mentions]

    def get_candidates(self, mention) -> Iterable[Candidate]:
        """Candidate entities for one mention (an empty list when none).

        mention (Span): The mention.
        RETURNS (Iterable[Candidate]): The candidates.
        """
        raise NotImplementedError(self._abstract("get_candidates"))

    def get_vectors(self, entities: Iterable[str]) -> Iterable[Iterable[float]]:
        """Vectors of several entities, in order."""
        return [self.get_vector(entity) for entity in entities]

    def get_vector(self, str entity) -> Iterable[float]:
        """The vector of one entity."""
        raise NotImplementedError(self._abstract("get_vector"))

    def to_bytes(self, **kwargs) -> bytes:
        """Serialize the KB to bytes."""
        raise NotImplementedError(self._abstract("to_bytes"))

    def from_bytes(self, bytes_data: bytes, *, exclude: Tuple[str] = tuple()):
        """Load the KB from bytes."""
        raise NotImplementedError(self._abstract("from_bytes"))

    def to_disk(self, path: Union[str, Path], exclude: Iterable[str] = tuple()) -> None:
        """Write the KB to a directory."""
        raise NotImplementedError(self._abstract("to_disk"))

    def from_disk(self, path: Union[str, Path], exclude: Iterable[str] = tuple()) -> None:
        """Load the KB from a directory."""
        raise NotImplementedError(self._abstract("from_disk"))

    def _entity_string(self, entity_hash, entity_row):
        """The id string of an entity; subclasses with a string table override this."""
        return self.vocab.strings[entity_hash]

    def _alias_string(self, alias_hash, alias_row):
        """The text of an alias; subclasses with a string table override this."""
        return self.vocab.strings[alias_hash]

    def _abstract(self, method):
        return (
            f"{type(self).__name__} must implement KnowledgeBase.{method}() "
            "to be used here."
        )
