# cython: infer_types=True
"""The KB's own string tables: entity ids and alias texts, as UTF-8.

A ``StringTable`` holds n strings as one UTF-8 blob and n + 1 offsets
(string i is ``blob[offsets[i]:offsets[i + 1]]``), row-aligned with the KB's
entity or alias rows. It grows with the KB (x1.5, numpy-owned), or is a
read-only view of a file's two sections; decoding checks every offset and the
UTF-8 first, so a corrupt file raises ``KBFormatError``, never reads out of
range.

Also here: the checks of a string argument (``check_type``, ``check_string``)
and the bulk helpers of the builders, which hash and concatenate many strings
in C (``encode_strings``) and select some of them (``take_strings``).
"""
import numpy

cimport numpy as cnp
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from ..errors import EmptyStringError, KBFormatError, KBTypeError

from .hashing cimport hash_utf8

cnp.import_array()


def corrupt_error(path) -> KBFormatError:
    """The error for an index or string of a KB file that is out of range."""
    return KBFormatError(
        f"The KB loaded from {path or 'bytes'} holds an index or string out of range. "
        "The file is corrupt: check it with entity_linker.kb.format.validate(path) "
        "and rebuild it."
    )


def check_type(value, what: str) -> str:
    if not isinstance(value, str):
        raise KBTypeError(
            f"The {what} must be a str, got {type(value).__name__} {value!r}. "
            f"Convert ids to strings first, e.g. str({value!r})."
        )
    return value


def check_string(value, what: str) -> str:
    check_type(value, what)
    if len(value) == 0:
        raise EmptyStringError(f"The {what} must not be the empty string.")
    return value


cdef object grown(object array, uint64_t used, uint64_t needed):
    """The array itself if it holds ``needed`` rows, else a larger copy (x1.5)."""
    cdef uint64_t capacity = array.shape[0]
    if needed <= capacity:
        return array
    capacity = max(needed, capacity + capacity // 2, 16)
    bigger = numpy.empty((capacity,) + array.shape[1:], dtype=array.dtype)
    bigger[:used] = array[:used]
    return bigger


cdef class StringTable:
    """n UTF-8 strings, row-aligned with the KB's entities or aliases."""

    def __init__(self):
        self.offsets = numpy.zeros(1, dtype=numpy.uint64)
        self.blob = numpy.zeros(0, dtype=numpy.uint8)
        self.n = 0
        self.n_bytes = 0
        self.path = None

    @staticmethod
    def from_views(offsets, blob, uint64_t n, path) -> "StringTable":
        """A read-only table over a file's sections (offsets hold n + 1 items)."""
        cdef StringTable table = StringTable.__new__(StringTable)
        table.offsets = offsets
        table.blob = blob
        table.n = n
        table.n_bytes = len(blob)
        table.path = path
        return table

    def reserve(self, uint64_t rows, uint64_t n_bytes):
        """Grow (x1.5) to hold ``rows`` strings of ``n_bytes`` bytes in all."""
        self.offsets = grown(self.offsets, self.n + 1, rows + 1)
        self.blob = grown(self.blob, self.n_bytes, n_bytes)

    cdef void add(self, const char* utf8, uint64_t length):
        """Append one string (the caller reserved room for it)."""
        cdef uint64_t* offsets = <uint64_t*>cnp.PyArray_DATA(<cnp.ndarray>self.offsets)
        cdef char* blob = <char*>cnp.PyArray_DATA(<cnp.ndarray>self.blob)
        memcpy(blob + self.n_bytes, utf8, length)
        self.n_bytes += length
        self.n += 1
        offsets[self.n] = self.n_bytes

    def extend(self, block):
        """Append a (lengths, blob) block of strings (``encode_strings``)."""
        lengths, blob = block
        cdef uint64_t k = len(lengths)
        self.reserve(self.n + k, self.n_bytes + len(blob))
        self.offsets[self.n + 1 : self.n + k + 1] = self.n_bytes + numpy.cumsum(
            lengths, dtype=numpy.uint64
        )
        self.blob[self.n_bytes : self.n_bytes + len(blob)] = numpy.frombuffer(
            blob, dtype=numpy.uint8
        )
        self.n += k
        self.n_bytes += len(blob)

    def arrays(self):
        """(offsets [n + 1], blob [n_bytes]): the two file sections, as views."""
        return self.offsets[: self.n + 1], self.blob[: self.n_bytes]

    def block(self):
        """(lengths, blob) of all strings, copied: the argument of ``extend``."""
        offsets = numpy.asarray(self.offsets[: self.n + 1], dtype=numpy.uint64)
        return numpy.diff(offsets), numpy.array(self.blob[: int(offsets[-1])],
                                                dtype=numpy.uint8)

    def decode(self, int64_t row) -> str:
        """String ``row`` (IndexError out of 0..n-1)."""
        if row < 0 or <uint64_t>row >= self.n:
            raise IndexError(f"Row {row} is out of range (0..{self.n - 1}).")
        start = int(self.offsets[row])
        end = int(self.offsets[row + 1])
        if not (start <= end <= len(self.blob)):
            raise corrupt_error(self.path)
        try:
            return self.blob[start:end].tobytes().decode("utf8")
        except UnicodeDecodeError:
            raise corrupt_error(self.path) from None

    def decode_all(self) -> list:
        """Every string, in row order, decoded in one C loop."""
        cdef int64_t n = self.n, i
        # uint64 offsets past 2**63 turn negative here, and fail the check.
        cdef const int64_t[::1] bounds = numpy.ascontiguousarray(self.offsets[: n + 1],
                                                                 dtype=numpy.int64)
        cdef const unsigned char[::1] data = self.blob
        cdef const char* base = NULL
        if data.shape[0]:
            base = <const char*>&data[0]
        strings = []
        try:
            for i in range(n):
                if bounds[i] < 0 or bounds[i] > bounds[i + 1] or bounds[i + 1] > data.shape[0]:
                    raise corrupt_error(self.path)
                if bounds[i] == bounds[i + 1]:  # base may be NULL
                    strings.append("")
                else:
                    strings.append(PyUnicode_DecodeUTF8(<char*>base + bounds[i],
                                                        bounds[i + 1] - bounds[i], NULL))
        except UnicodeDecodeError:
            raise corrupt_error(self.path) from None
        return strings


def encode_strings(strings, what: str):
    """Check, hash and concatenate many strings in two C loops.

    RETURNS (hashes uint64[n], (lengths uint64[n], blob uint8[total])).
    """
    cdef Py_ssize_t n = len(strings), i = 0, length, total = 0
    cdef const char* utf8
    hashes = numpy.empty(n, dtype=numpy.uint64)
    lengths = numpy.empty(n, dtype=numpy.uint64)
    cdef uint64_t[::1] hash_out = hashes
    cdef uint64_t[::1] length_out = lengths
    for text in strings:
        if not isinstance(text, str) or len(<str>text) == 0:
            check_string(text, f"{what} at position {i}")
        utf8 = PyUnicode_AsUTF8AndSize(text, &length)
        hash_out[i] = hash_utf8(utf8, length)
        length_out[i] = length
        total += length
        i += 1
    blob = numpy.empty(total, dtype=numpy.uint8)
    cdef char* out = <char*>cnp.PyArray_DATA(<cnp.ndarray>blob)
    total = 0
    for text in strings:
        utf8 = PyUnicode_AsUTF8AndSize(text, &length)
        memcpy(out + total, utf8, length)
        total += length
    return hashes, (lengths, blob)


def take_strings(block, keep):
    """The (lengths, blob) block of the strings at positions ``keep``."""
    lengths, blob = block
    starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]]).astype(numpy.int64)
    kept = lengths[keep].astype(numpy.int64)
    index = numpy.repeat(starts[keep] - numpy.concatenate([[0], numpy.cumsum(kept)[:-1]]),
                         kept) + numpy.arange(int(kept.sum()), dtype=numpy.int64)
    return lengths[keep], blob[index]
