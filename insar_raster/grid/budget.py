"""Size before work for a gridded cube: :func:`estimate_cube`.

Sizes are estimates: the raw size is exact (cells x epochs x 4 B of float32 plus the
per-cell layers); the size after compression assumes that masked (NaN) cells cost
:data:`MASKED_RATIO` of their raw size and that valid ones do not compress
(:data:`VALID_RATIO`), with the share of valid cells bounded from the MPs' count and the
gap distance. Peak memory is the working set of the gridder (see
:func:`insar_raster.grid.gridding.grid_points`).

The rest of the size check (:class:`Estimate`, :func:`check_budget`, the points and
raster estimates, sizes as text) lives in :mod:`insar_raster.io.budget`, which every
output uses; its names are importable from here too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from insar_raster.io.budget import (  # noqa: F401  (the size check, importable from here as before)
    DEFAULT_MAX_OUTPUT_SIZE,
    MAX_CELLS_PER_MP,
    MIN_CELLS_CHECKED,
    Estimate,
    check_budget,
    estimate_points,
    estimate_points_cache,
    estimate_raster,
    format_size,
    free_space,
    parse_size,
)

#: Compressed size of a masked (all-NaN) cell relative to its raw size (zlib/deflate).
MASKED_RATIO = 0.01
#: Compressed size of a valid float32 value relative to its raw size (noise-like data).
VALID_RATIO = 1.0
#: Bytes per cell of the per-cell layers (``mp_count`` int32, ``distance_to_mp`` float32).
LAYER_BYTES = 8
#: Output formats whose writer compresses (suffix -> True).
COMPRESSED_FORMATS = {
    ".nc": True,
    ".zarr": True,
    ".tif": True,
    ".tiff": True,
    ".csv": False,
    ".gpkg": False,
    ".parquet": True,
}


def estimate_cube(
    spec,
    n_times: int,
    n_points: int,
    output=None,
    max_gap: float | None = None,
    time_chunk: int = 32,
    points_in_memory: bool = True,
    threads: int | None = None,
) -> Estimate:
    """Estimate of the cube that gridding ``n_points`` MPs onto ``spec`` writes.

    Parameters
    ----------
    spec : GridSpec
        The output grid.
    n_times : int
        Epochs.
    n_points : int
        Measurement points.
    output : path, optional
        Output file: its suffix tells whether it is compressed (default ``.nc``).
    max_gap : float, optional
        Gap mask distance (m); default ``3 * resolution`` as the gridders.
    time_chunk : int
        Epochs per chunk (bounds the gridder's memory).
    points_in_memory : bool
        Whether the MPs' values are held in memory (False for the points cache).
    threads : int, optional
        Chunks computed at once (default: CPU count).
    """
    cells = int(spec.width) * int(spec.height)
    res = float(spec.resolution)
    gap = 3 * res if max_gap is None else float(max_gap)
    raw = cells * (4 * n_times + LAYER_BYTES)
    suffix = Path(output).suffix.lower() if output is not None else ".nc"
    if COMPRESSED_FORMATS.get(suffix, False):
        # Each MP makes at most the cells within max_gap of it valid.
        per_mp = math.pi * (gap / res + 0.5) ** 2 + 1
        valid = min(1.0, n_points * per_mp / max(cells, 1))
        out = int(raw * (valid * VALID_RATIO + (1 - valid) * MASKED_RATIO))
    else:
        out = raw
    threads = threads or os.cpu_count() or 1
    chunk = min(time_chunk, max(n_times, 1))
    # Points' values (when in memory), per-cell arrays of the gridder (coordinates, weights,
    # masks: about 64 B a cell, tiles bound it to DEFAULT_TILE_SIZE cells at a time but the
    # layers stay whole), and the chunks in flight.
    from insar_raster.grid.tiled import DEFAULT_TILE_SIZE

    per_cell = 64 if cells <= 1024 * 1024 else 16
    working = min(cells, DEFAULT_TILE_SIZE**2 * threads) if cells > 1024 * 1024 else cells
    peak = (
        (n_points * n_times * 4 if points_in_memory else 0)
        + cells * per_cell
        + threads * chunk * 4 * (n_points + working)
        + 200 * 2**20
    )
    w, s, e, n = spec.bounds
    return Estimate("cube", raw, out, int(peak), cells, n_times, n_points, res, (e - w, n - s))
