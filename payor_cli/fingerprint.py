"""A payload's 64-bit fingerprint, for a whole chunk of payloads at once.

The journal keeps a fingerprint per accepted record, never its text: a later row whose payload
has the fingerprint the journal holds for it is not sent again. A collision would skip a changed
row, so the fingerprint must spread the payloads of one key over 2^64 values as evenly as a
cryptographic hash does for data that nobody crafts on purpose, which is the case here: the
payloads are the user's own exports, and the journal is the user's own file.

How: every payload is padded with spaces to a multiple of 8 bytes and cut into 64-bit words;
each word, XORed with a constant of its position, goes through MurmurHash3's 64-bit finalizer
(a bijection with full avalanche: every input bit flips each output bit with probability ~1/2);
the words' values are summed (mod 2^64) with the payload's length, and the sum finalized again.
Two payloads that differ in one word always differ (a bijection of one term of the sum); ones
that differ in several collide only when unrelated avalanche outputs cancel exactly, about once
in 2^64. It is done by numpy on the whole chunk (a matrix of words, padded by Arrow in C++), so
the cost is a few vector operations, not a call per row.

BLAKE2b (`legacy_fingerprints`) was the fingerprint of journals written before: it is still
computed for rows that only an old journal entry can know, once, and such entries are rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import operator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)
BLOCK_WORDS = 32_768
"""Words mixed at a time (256 KiB): what a core's cache holds with room to spare."""
_LENGTH_SEED = np.uint64(0x2545F4914F6CDD1D)
_SPACES = np.frombuffer(b" " * 8, np.uint64)[0]


def _finalize(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's fmix64, in place."""
    values ^= values >> _SHIFT
    values *= _M1
    values ^= values >> _SHIFT
    values *= _M2
    values ^= values >> _SHIFT
    return values


@functools.lru_cache(maxsize=32)
def _positions(words: int) -> tuple[np.ndarray, np.ndarray]:
    """Each position's constant, and the running sum of what an all-spaces word adds there (to
    take the padding out again, so a fingerprint does not depend on how wide its group was)."""
    with np.errstate(over="ignore"):
        constants = _finalize(
            np.arange(1, words + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        )
        pad_terms = _finalize(constants ^ _SPACES)
        running = np.concatenate([np.zeros(1, np.uint64), np.cumsum(pad_terms, dtype=np.uint64)])
    return constants, running


def payload_fingerprints(payloads: pa.Array) -> np.ndarray:
    """The fingerprint (int64) of each payload; a missing payload (null) gets 0."""
    if isinstance(payloads, pa.ChunkedArray):
        payloads = payloads.combine_chunks()
    count = len(payloads)
    if count == 0:
        return np.empty(0, np.int64)
    texts = payloads if pa.types.is_string(payloads.type) else payloads.cast(pa.string())
    if texts.null_count:
        texts = texts.fill_null("")
    lengths = pc.binary_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    words = (lengths + 7) // 8
    result = np.empty(count, np.uint64)
    # payloads of similar length together, so a long one does not widen the matrix of all
    widths = np.maximum(1, 2 ** np.ceil(np.log2(np.maximum(words, 1))).astype(np.int64))
    for width in np.unique(widths):
        members = np.flatnonzero(widths == width)
        picked = texts if len(members) == count else texts.take(pa.array(members))
        result[members] = _group(picked, lengths[members], words[members], int(width))
    if payloads.null_count:
        result[np.flatnonzero(pc.is_null(payloads).to_numpy(zero_copy_only=False))] = 0
    return result.view(np.int64)


def _group(texts: pa.Array, lengths: np.ndarray, words: np.ndarray, width: int) -> np.ndarray:
    matrix = _word_matrix(texts, width)
    constants, running = _positions(width)
    sums = np.empty(len(matrix), np.uint64)
    # a block of rows at a time, in buffers made once: they stay in the CPU's cache, which
    # makes the mixing three times faster than on the whole matrix
    block = max(1, BLOCK_WORDS // width)
    mixed = np.empty((block, width), np.uint64)
    shifted = np.empty_like(mixed)
    with np.errstate(over="ignore"):
        for start in range(0, len(matrix), block):
            rows = matrix[start : start + block]
            x, t = mixed[: len(rows)], shifted[: len(rows)]
            np.bitwise_xor(rows, constants, out=x)
            for multiplier in (_M1, _M2, None):
                np.right_shift(x, _SHIFT, out=t)
                x ^= t
                if multiplier is not None:
                    x *= multiplier
            x.sum(axis=1, dtype=np.uint64, out=sums[start : start + len(rows)])
        sums -= running[width] - running[words]  # the padding beyond each payload's own words
        sums += lengths.astype(np.uint64) + _LENGTH_SEED  # never 0, the mark of no payload
        return _finalize(sums)


def _word_matrix(texts: pa.Array, width: int) -> np.ndarray:
    """The payloads as rows of `width` 64-bit words, padded with spaces."""
    size = width * 8
    if len(texts) * size < 2**31:  # a string array's offsets are 32-bit
        padded = pc.ascii_rpad(texts, size)  # pads bytes, in C++
        offsets = _offsets(padded)
        if np.all(np.diff(offsets) == size):
            data = np.frombuffer(padded.buffers()[2], np.uint8, len(padded) * size, offsets[0])
            return data.view(np.uint64).reshape(len(padded), width)
    # too large for one string array, or not padded byte for byte: the same matrix, by numpy
    offsets = _offsets(texts)
    data = np.frombuffer(texts.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    matrix = np.full((len(texts), size), 0x20, np.uint8)
    matrix[np.arange(size)[None, :] < np.diff(offsets)[:, None]] = data
    return matrix.view(np.uint64)


def _offsets(texts: pa.Array) -> np.ndarray:
    return np.frombuffer(texts.buffers()[1], np.int32, len(texts) + 1, texts.offset * 4).astype(
        np.int64
    )


_BLAKE2B_64 = functools.partial(hashlib.blake2b, digest_size=8)


def legacy_fingerprints(payloads: list[bytes]) -> np.ndarray:
    """64 bits of BLAKE2b of each payload: the fingerprints of journals of schema 2."""
    digests = b"".join(map(operator.methodcaller("digest"), map(_BLAKE2B_64, payloads)))
    return np.frombuffer(digests, dtype=">i8").astype(np.int64)
