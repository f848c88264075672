"""Overlapping tiles and blending weights for prediction on large grids.

Tiles overlap by ``overlap`` cells; each tile's prediction is weighted by a ramp that
falls towards the tile edges (where a convolution sees zero padding instead of real
context), and the weighted sum is divided by the sum of weights, so seams vanish and
every cell gets a convex combination of predictions.
"""

from __future__ import annotations

import math

import numpy as np


def tile_origins(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``[0, size)`` evenly."""
    if size <= tile:
        return [0]
    overlap = min(overlap, tile - 1)
    n = math.ceil((size - overlap) / (tile - overlap))
    return [int(round(v)) for v in np.linspace(0, size - tile, n)]


def fitted_tile(size: int, max_tile: int, overlap: int, multiple: int = 1) -> int:
    """Smallest tile length (a multiple of ``multiple``) needing as few tiles as ``max_tile``.

    Fully convolutional models can use any tile length, so a 1024-cell axis with a
    512 maximum uses three 363-cell tiles instead of three 512-cell ones.
    """
    if size <= max_tile:
        return size
    n = math.ceil((size - overlap) / (max_tile - overlap))
    tile = math.ceil((size + (n - 1) * overlap) / n)
    return min(max_tile, -(-tile // multiple) * multiple)


def blend_weights(height: int, width: int, overlap: int) -> np.ndarray:
    """(height, width) float32 weights: 1 inside, ramping down over ``overlap`` cells."""

    def ramp(n):
        if overlap <= 0:
            return np.ones(n, dtype=np.float32)
        i = np.arange(n)
        edge = np.minimum(i + 1, n - i).astype(np.float32)
        return np.minimum(edge / (overlap + 1), 1.0)

    return np.outer(ramp(height), ramp(width)).astype(np.float32)
