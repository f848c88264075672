"""Bad rows inside good files: coordinates, dates and pids that must not shape the output.

Real exports are mostly good with a few bad rows: a null written as ``0,0``, one MP
shifted by thousands of kilometres, a sentinel date column ``99991231``, a file whose
every row repeats one pid. Each check here is small, vectorised, and called by the
readers (:mod:`insar_raster.io.points`, :mod:`insar_raster.io.cache`) at one place each.

Rules
-----
- **Dates** (:func:`check_dates`): a date column beyond the ``datetime64[ns]`` range
  (years 1678-2261, e.g. ``99991231``) is always an error, never a wrapped value. An epoch
  before Sentinel-1's first acquisitions (:data:`SENTINEL1_START`, April 2014) or after
  today is refused unless ``allow_dates=True`` (non-Sentinel data).
- **Coordinates** (:func:`coordinate_outliers`, :func:`drop_coordinate_outliers`): rows
  with NaN/infinite coordinates, at exactly ``(0, 0)``, or far outside the bulk of the
  points are dropped with one warning (count and first pids) and the count is recorded in
  the points' attrs (``coordinate_outliers_dropped``), which the gridder copies into the
  cube's provenance. The bulk is the box between the k-th smallest and k-th largest
  coordinate on each axis (:func:`outlier_budget`: a handful, :data:`OUTLIER_HANDFUL`, or
  :data:`OUTLIER_TRIM` of the points if more), so up to k outliers on each side never
  move it; a point is far when it lies more than
  ``max(size of the box, OUTLIER_MIN_MARGIN)`` outside the box on either axis. With fewer
  than :data:`OUTLIER_MIN_POINTS` points only the invalid coordinates are dropped.
- **Latitude/longitude** (:func:`check_lonlat`): geographic inputs whose rows are mostly
  outside the latitude range are refused (columns swapped?).
- **Pids** (:func:`check_pid_majority`): when most rows share a few pids, the file is
  refused ("... rows share 1 pid: not an EGMS file?") instead of keeping one row.

Messages name Python parameters (``allow_dates``, ``keep_outliers``); the command line
maps them to its options.
"""

from __future__ import annotations

import datetime as _dt
import re
import warnings

import numpy as np

from insar_raster.errors import InputError

#: First Sentinel-1 acquisitions (Sentinel-1A, April 2014): earlier epochs are refused
#: unless ``allow_dates``.
SENTINEL1_START = np.datetime64("2014-04-01", "D")
#: Dates a cube can hold (``datetime64[ns]``): outside, a date would wrap around.
DATETIME_NS_MIN = np.datetime64("1678-01-01", "D")
DATETIME_NS_MAX = np.datetime64("2261-12-31", "D")
#: Share of points on each side (and axis) that may be outliers without moving the bulk box ...
OUTLIER_TRIM = 0.01
#: ... and the handful of rows that may, whatever the number of points (at most a quarter).
OUTLIER_HANDFUL = 5
#: Smallest margin (m, or the input unit) around the bulk box before a point counts as far.
OUTLIER_MIN_MARGIN = 1000.0
#: Below this many points the bulk is not estimated (only invalid coordinates are dropped).
OUTLIER_MIN_POINTS = 10
#: Pids listed in the outlier warning.
PIDS_SHOWN = 5


def today() -> np.datetime64:
    """Today's date (UTC), the latest epoch accepted without ``allow_dates``."""
    return np.datetime64(_dt.datetime.now(_dt.timezone.utc).date(), "D")


# --------------------------------------------------------------------------- dates

_DATE_LIKE = re.compile(r"^[DdXx]?\d{4}([-.]?)\d{2}\1\d{2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")


def check_date_like(columns, path) -> None:
    """Refuse a column named like a date (``YYYYMMDD``) that is no date (``20201301``,
    ``00000000``): its values would otherwise be silently left out."""
    from insar_raster.io.egms import parse_date_column

    bad = [c for c in columns if _DATE_LIKE.match(str(c).strip()) and parse_date_column(c) is None]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise InputError(
            path,
            f"column {bad[0]!r}{more} is named like a date (YYYYMMDD) but is not a valid date",
            "a placeholder or a typo in the header?",
        )


def check_dates(columns, dates, path, allow_dates: bool = False) -> None:
    """Refuse date columns that cannot be, or should not be, epochs.

    Parameters
    ----------
    columns : list of str
        Names of the date columns, as in the file.
    dates : list of numpy.datetime64
        Their parsed dates (day precision), same order.
    path : str or os.PathLike
        File named in the error.
    allow_dates : bool
        Accept epochs before :data:`SENTINEL1_START` or after today (non-Sentinel data).

    Raises
    ------
    InputError
        One line naming the (first) offending column.
    """
    if not len(dates):
        return
    days = np.array(dates, dtype="datetime64[D]")
    names = list(columns)

    def refuse(mask, problem, hint):
        idx = np.flatnonzero(mask)
        more = f" and {len(idx) - 1} more date column(s)" if len(idx) > 1 else ""
        first = idx[0]
        raise InputError(path, f"date column {names[first]!r} ({days[first]}){more} {problem}", hint)

    wrapped = (days < DATETIME_NS_MIN) | (days > DATETIME_NS_MAX)
    if wrapped.any():
        refuse(
            wrapped,
            f"is beyond the dates a cube can hold ({DATETIME_NS_MIN} to {DATETIME_NS_MAX})",
            "a placeholder date such as 99991231? remove the column",
        )
    if allow_dates:
        return
    early = days < SENTINEL1_START
    if early.any():
        refuse(
            early,
            "is before Sentinel-1's first acquisitions (2014-04)",
            "allow_dates=True accepts dates of non-Sentinel data",
        )
    late = days > today()
    if late.any():
        refuse(late, f"is after today ({today()})", "allow_dates=True accepts dates of non-Sentinel data")


# --------------------------------------------------------------------------- coordinates


def _kth(values: np.ndarray, k: int) -> tuple[float, float]:
    """(k-th smallest, k-th largest) of ``values`` (0-based), by partition (O(n))."""
    n = len(values)
    part = np.partition(values, (k, n - 1 - k))
    return float(part[k]), float(part[n - 1 - k])


def outlier_budget(n: int) -> int:
    """Outliers on each side of each axis that cannot move the bulk box of ``n`` points."""
    return max(min(OUTLIER_HANDFUL, (n - 1) // 4), int(OUTLIER_TRIM * n))


def bulk_box(x, y) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of the bulk of finite points (module docstring), or None
    when there are too few points to tell."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & ~((x == 0) & (y == 0))
    n = int(ok.sum())
    if n < OUTLIER_MIN_POINTS:
        return None
    k = outlier_budget(n)
    west, east = _kth(x[ok], k)
    south, north = _kth(y[ok], k)
    return west, south, east, north


def outlier_margin(box) -> float:
    """Distance (coordinate units) outside the bulk box beyond which a point is far."""
    west, south, east, north = box
    return max(east - west, north - south, OUTLIER_MIN_MARGIN)


def coordinate_outliers(x, y) -> dict[str, np.ndarray]:
    """Masks of rows to drop, by reason: ``invalid`` (NaN/infinite), ``zero`` (exactly
    ``(0, 0)``, a common null) and ``far`` (outside the bulk box plus its margin)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    invalid = ~(np.isfinite(x) & np.isfinite(y))
    zero = (x == 0) & (y == 0)
    far = np.zeros(len(x), bool)
    box = bulk_box(x, y)
    if box is not None:
        west, south, east, north = box
        m = outlier_margin(box)
        with np.errstate(invalid="ignore"):
            far = (x < west - m) | (x > east + m) | (y < south - m) | (y > north + m)
        far &= ~invalid & ~zero
    return {"invalid": invalid, "zero": zero, "far": far}


_REASONS = {"invalid": "NaN or infinite", "zero": "at (0, 0)", "far": "far outside the bulk of the points"}


def drop_coordinate_outliers(points, keep_outliers: bool = False, source: str | None = None):
    """Drop MPs with invalid or outlying coordinates from a points Dataset.

    Parameters
    ----------
    points : xarray.Dataset
        Points layout (:mod:`insar_raster.io.points`), coordinates ``x``, ``y`` in metres.
    keep_outliers : bool
        Keep the MPs that are far outside the bulk (they then set the grid's extent);
        NaN/infinite coordinates are dropped regardless, as no grid can hold them.
    source : str, optional
        Name of the input, for the warning.

    Returns
    -------
    xarray.Dataset
        The points without the dropped MPs; attrs ``coordinate_outliers_dropped`` (count)
        and, when kept, ``coordinate_outliers_kept``.

    Warns
    -----
    UserWarning
        One line: how many MPs were dropped (or kept), why, and the first pids.
    """
    x, y = points["x"].values, points["y"].values
    reasons = coordinate_outliers(x, y)
    drop = reasons["invalid"].copy()
    if not keep_outliers:
        drop |= reasons["zero"] | reasons["far"]
    outlying = reasons["zero"] | reasons["far"]
    where = f"{source}: " if source else ""
    if keep_outliers and outlying.any():
        warnings.warn(
            f"{where}kept {int(outlying.sum()):,} MP(s) far outside the bulk of the points or at (0, 0) "
            f"({_first_pids(points, outlying)}); they set the grid's extent",
            stacklevel=2,
        )
    points.attrs["coordinate_outliers_dropped"] = int(drop.sum())
    if keep_outliers:
        points.attrs["coordinate_outliers_kept"] = int(outlying.sum())
    if not drop.any():
        return points
    if drop.all():
        raise InputError(
            source, "no measurement point has valid coordinates", "are the coordinate columns in the input's CRS?"
        )
    counts = ", ".join(
        f"{int((reasons[r] & drop).sum()):,} {text}" for r, text in _REASONS.items() if (reasons[r] & drop).any()
    )
    hint = "" if keep_outliers else "; keep_outliers=True keeps them"
    warnings.warn(
        f"{where}dropped {int(drop.sum()):,} MP(s) with unusable coordinates ({counts}): "
        f"{_first_pids(points, drop)}{hint}",
        stacklevel=2,
    )
    attrs = dict(points.attrs)
    out = points.isel(point=np.flatnonzero(~drop))
    out.attrs.update(attrs)
    return out


def _first_pids(points, mask) -> str:
    idx = np.flatnonzero(mask)
    pids = points["pid"].values[idx[:PIDS_SHOWN]] if "pid" in points.coords or "pid" in points else idx[:PIDS_SHOWN]
    more = ", ..." if len(idx) > PIDS_SHOWN else ""
    return "pid " + ", ".join(map(str, pids)) + more


#: Degrees the points' median may lie outside their CRS's area of use.
AREA_MARGIN_DEG = 10.0


def check_coordinate_frame(x, y, crs, path) -> None:
    """Refuse coordinates that, as a whole, cannot be in ``crs``.

    Geographic: latitude outside [-90, 90] in most rows (columns swapped?) or longitude
    outside [-180, 180] is refused. Projected: when the median point lies farther than
    :data:`AREA_MARGIN_DEG` outside the CRS's area of use (e.g. eastings in km, or degrees
    in easting/northing columns) a warning says so (toy coordinates stay usable). Rows
    out of range in a file that is otherwise fine are left to the outlier rules (they
    reproject to infinity, or far away).
    """
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    if len(x) == 0:
        return
    if not crs.is_geographic:
        _check_area(np.asarray(x, float), np.asarray(y, float), crs, path)
        return
    x, y = np.asarray(x, float), np.asarray(y, float)
    with np.errstate(invalid="ignore"):
        bad_lat = np.abs(y) > 90
        bad_lon = np.abs(x) > 180
    if bad_lat.mean() > 0.5:
        if (np.abs(x[bad_lat]) <= 90).mean() > 0.5:
            raise InputError(
                path,
                f"latitude outside [-90, 90] in {int(bad_lat.sum()):,} of {len(y):,} rows",
                "are the latitude and longitude columns swapped?",
            )
        raise InputError(
            path,
            f"latitude outside [-90, 90] in {int(bad_lat.sum()):,} of {len(y):,} rows",
            "are the coordinates in degrees? otherwise give input_crs",
        )
    if bad_lon.mean() > 0.5:
        raise InputError(
            path,
            f"longitude outside [-180, 180] in {int(bad_lon.sum()):,} of {len(x):,} rows",
            "are the coordinates in degrees? otherwise give input_crs",
        )


def _check_area(x, y, crs, path) -> None:
    from pyproj import Transformer

    area = crs.area_of_use
    ok = np.isfinite(x) & np.isfinite(y)
    if area is None or not ok.any() or area.west > area.east:
        return
    mx, my = float(np.median(x[ok])), float(np.median(y[ok]))
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(mx, my)
    m = AREA_MARGIN_DEG
    if (
        np.isfinite(lon)
        and np.isfinite(lat)
        and area.west - m <= lon <= area.east + m
        and area.south - m <= lat <= area.north + m
    ):
        return
    where = f" (lon {lon:.1f}, lat {lat:.1f})" if np.isfinite(lon) and np.isfinite(lat) else ""
    warnings.warn(
        f"{path}: the points' median position ({mx:.10g}, {my:.10g}){where} is outside the area of "
        f"{crs.name} (lon {area.west:g} to {area.east:g}, lat {area.south:g} to {area.north:g}): "
        "coordinates in other units (km?) or in another CRS? (input_crs)",
        stacklevel=4,
    )


# --------------------------------------------------------------------------- pids

#: A file is refused when more than this share of its rows repeat a pid ...
PID_REPEAT_SHARE = 0.5
#: ... and those rows share few pids (on average more than this many rows each).
PID_REPEAT_ROWS = 10


def check_pid_majority(pid, path, what: str = "rows") -> None:
    """Refuse a table whose rows mostly share a few pids (not EGMS MPs).

    Overlapping tiles repeat each pid once or twice: that is not refused (the readers keep
    the first occurrence). Raises InputError like
    ``"51,940,000 rows share 1 pid: not an EGMS file?"``.
    """
    n = len(pid)
    if n < 2 * PID_REPEAT_ROWS:
        return
    if type(pid).__module__.startswith("pyarrow"):  # Arrow array (the cache): no copy to Python objects
        import pyarrow.compute as pc

        counts = pc.value_counts(pid).field("counts").to_numpy()
    else:
        import pandas as pd

        counts = pd.Series(np.asarray(pid)).value_counts(sort=False).to_numpy()
    repeated = counts[counts > 1]
    rows = int(repeated.sum())
    if rows > PID_REPEAT_SHARE * n and rows > PID_REPEAT_ROWS * len(repeated):
        pids = "1 pid" if len(repeated) == 1 else f"{len(repeated):,} pids"
        raise InputError(
            path,
            f"{rows:,} of {n:,} {what} share {pids}: not an EGMS file?",
            "each measurement point needs its own pid",
        )


# --------------------------------------------------------------------------- epochs

#: Rows needed before an epoch empty in all of them is dropped rather than every row.
EMPTY_EPOCH_MIN_ROWS = 10


def empty_epochs(values, times, path) -> np.ndarray:
    """Mask of the epochs to keep: those with a value in at least one row.

    An epoch empty in every row (a missing date in an L3 export) would otherwise drop every
    MP as incomplete; it is dropped instead, with one warning. With fewer than
    :data:`EMPTY_EPOCH_MIN_ROWS` rows, or when every epoch is empty, the mask keeps them all
    (rows with a missing value are then dropped as usual).
    """
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] < EMPTY_EPOCH_MIN_ROWS:
        return np.ones(values.shape[-1] if values.ndim else 0, bool)
    has_value = np.isfinite(values).any(axis=0)
    if has_value.all() or not has_value.any():
        return np.ones(len(has_value), bool)
    empty = [str(np.datetime64(t, "D")) for t in np.asarray(times)[~has_value]]
    shown = ", ".join(empty[:PIDS_SHOWN]) + (", ..." if len(empty) > PIDS_SHOWN else "")
    warnings.warn(f"{path}: dropped {len(empty)} epoch(s) with no value in any row ({shown})", stacklevel=3)
    return has_value
