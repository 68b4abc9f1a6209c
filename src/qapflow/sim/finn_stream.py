"""FINN's stream word packing, as FINN's data_packing does it: element 0 in the lowest bits."""

from __future__ import annotations

import numpy as np


def pack_words(x_int: np.ndarray, folded_shape: list[int], elem_bits: int) -> list[str]:
    """Samples [N, C] -> hex words, prod(folded_shape[:-1]) per sample."""
    per_word = int(folded_shape[-1])
    mask = (1 << elem_bits) - 1
    words = []
    for row in np.asarray(x_int, np.int64).reshape(len(x_int), -1, per_word):
        for word in row:
            value = 0
            for i, v in enumerate(word.tolist()):
                value |= (int(v) & mask) << (i * elem_bits)
            words.append(f"{value:x}")
    return words


def unpack_words(words: list[int], folded_shape: list[int], elem_bits: int, signed: bool) -> np.ndarray:
    """Output words -> samples [N, C] (sign-extended where the FINN type is signed)."""
    per_word = int(folded_shape[-1])
    per_sample = int(np.prod(folded_shape[:-1]))
    mask = (1 << elem_bits) - 1
    values = np.array([[(w >> (i * elem_bits)) & mask for i in range(per_word)] for w in words], dtype=np.int64)
    if signed:
        values = np.where(values >= 1 << (elem_bits - 1), values - (1 << elem_bits), values)
    return values.reshape(len(words) // per_sample, per_sample * per_word)
