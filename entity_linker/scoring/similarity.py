"""Similarity of a mention's context encoding with its candidates' entity
vectors, and spaCy's cosine loss."""

import numpy


def cosine(encodings: numpy.ndarray, offsets: numpy.ndarray,
           vectors: numpy.ndarray) -> numpy.ndarray:
    """Cosine of each candidate's vector with its mention's encoding (0 for zero vectors).

    encodings: (n_mentions, L); offsets: CSR offsets of the candidates per
    mention; vectors: (n_candidates, L). RETURNS float32 (n_candidates,).
    """
    counts = numpy.diff(offsets)
    norms = numpy.linalg.norm(encodings, axis=1, keepdims=True)
    unit = numpy.divide(encodings, norms, out=numpy.zeros_like(encodings), where=norms > 0)
    dots = numpy.einsum("ij,ij->i", numpy.repeat(unit, counts, axis=0), vectors)
    vector_norms = numpy.linalg.norm(vectors, axis=1)
    return numpy.divide(dots, vector_norms, out=numpy.zeros_like(dots),
                        where=vector_norms > 0).astype(numpy.float32)


def cosine_with_grads(A: numpy.ndarray, B: numpy.ndarray):
    """Row-wise cosine of A and B, and its gradients with respect to A and to B."""
    a_norm = numpy.sqrt((A * A).sum(axis=1)) + 1e-8
    b_norm = numpy.sqrt((B * B).sum(axis=1)) + 1e-8
    cos = (A * B).sum(axis=1) / (a_norm * b_norm)
    d_a = B / (a_norm * b_norm)[:, None] - cos[:, None] * A / (a_norm**2)[:, None]
    d_b = A / (a_norm * b_norm)[:, None] - cos[:, None] * B / (b_norm**2)[:, None]
    return cos, d_a, d_b


def cosine_loss(encodings: numpy.ndarray, gold_vectors: numpy.ndarray):
    """spaCy's loss: mean of 1 - cos(encoding, gold vector), and its gradients
    with respect to the encodings and to the gold vectors."""
    cos, d_a, d_b = cosine_with_grads(encodings, gold_vectors)
    n = max(len(encodings), 1)
    return float((1.0 - cos).sum()) / n, -d_a / n, -d_b / n


def blend_similarity(model_cos, lexical_cos, weight: float):
    """The context similarity with a context encoder: the mean of the model's and the
    lexical cosine, weighted 1 : weight (the same in prediction and in the loss)."""
    return (model_cos + weight * lexical_cos) / (1.0 + weight)
