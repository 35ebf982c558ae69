# cython: boundscheck=False, wraparound=False
"""normalize.py's normalisation of alias and mention texts, done in C: ``TextFolder``.

ASCII texts are folded from their UTF-8 bytes, others from their code points
after ``decompose``. The alias index (alias_index.pyx) keys and looks up its
normalised forms with it.
"""
import numpy

from cpython.unicode cimport (PyUnicode_4BYTE_KIND, PyUnicode_AsUTF8AndSize,
                              PyUnicode_FromKindAndData)
from cymem.cymem cimport Pool
from libc.stdint cimport uint32_t
from libc.string cimport memcpy

from ..errors import KBError
from .normalize import decompose, fold_char


def _normalize_many(normalizer, texts) -> list:
    """normalizer.normalize_many, folded in C."""
    cdef TextFolder folder = TextFolder(normalizer)
    return [folder.normalize(_checked_str(text)) for text in texts]


def _checked_str(text) -> str:
    if not isinstance(text, str):
        raise KBError(f"Expected str, got {type(text).__name__} {text!r}.")
    return text


cdef class TextFolder:
    """normalize.py's normalisation in C, into buffers it owns: ASCII texts are
    folded from their UTF-8 bytes, others from their code points after
    ``decompose`` (unicodedata's NFKC, case folding and NFD).

    ``fold`` leaves the folded text in ``buffer`` until the next call; read it
    before running any Python code that could use the same folder.
    """

    def __init__(self, normalizer):
        self.expansions = {key.encode("ascii"): value.encode("utf8")
                           for key, value in normalizer.expansions.items() if key.isascii()}
        self.longest_key = max(map(len, self.expansions), default=0)
        self.longest_value = max(map(len, self.expansions.values()), default=0)
        self.words = dict(normalizer.expansions)
        self.longest_word = max(map(len, self.words), default=0)
        self.longest_replacement = max(map(len, self.words.values()), default=0)
        self.mem = Pool()
        self.capacity = 256
        self.buffer = <char*>self.mem.alloc(self.capacity, 1)
        self.wide_capacity = 256
        self.wide = <Py_UCS4*>self.mem.alloc(self.wide_capacity, sizeof(Py_UCS4))

    cdef Py_ssize_t fold(self, str text, const char** utf8, Py_ssize_t* length) except -2:
        """Fold text into buffer; the folded length, or -1 when text is not ASCII.
        Sets utf8/length to the text's own UTF-8 bytes."""
        utf8[0] = PyUnicode_AsUTF8AndSize(text, length)
        cdef size_t needed = length[0] * (self.longest_value + 2) + 1
        if needed > self.capacity:
            self.buffer = <char*>self.mem.realloc(self.buffer, needed)
            self.capacity = needed
        return _fold_ascii(utf8[0], length[0], self.buffer, self.expansions, self.longest_key)

    cdef str fold_unicode(self, str text):
        """The normalised key of a text (any; meant for those not ASCII)."""
        cdef str decomposed = decompose(text)
        cdef size_t needed = len(decomposed) * (self.longest_replacement + 2) + 1
        if needed > self.wide_capacity:
            self.wide = <Py_UCS4*>self.mem.realloc(self.wide, needed * sizeof(Py_UCS4))
            self.wide_capacity = needed
        cdef Py_ssize_t size = _fold_decomposed(decomposed, self.wide, self.words,
                                                self.longest_word)
        return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, self.wide, size)

    cdef str normalize(self, str text):
        """The normalised key of a text, as the normaliser computes it."""
        cdef const char* utf8
        cdef Py_ssize_t length
        cdef Py_ssize_t size = self.fold(text, &utf8, &length)
        if size < 0:
            return self.fold_unicode(text)
        return self.buffer[:size].decode("utf8")


cdef Py_ssize_t _fold_ascii(const char* text, Py_ssize_t length, char* out,
                            dict expansions, Py_ssize_t longest_key) except -2:
    """normalize.py's folding of an ASCII text into out; its length, or -1 if
    the text is not ASCII. ``out`` holds length * (longest expansion + 2) bytes."""
    cdef Py_ssize_t i, size = 0, token = 0, words = 0
    cdef unsigned char c
    cdef bint in_token = False
    for i in range(length + 1):
        c = <unsigned char>text[i] if i < length else 32
        if c >= 128:
            return -1
        if c == 46 or c == 39 or c == 96:  # . ' ` sit inside words: deleted
            continue
        if (48 <= c <= 57) or (97 <= c <= 122) or (65 <= c <= 90):
            if not in_token:
                words += 1
                if words > 1:  # a space after every word, even one expanded to ""
                    out[size] = 32
                    size += 1
                token = size
                in_token = True
            out[size] = <char>(c + 32 if 65 <= c <= 90 else c)
            size += 1
        elif in_token:
            in_token = False
            if size - token <= longest_key:
                replacement = expansions.get(out[token:size])
                if replacement is not None:
                    size = token + len(replacement)
                    memcpy(out + token, <const char*>replacement, len(replacement))
    return size


# fold_char's verdict on each code point, cached for the C folding.
cdef enum:
    _UNKNOWN = 0
    _KEPT
    _SPACE
    _DELETED
cdef unsigned char[::1] _char_classes = numpy.zeros(0x110000, dtype=numpy.uint8)


cdef unsigned char _char_class(Py_UCS4 c) except 0:
    """How step 4 treats code point c (below 0x110000, so always in the table)."""
    cdef unsigned char kind = _char_classes[c]
    if kind == _UNKNOWN:
        value = fold_char(<uint32_t>c)  # a Py_UCS4 would pass as a str
        kind = _DELETED if value is None else _SPACE if value == " " else _KEPT
        _char_classes[c] = kind
    return kind


cdef Py_ssize_t _fold_decomposed(str text, Py_UCS4* out, dict words,
                                 Py_ssize_t longest_word) except -1:
    """Steps 4 and 5 of normalize.py on a decomposed text, into out (room for
    len(text) * (longest replacement + 2) + 1 code points); the folded length."""
    cdef Py_ssize_t size = 0, token = 0, n_words = 0
    cdef bint in_token = False
    cdef unsigned char kind
    cdef Py_UCS4 c
    for c in text:
        kind = _char_class(c)
        if kind == _DELETED:
            continue
        if kind == _KEPT:
            if not in_token:
                n_words += 1
                if n_words > 1:
                    out[size] = 32
                    size += 1
                token = size
                in_token = True
            out[size] = c
            size += 1
        elif in_token:
            in_token = False
            size = _expand_word(out, token, size, words, longest_word)
    if in_token:
        size = _expand_word(out, token, size, words, longest_word)
    return size


cdef Py_ssize_t _expand_word(Py_UCS4* out, Py_ssize_t token, Py_ssize_t size, dict words,
                             Py_ssize_t longest_word) except -1:
    """Replace the word out[token:size] with its expansion, if it has one;
    the new size."""
    cdef Py_UCS4 c
    if size - token > longest_word:
        return size
    replacement = words.get(PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out + token,
                                                      size - token))
    if replacement is None:
        return size
    for c in <str>replacement:
        out[token] = c
        token += 1
    return token
