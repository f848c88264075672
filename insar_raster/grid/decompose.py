"""Ascending + descending LOS -> vertical and east-west cubes (the EGMS L3 Ortho recipe).

Each EGMS L2 value is motion along its own line of sight (LOS): ``d = e le + n ln + u lu``
with ``(le, ln, lu)`` the unit vector from the ground to the satellite (EGMS
``los_east/los_north/los_up``) and ``(e, n, u)`` the east, north and up motion. Two
geometries that look from opposite sides (ascending: satellite to the west, ``le < 0``;
descending: to the east, ``le > 0``) give two equations per place and date, enough for
``e`` and ``u`` once ``n`` is fixed. Following the EGMS Algorithm Theoretical Basis
Document (L3 Ortho):

1. per geometry, the MPs of each cell of the grid (cell edges on multiples of the
   resolution, 100 m as EGMS, in the points' CRS, EPSG:3035 for EGMS) are averaged:
   their series and their LOS unit vectors;
2. each averaged series is interpolated linearly to a regular time grid (6 days),
   only inside its own span (no extrapolation) and never across a gap between
   acquisitions longer than ``max_gap_days`` (90);
3. a cell is kept only where at least one ascending and one descending geometry have an
   MP in it;
4. per cell and epoch the system ``d_g = e le_g + u lu_g`` (one row per geometry ``g``)
   is solved for ``e`` and ``u`` by weighted least squares, north-south motion assumed
   zero (EGMS first removes a GNSS north-south model; none is used here, so north-south
   motion leaks into both components by ``ln / le``, about 0.15-0.2 of it).

With exactly one ascending and one descending geometry the system is square and its
solution does not depend on the weights; with more (e.g. two ascending tracks) each row
is weighted by the inverse variance of its cell mean, ``n / mean(rmse^2)`` where the
product gives a per-MP ``rmse_ts`` (or ``rmse``), else ``n``.

Everything is vectorised: sparse (cells x MPs) averaging matrices and (grid x
acquisitions) interpolation matrices; no Python loop over MPs, cells or epochs (only
over the two to four geometries).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import xarray as xr
from pyproj import CRS

from insar_raster.errors import InputError
from insar_raster.grid.spec import GridSpec
from insar_raster.io import egms
from insar_raster.io.cube import make_cube

log = logging.getLogger("insar_raster")

#: Regular time step of EGMS L3 products (days).
STEP_DAYS = 6
#: Origin of the EGMS L3 (Ortho) products' 6-day time grid: Sentinel-1A's launch (EGMS
#: Product Description and Format Specification, Ortho products, "temporal resolution").
EGMS_L3_TIME_ORIGIN = "2014-04-03"
#: Longest gap between acquisitions that interpolation bridges (days; EGMS production value).
MAX_GAP_DAYS = 90
#: Names of the output variables.
VERTICAL, EAST_WEST = "vertical", "east_west"


def resample_matrix(times, grid) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation from acquisition ``times`` to ``grid`` dates, as a matrix.

    Returns
    -------
    matrix : ndarray (len(grid), len(times)) float64
        ``matrix @ series`` interpolates; rows of invalid grid dates are zero.
    valid : ndarray (len(grid),) bool
        Grid dates inside ``[times[0], times[-1]]`` (no extrapolation) and not inside a
        gap longer than :data:`MAX_GAP_DAYS`.
    """
    return _resample(times, grid, MAX_GAP_DAYS)


def _resample(times, grid, max_gap_days):
    t = np.asarray(times, dtype="datetime64[D]").astype(np.int64).astype(np.float64)
    g = np.asarray(grid, dtype="datetime64[D]").astype(np.int64).astype(np.float64)
    matrix = np.zeros((len(g), len(t)))
    if len(t) == 0:
        return matrix, np.zeros(len(g), bool)
    inside = (g >= t[0]) & (g <= t[-1])
    # Right neighbour index (first acquisition >= the date), left = right - 1.
    right = np.clip(np.searchsorted(t, g, side="left"), 0, len(t) - 1)
    exact = inside & (t[right] == g)
    left = np.clip(right - 1, 0, len(t) - 1)
    gap = t[right] - t[left]
    valid = inside & (exact | (gap <= max_gap_days))
    rows = np.flatnonzero(valid & exact)
    matrix[rows, right[rows]] = 1.0
    rows = np.flatnonzero(valid & ~exact)
    frac = (g[rows] - t[left[rows]]) / gap[rows]
    matrix[rows, left[rows]] = 1.0 - frac
    matrix[rows, right[rows]] = frac
    return matrix, valid


def time_grid(times_list, step_days: int = STEP_DAYS, origin=None) -> np.ndarray:
    """Regular dates every ``step_days`` covering all acquisitions: from the earliest first
    acquisition, or from the last date of the grid through ``origin`` (a date) before it."""
    first = min(np.asarray(t, dtype="datetime64[D]")[0] for t in times_list)
    last = max(np.asarray(t, dtype="datetime64[D]")[-1] for t in times_list)
    if origin is not None:
        origin = np.datetime64(origin, "D")
        first = origin + ((first - origin) // np.timedelta64(step_days, "D")) * np.timedelta64(step_days, "D")
    n = int((last - first) / np.timedelta64(step_days, "D")) + 1
    return first + np.arange(n) * np.timedelta64(step_days, "D")


def _geometry_label(points, index) -> tuple[str, str]:
    """(pass direction, description) of one geometry's points."""
    geom = egms.points_geometry(points)
    direction = geom.pass_direction
    if direction is None and "track_angle" in points:
        direction = egms.pass_direction(points["track_angle"].values)
    if direction is None and "los_east" in points:  # Sentinel-1 looks right: satellite west when ascending
        direction = "ascending" if np.nanmean(points["los_east"].values) < 0 else "descending"
    return direction, str(geom) if geom.component else f"input {index + 1} ({direction})"


def _check_inputs(points_list):
    if len(points_list) < 2:
        only = f" ({points_list[0].attrs.get('source', '')})" if points_list else ""
        raise InputError(None, f"decomposition needs ascending and descending geometries, got one{only}")
    crs = None
    labels = []
    for i, pts in enumerate(points_list):
        source = pts.attrs.get("source") or f"input {i + 1}"
        level = pts.attrs.get("product_level")
        if level in ("L3U", "L3E", "L3"):  # before the LOS check: it says why there is no LOS
            raise InputError(
                source,
                f"{'an L3 product' if level == 'L3' else level} is already decomposed (vertical or east-west)",
                "decomposition takes L2a/L2b LOS products of both pass directions",
            )
        missing = [c for c in ("los_east", "los_up") if c not in pts]
        if missing:
            raise InputError(
                source,
                f"no per-MP line-of-sight vector ({', '.join(missing)} missing)",
                "decomposition needs EGMS L2a/L2b products, which carry los_east/los_north/los_up",
            )
        this = CRS.from_user_input(pts.rio.crs)
        if crs is None:
            crs = this
        elif this != crs:
            raise InputError(source, f"CRS {this.name} differs from the first input's ({crs.name})")
        labels.append(_geometry_label(pts, i))
    directions = [d for d, _ in labels]
    if "ascending" not in directions or "descending" not in directions:
        listed = "; ".join(f"{pts.attrs.get('source', '')}: {label}" for pts, (_, label) in zip(points_list, labels))
        raise InputError(None, f"decomposition needs ascending and descending geometries ({listed})")
    return crs, labels


def decompose_los(
    points_list,
    resolution: float = 100.0,
    step_days: int = STEP_DAYS,
    max_gap_days: float = MAX_GAP_DAYS,
    bounds=None,
    time_origin=None,
) -> xr.Dataset:
    """Vertical and east-west displacement cubes from ascending and descending LOS points.

    Parameters
    ----------
    points_list : list of xarray.Dataset
        One points Dataset per geometry (:mod:`insar_raster.io.points` layout), each with
        the per-MP ``los_east`` and ``los_up`` (EGMS L2a/L2b), all in one projected CRS
        (metres). Displacement in mm, positive towards the satellite.
    resolution : float
        Cell size (m); cell edges on multiples of it (EGMS L3: 100 m in EPSG:3035).
    step_days : int
        Time step of the output (days; EGMS L3: 6).
    max_gap_days : float
        Longest gap between acquisitions that the time interpolation bridges (days).
    bounds : (west, south, east, north), optional
        Keep only MPs inside (m, the points' CRS).
    time_origin : str or datetime64, optional
        A date of the output time grid: :data:`EGMS_L3_TIME_ORIGIN` puts it on the official
        L3 products' dates (to compare or forecast their points date for date); default the
        earliest first acquisition.

    Returns
    -------
    xarray.Dataset
        Cube layout of :mod:`insar_raster.io.cube` with ``vertical`` (up positive) and
        ``east_west`` (east positive) (time, y, x) float32 mm instead of
        ``displacement``, both zero at the first epoch and NaN where a cell lacks either
        pass direction; ``mp_count_ascending`` and ``mp_count_descending`` (y, x) int32.
        The time axis holds the grid dates where every geometry has data (inside its
        span, not in a long gap).
    """
    crs, labels = _check_inputs(points_list)
    if not (resolution > 0 and np.isfinite(resolution)):
        raise InputError(None, f"must be a positive number of metres, got {resolution}", param="resolution")
    if bounds is not None:
        west, south, east, north = bounds
        kept = []
        for pts in points_list:
            x, y = pts.x.values, pts.y.values
            inside = (x >= west) & (x <= east) & (y >= south) & (y <= north)
            if not inside.any():
                raise InputError(
                    None,
                    f"bounds {tuple(bounds)} contain no measurement point of {pts.attrs.get('source', 'an input')}",
                    param="bounds",
                )
            kept.append(pts.isel(point=np.flatnonzero(inside)) if not inside.all() else pts)
        points_list = kept
    # An MP without a LOS vector (empty los_east/los_up) cannot enter the system: left out, counted.
    has_los = [np.isfinite(p["los_east"].values) & np.isfinite(p["los_up"].values) for p in points_list]
    no_los = [int((~ok).sum()) for ok in has_los]
    points_list = [p if ok.all() else p.isel(point=np.flatnonzero(ok)) for p, ok in zip(points_list, has_los)]
    all_x = np.concatenate([p.x.values for p in points_list])
    all_y = np.concatenate([p.y.values for p in points_list])
    spec = GridSpec.from_points(all_x, all_y, crs, resolution=resolution)
    h, w = spec.shape

    # Time: one regular grid for all geometries; keep the dates every geometry covers.
    times_list = [p.time.values.astype("datetime64[D]") for p in points_list]
    grid = time_grid(times_list, step_days, time_origin)
    resamplers = [_resample(t, grid, max_gap_days) for t in times_list]
    keep_t = np.logical_and.reduce([valid for _, valid in resamplers])
    if keep_t.sum() < 2:
        spans = "; ".join(f"{label}: {str(t[0])} to {str(t[-1])}" for (_, label), t in zip(labels, times_list))
        raise InputError(None, f"the geometries share fewer than 2 dates of the {step_days}-day grid ({spans})")
    out_times = grid[keep_t]
    n_t = len(out_times)

    # Cells of each MP, and MPs per cell and pass direction (the cells kept need both).
    n_cells = h * w
    cells_of = []
    counts = {"ascending": np.zeros(n_cells, np.int64), "descending": np.zeros(n_cells, np.int64)}
    for pts, (direction, _) in zip(points_list, labels):
        row, col = spec.cell_index(pts.x.values, pts.y.values)
        cells_of.append(row * w + col)
        counts[direction] += np.bincount(cells_of[-1], minlength=n_cells)
    cells = np.flatnonzero((counts["ascending"] > 0) & (counts["descending"] > 0))
    n_kept = len(cells)

    # Per geometry: cell means of the series (resampled) and of the LOS vector, accumulated
    # into the normal equations of the kept cells only (memory: kept cells x epochs).
    ata = np.zeros((n_kept, 3))  # normal matrix entries (ee, eu, uu)
    atb = [np.zeros((n_kept, n_t)), np.zeros((n_kept, n_t))]  # (e, u) right-hand sides
    for pts, (_direction, label), (matrix, _), cell, n_no_los in zip(points_list, labels, resamplers, cells_of, no_los):
        n_mp = len(cell)
        counts_g = np.bincount(cell, minlength=n_cells)
        local = np.searchsorted(cells, cell)
        inside = (local < n_kept) & (cells[np.minimum(local, n_kept - 1)] == cell)  # MPs of kept cells
        mps = np.flatnonzero(inside)
        used = np.unique(local[mps])  # kept cells where this geometry has MPs
        # (used cells x MPs) averaging matrix: 1/n for each MP of a kept cell, 0 elsewhere.
        avg = sp.csr_matrix(
            ((1.0 / counts_g[cell[mps]]).astype(np.float32), (np.searchsorted(used, local[mps]), mps)),
            shape=(len(used), n_mp),
        )
        values = np.asarray(pts.displacement.values)
        if values.dtype != np.float32:
            values = values.astype(np.float32)
        series = (avg @ values).astype(np.float64) @ matrix[keep_t].T  # (used cells, n_t)
        series -= series[:, :1]  # every geometry referenced to the first common date
        avg = avg.astype(np.float64)
        le = avg @ pts["los_east"].values.astype(np.float64)
        lu = avg @ pts["los_up"].values.astype(np.float64)
        n_here = counts_g[cells[used]].astype(np.float64)
        rmse = next((pts[c].values.astype(np.float64) for c in egms.RMSE_COLUMNS if c in pts), None)
        if rmse is not None and np.isfinite(rmse).all() and (rmse > 0).all():
            weight = n_here / (avg @ rmse**2)  # n / mean(rmse^2): inverse variance of the mean
        else:
            weight = n_here
        ata[used, 0] += weight * le * le
        ata[used, 1] += weight * le * lu
        ata[used, 2] += weight * lu * lu
        atb[0][used] += (weight * le)[:, None] * series
        atb[1][used] += (weight * lu)[:, None] * series
        log.info(
            "decompose: %s, %d MPs%s in %d cells, %d acquisitions (%s to %s)",
            label,
            n_mp,
            f" ({n_no_los} more without a LOS vector left out)" if n_no_los else "",
            int((counts_g > 0).sum()),
            pts.sizes["time"],
            str(pts.time.values[0])[:10],
            str(pts.time.values[-1])[:10],
        )
        del series

    det = ata[:, 0] * ata[:, 2] - ata[:, 1] ** 2
    solvable = np.abs(det) > 1e-9 * np.maximum(ata[:, 0] * ata[:, 2], 1e-30)  # LOS vectors not parallel
    ata, det, cells = ata[solvable], det[solvable], cells[solvable]
    atb = [a[solvable] for a in atb]
    inv_det = 1.0 / det
    east = (ata[:, 2, None] * atb[0] - ata[:, 1, None] * atb[1]) * inv_det[:, None]
    up = (ata[:, 0, None] * atb[1] - ata[:, 1, None] * atb[0]) * inv_det[:, None]
    del atb
    vertical = np.full((n_t, n_cells), np.nan, np.float32)
    east_west = np.full((n_t, n_cells), np.nan, np.float32)
    vertical[:, cells] = up.T
    east_west[:, cells] = east.T
    dropped = int((~keep_t).sum())
    attrs = {
        "source": ", ".join(p.attrs.get("source", "") for p in points_list),
        "method": "EGMS L3 Ortho decomposition of ascending and descending LOS (north-south motion assumed zero)",
        "geometries": "; ".join(label for _, label in labels),
        "time_step_days": int(step_days),
        "max_gap_days": float(max_gap_days),
        "resolution": float(resolution),
        "grid_dates_dropped": dropped,
        "title": "InSAR vertical and east-west displacement",
    }
    extra = {
        "mp_count_ascending": counts["ascending"].reshape(h, w).astype(np.int32),
        "mp_count_descending": counts["descending"].reshape(h, w).astype(np.int32),
    }
    cube = make_cube(vertical.reshape(n_t, h, w), out_times, spec, extra=extra, attrs=attrs)
    cube = cube.rename({"displacement": VERTICAL})
    cube[VERTICAL].attrs.update(long_name="vertical displacement (up positive) relative to the first epoch")
    cube[EAST_WEST] = (("time", "y", "x"), east_west.reshape(n_t, h, w))
    cube[EAST_WEST].attrs.update(
        units="mm",
        grid_mapping="spatial_ref",
        long_name="east-west displacement (east positive) relative to the first epoch",
    )
    for direction in ("ascending", "descending"):
        cube[f"mp_count_{direction}"].attrs.update(
            units="1", long_name=f"number of {direction} measurement points in the cell"
        )
    log.info(
        "decompose: %d of %d cells have both pass directions; %d epochs every %d days (%s to %s)%s",
        len(cells),
        int(((counts["ascending"] > 0) | (counts["descending"] > 0)).sum()),
        n_t,
        step_days,
        str(out_times[0]),
        str(out_times[-1]),
        f", {dropped} grid dates outside a geometry's span or in a gap > {max_gap_days:g} days dropped"
        if dropped
        else "",
    )
    return cube
