"""Size before work: what an output will weigh and cost, checked before it is computed.

A resolution of 1 m on a 26 km scene of 3,000 MPs is 655 M cells (over 200,000 per
MP): mostly empty, cheap to store, hours to compute. A single MP at (0, 0) used to make a
90 GB cube. Every command that writes estimates its output first
(:func:`estimate_cube`, :func:`estimate_points_cache`, :func:`estimate_points`) and
:func:`check_budget` refuses, in one line that says what would fit, when

- the output would exceed the free space of the target folder;
- or the limit ``max_output_size`` (default :data:`DEFAULT_MAX_OUTPUT_SIZE`, 50 GB);
- or (unless ``force``) the grid has more than :data:`MAX_CELLS_PER_MP` cells per MP
  and more than :data:`MIN_CELLS_CHECKED` cells in all: almost all of it would be masked
  cells, computed for nothing.

Sizes are estimates: the raw size is exact (cells x epochs x 4 B of float32 plus the
per-cell layers); the size after compression assumes that masked (NaN) cells cost
:data:`MASKED_RATIO` of their raw size and that valid ones do not compress
(:data:`VALID_RATIO`), with the share of valid cells bounded from the MPs' count and the
gap distance. Peak memory is the working set of the gridder (see
:func:`insar_raster.grid.gridding.grid_points`).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from insar_raster.errors import InputError

#: Largest output written without ``max_output_size`` (bytes): 50 GB.
DEFAULT_MAX_OUTPUT_SIZE = 50 * 10**9
#: Grids with more cells per MP than this are refused unless ``force`` ...
MAX_CELLS_PER_MP = 10_000
#: ... when they also have more cells than this in all (small grids are always cheap).
MIN_CELLS_CHECKED = 4096 * 4096
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

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(text) -> int:
    """Bytes of a size such as ``50GB``, ``500M``, ``1.5T``, ``2GiB`` or ``1000000``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m[2].lower() if m else None
    if not m or unit not in _UNITS or not float(m[1]) > 0:
        raise InputError(None, f"not a size: {text!r}", "use e.g. 50GB, 500MB or 2TB", param="max_output_size")
    return int(float(m[1]) * _UNITS[unit])


def format_size(n: float) -> str:
    """``52.3 GB``-style text of a number of bytes (powers of 1000)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class Estimate:
    """What an output will cost.

    Attributes
    ----------
    what : str
        E.g. ``"cube"``, ``"points cache"``.
    raw_bytes : int
        Uncompressed size (bytes).
    output_bytes : int
        Estimated size on disk after compression (bytes; ``raw_bytes`` if uncompressed).
    peak_memory : int
        Estimated peak memory of the computation (bytes).
    cells : int
        Grid cells (0 for point outputs).
    epochs : int
        Epochs (or forecast steps) stored per cell or point.
    n_points : int
        Measurement points the output is made from.
    resolution : float or None
        Cell size (m) of a grid output.
    extent : tuple or None
        (width, height) in metres of a grid output.
    """

    what: str
    raw_bytes: int
    output_bytes: int
    peak_memory: int
    cells: int = 0
    epochs: int = 0
    n_points: int = 0
    resolution: float | None = None
    extent: tuple[float, float] | None = None

    @property
    def cells_per_mp(self) -> float:
        """Grid cells per measurement point (inf without points)."""
        return self.cells / self.n_points if self.n_points else math.inf

    def describe(self) -> str:
        """One line: sizes and peak memory."""
        grid = f"{self.cells:,} cells x {self.epochs:,} epochs, " if self.cells else ""
        size = format_size(self.raw_bytes)
        if self.output_bytes != self.raw_bytes:
            size += f" raw, about {format_size(self.output_bytes)} compressed"
        return f"{self.what}: {grid}{size}; peak memory about {format_size(self.peak_memory)}"


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


def estimate_points_cache(n_rows: int, n_times: int, block_bytes: int) -> Estimate:
    """Estimate of a points cache of ``n_rows`` MPs x ``n_times`` epochs (float32 values,
    uncompressed, plus coordinates and pid), read in blocks of ``block_bytes``."""
    raw = n_rows * (4 * n_times + 40)
    peak = 6 * block_bytes + n_rows * 40 + 200 * 2**20
    return Estimate("points cache", raw, raw, int(peak), 0, n_times, n_rows)


def estimate_points(n_points: int, n_times: int, output=None, bytes_per_value: int = 8) -> Estimate:
    """Estimate of a points file (CSV: about ``bytes_per_value`` characters a value)."""
    suffix = Path(output).suffix.lower() if output is not None else ".csv"
    per_value = bytes_per_value if suffix == ".csv" else 4
    raw = n_points * (per_value * n_times + 100)
    return Estimate("points", raw, raw, int(n_points * n_times * 12 + 200 * 2**20), 0, n_times, n_points)


def estimate_raster(what: str, cells: int, epochs: int, peak_memory: int | None = None) -> Estimate:
    """Estimate of a raster output of ``cells`` x ``epochs`` float32 values (a forecast, an
    exported layer, a truth cube), uncompressed: an upper bound for the compressed formats."""
    raw = int(cells) * int(epochs) * 4
    peak = peak_memory if peak_memory is not None else 3 * raw // max(int(epochs), 1) + 200 * 2**20
    return Estimate(what, raw, raw, int(peak), int(cells), int(epochs))


def free_space(target) -> int | None:
    """Free bytes in the folder that will hold ``target`` (its nearest existing parent)."""
    folder = Path(target).resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _nice_up(value: float) -> float:
    """Smallest of 1, 2, 2.5, 5 x 10^k that is >= value."""
    if value <= 0:
        return value
    exp = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        nice = step * 10**exp
        if nice >= value * (1 - 1e-9):
            return float(f"{nice:.12g}")
    return 10.0 ** (exp + 1)


def _what_fits(est: Estimate, max_cells: float) -> str:
    """Hint naming a coarser resolution (and an area) with at most ``max_cells`` cells."""
    if not est.cells or est.resolution is None or max_cells < 1:
        return ""
    factor = math.sqrt(est.cells / max_cells)
    coarser = _nice_up(est.resolution * factor * 1.02)
    km2 = max_cells * est.resolution**2 / 1e6
    return (
        f"resolution={coarser:g} (m) or coarser fits, or bounds covering at most {km2:,.3g} km2 at {est.resolution:g} m"
    )


def check_budget(
    est: Estimate, target, max_output_size: int | None = DEFAULT_MAX_OUTPUT_SIZE, force: bool = False
) -> None:
    """Refuse an output that would not fit (module docstring), before any work.

    Parameters
    ----------
    est : Estimate
        From one of the ``estimate_*`` functions.
    target : path
        Output path (its folder's free space is checked).
    max_output_size : int or None
        Largest output accepted (bytes); None for no limit besides the free space.
    force : bool
        Accept a grid with many more cells than MPs (the work check).

    Raises
    ------
    InputError
        One line: the estimate, the limit it exceeds, and what would fit.
    """
    size = est.output_bytes
    per_cell = est.raw_bytes / est.cells if est.cells else None
    ratio = size / est.raw_bytes if est.raw_bytes else 1.0
    free = free_space(target)
    if free is not None and size > free:
        hint = (_what_fits(est, free / (per_cell * ratio)) if per_cell else "") or "free some space or write elsewhere"
        raise InputError(
            target,
            f"{est.what} of about {format_size(size)} ({est.describe()}) would not fit in the "
            f"{format_size(free)} free in {Path(target).resolve().parent}",
            hint,
        )
    if max_output_size is not None and size > max_output_size:
        hint = _what_fits(est, max_output_size / (per_cell * ratio)) if per_cell else ""
        hint = (hint + "; " if hint else "") + "max_output_size raises the limit"
        raise InputError(
            target,
            f"{est.what} of about {format_size(size)} is over the limit of "
            f"{format_size(max_output_size)} ({est.describe()})",
            hint,
        )
    if not force and est.cells > MIN_CELLS_CHECKED and est.cells_per_mp > MAX_CELLS_PER_MP:
        limit = max(MIN_CELLS_CHECKED, MAX_CELLS_PER_MP * est.n_points)
        hint = _what_fits(est, limit) + "; force=True computes it anyway"
        raise InputError(
            target,
            f"{est.cells:,} cells for {est.n_points:,} MPs ({est.cells_per_mp:,.0f} cells per MP, "
            f"over {MAX_CELLS_PER_MP:,}): mostly empty cells, hours of work",
            hint,
        )
