"""Size before work: what an output will weigh and cost, checked before it is computed.

A resolution of 1 m on a 26 km scene of 3,000 MPs is 655 M cells (over 200,000 per
MP): mostly empty, cheap to store, hours to compute. A single MP at (0, 0) used to make a
90 GB cube. Every command that writes estimates its output first
(:func:`insar_raster.grid.budget.estimate_cube`, :func:`estimate_points_cache`,
:func:`estimate_points`, :func:`estimate_raster`) and :func:`check_budget` refuses, in
one line that says what would fit, when

- the output would exceed the free space of the target folder;
- or the limit ``max_output_size`` (default :data:`DEFAULT_MAX_OUTPUT_SIZE`, 50 GB);
- or (unless ``force``) the grid has more than :data:`MAX_CELLS_PER_MP` cells per MP
  and more than :data:`MIN_CELLS_CHECKED` cells in all: almost all of it would be masked
  cells, computed for nothing.

This module is the part every output needs (the points cache in :mod:`insar_raster.io`
too); the cube's estimate, which knows the gridders, is in :mod:`insar_raster.grid.budget`.
"""

from __future__ import annotations

import math
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
