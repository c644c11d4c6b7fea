"""Exact and near duplicates: file-byte and decoded-pixel hashes, a 64-bit DCT perceptual
hash, and cosine similarity of pretrained features; within a split and across splits."""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np

# Near duplicates: cosine similarity of L2-normalised pretrained features at or above
# NEAR_COSINE, or a perceptual hash within PHASH_HAMMING bits (out of 64) of another.
NEAR_COSINE = 0.97  # above the 99.9th percentile (0.968) of distinct demo photo crops at 224 px
PHASH_HAMMING = 6
_MAX_GROUP_PAIRS = 20  # a larger group of identical files is reported as a star around its first


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pixel_sha256(pixels: np.ndarray, original_size: tuple[int, int]) -> str:
    """Hash of the decoded uint8 pixels (at the doctor's image size) and the original size."""
    h = hashlib.sha256(np.ascontiguousarray(pixels, np.uint8).tobytes())
    h.update(repr(tuple(original_size)).encode())
    return h.hexdigest()


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)


def phash(pixels: np.ndarray) -> int:
    """64-bit DCT perceptual hash: grey, 32x32 (bilinear, antialiased), 2-D DCT, the 8x8
    lowest frequencies compared with their median (DC term excluded from the median)."""
    from PIL import Image

    arr = np.asarray(pixels, np.float32)
    grey = arr.mean(axis=-1) if arr.ndim == 3 else arr
    small = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).resize((32, 32), Image.BILINEAR)
    g = np.asarray(small, np.float64)
    low = (_DCT32 @ g @ _DCT32.T)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hamming(a: np.ndarray, b: int) -> np.ndarray:
    """Bit differences between each 64-bit hash in ``a`` (uint64 array) and ``b``."""
    x = np.bitwise_xor(a, np.uint64(b))
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def _pair(i: int, j: int, kind: str, sim: float, splits: list[str]) -> tuple:
    i, j = min(i, j), max(i, j)
    return (i, j, kind, float(sim), splits[i] != splits[j])


def exact_pairs(keys: list[str], splits: list[str]) -> list[tuple]:
    """Pairs of items with the same key: every pair of a group (a star for big groups)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        pairs = (itertools.combinations(members, 2) if len(members) <= _MAX_GROUP_PAIRS
                 else ((members[0], m) for m in members[1:]))
        out += [_pair(i, j, "exact", 1.0, splits) for i, j in pairs]
    return out


def near_pairs(features: np.ndarray, hashes: np.ndarray, splits: list[str], skip: set,
               cosine: float = NEAR_COSINE, max_bits: int = PHASH_HAMMING,
               block: int = 1024) -> list[tuple]:
    """Pairs (i < j) not in ``skip`` whose feature cosine is >= ``cosine`` or whose perceptual
    hashes differ in <= ``max_bits`` bits; the similarity given is the cosine."""
    f = np.asarray(features, np.float32)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    n = len(f)
    out = []
    for start in range(0, n, block):
        sims = f[start:start + block] @ f.T
        for r in range(sims.shape[0]):
            i = start + r
            row = sims[r, i + 1:]
            bits = hamming(hashes[i + 1:], int(hashes[i])) if n > i + 1 else np.zeros(0, int)
            for off in np.flatnonzero((row >= cosine) | (bits <= max_bits)):
                j = i + 1 + int(off)
                if (i, j) not in skip:
                    out.append(_pair(i, j, "near", float(row[off]), splits))
    return out


def find_duplicates(file_keys: list[str], pixel_keys: list[str], features: np.ndarray,
                    hashes: np.ndarray, splits: list[str], *, cosine: float = NEAR_COSINE,
                    max_bits: int = PHASH_HAMMING) -> list[tuple]:
    """``(i, j, kind, similarity, cross_split)`` for every duplicate pair: exact (same bytes,
    or same decoded pixels), then near; exact first, then by similarity, cross-split first."""
    exact = exact_pairs(file_keys, splits)
    seen = {(i, j) for i, j, *_ in exact}
    for p in exact_pairs(pixel_keys, splits):
        if (p[0], p[1]) not in seen:
            exact.append(p)
            seen.add((p[0], p[1]))
    near = near_pairs(features, hashes, splits, seen, cosine, max_bits)
    near.sort(key=lambda p: (not p[4], -p[3]))
    exact.sort(key=lambda p: (not p[4], p[0], p[1]))
    return exact + near
