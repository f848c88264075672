"""Points inputs: the rules every points reader shares.

Which files a list of paths names (folders expanded, suffixes), which columns of a CSV or
vector table are dates and which are coordinates (and in what CRS), which epochs
``start``/``end`` keep, which CRS the points are gridded in, what a pyarrow parse error
means, and :func:`make_points`, the constructor of the points layout (the contract in
:mod:`insar_raster.io.points`). Both readers use them: the in-memory one
(:func:`insar_raster.io.points.read_points`) and the streaming cache
(:mod:`insar_raster.io.cache`), so neither imports the other's internals.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from pyproj import CRS

from insar_raster.errors import InputError, first_line
from insar_raster.io import egms
from insar_raster.io.egms import EGMS_CRS, parse_date_column
from insar_raster.io.sanitize import check_date_like, check_dates

log = logging.getLogger("insar_raster")

CSV_SUFFIXES = {".csv", ".txt"}
VECTOR_SUFFIXES = {".gpkg", ".shp", ".geojson", ".fgb"}
PARQUET_SUFFIXES = {".parquet", ".geoparquet", ".pq"}


def make_points(x, y, displacement, times, crs, pid=None, extra=None, attrs=None) -> xr.Dataset:
    """Assemble a points Dataset (see module docstring) with its CRS attached.

    ``displacement`` (point, time) in mm may be numpy or dask (kept lazy). Arrays already of
    the layout's dtype are used as given, not copied (as xarray does).
    """
    n = len(x)
    pid = np.arange(n).astype(str) if pid is None else np.asarray(pid).astype(str)
    if type(displacement).__module__.startswith("dask"):
        displacement = displacement.astype(np.float32)  # stays lazy (e.g. the Zarr cache)
    else:
        displacement = np.asarray(displacement, dtype=np.float32)
    ds = xr.Dataset(
        {"displacement": (("point", "time"), displacement)},
        coords={
            "x": ("point", np.asarray(x, dtype=np.float64)),
            "y": ("point", np.asarray(y, dtype=np.float64)),
            "pid": ("point", pid),
            "time": np.asarray(times, dtype="datetime64[ns]"),
        },
        attrs=dict(attrs or {}),
    )
    ds["displacement"].attrs.update(units="mm", long_name="displacement relative to the first epoch")
    for name, values in (extra or {}).items():
        ds[name] = ("point", np.asarray(values))
    if "mean_velocity" in ds:
        ds["mean_velocity"].attrs["units"] = "mm/yr"
    # In place: ds is ours, and rioxarray's default deep-copies every variable (80 MB of values
    # at 200k MPs x 100 epochs).
    return ds.rio.write_crs(CRS.from_user_input(crs), inplace=True)


def expand_inputs(paths, say_copies: bool = False) -> list[Path]:
    """Files named by the user: files as given, folders expanded to their point files, each
    file once (a folder and a file in it name it twice); copies of an EGMS zip among them (:func:`insar_raster.io.egms.extracted_copies`) left
    out, said in the log with ``say_copies`` (the reader does; checks before it do not)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f
                for f in p.iterdir()
                if f.suffix.lower() in CSV_SUFFIXES | VECTOR_SUFFIXES | PARQUET_SUFFIXES | {".zip"}
            )
            if not found:
                raise InputError(p, "folder holds no .csv, .zip, .gpkg, .shp or .parquet files")
            files.extend(found)
        elif not p.exists():
            raise InputError(p, "file not found")
        else:
            files.append(p)
    if not files:
        raise InputError(None, "no input files given")
    # The same file named twice (a folder and a file in it, ./a.zip and a.zip): read once.
    given: dict[Path, list[Path]] = {}
    for f in files:
        given.setdefault(f.resolve(), []).append(f)
    for names in given.values():
        if len(names) > 1:
            log.log(
                logging.INFO if say_copies else logging.DEBUG,
                "reading %s once: it was given %d times",
                names[0].name,
                len(names),
            )
    files = [names[0] for names in given.values()]
    copies = egms.extracted_copies(files)
    for csv, zip_path in copies.items():
        what = {".csv": "its extracted copy", ".zip": "a copy of it (downloaded again, or copied)"}.get(
            csv.suffix.lower(), "a conversion of it"
        )
        log.log(
            logging.INFO if say_copies else logging.DEBUG,
            "reading %s from %s only: the %s is %s",
            csv.name,
            zip_path.name,
            csv.suffix.lower(),
            what,
        )
    return [f for f in files if f not in copies]


#: Column names of the dates in a long table (one row per MP and date).
_LONG_FORMAT_DATES = frozenset({"date", "dates", "time", "epoch", "acquisition_date", "acquisition date", "datetime"})


def classify_columns(columns, path, allow_dates: bool = False):
    """Split column names into date columns and the rest; validate (dates: see
    :func:`insar_raster.io.sanitize.check_dates`)."""
    names = [str(c).strip() for c in columns]
    twice = next((c for c in names if c and names.count(c) > 1), None)
    if twice is not None:
        raise InputError(
            path, f"column {twice!r} appears {names.count(twice)} times in the header", "remove the repeated column"
        )
    dates = {c: parse_date_column(c) for c in columns}
    sheet = egms.spreadsheet_date_columns([c for c, d in dates.items() if d is None], path)
    if sheet:
        example = next(iter(sheet))
        log.info(
            "%s: date columns named like %r read as %s", Path(str(path).split("!")[0]).name, example, sheet[example]
        )
        dates.update(sheet)
    date_cols = [c for c, d in dates.items() if d is not None]
    if not date_cols:
        long = [c for c in names if c.lower() in _LONG_FORMAT_DATES]
        if long:  # one row per MP and date (e.g. one MP's series saved from a viewer)
            raise InputError(
                path,
                f"no date columns found: the dates are in column {long[0]!r}, one row per date",
                "pivot it to one row per MP and one column per date named YYYYMMDD (e.g. pandas"
                " pivot(index='pid', columns='date'))",
            )
        raise InputError(path, "no date columns found", "expected columns named YYYYMMDD, DYYYYMMDD or YYYY-MM-DD")
    seen: dict = {}
    for c in date_cols:
        if dates[c] in seen:
            raise InputError(path, f"date {dates[c]} appears in two columns ({seen[dates[c]]!r}, {c!r})")
        seen[dates[c]] = c
    check_date_like(columns, path)
    check_dates(date_cols, [dates[c] for c in date_cols], path, allow_dates)
    return date_cols, [dates[c] for c in date_cols]


def parse_crs(value, param: str = "input_crs") -> CRS:
    """A user-given CRS, or InputError naming the parameter."""
    try:
        return CRS.from_user_input(value)
    except Exception:
        raise InputError(None, f"unknown CRS {value!r}", "use e.g. EPSG:3035", param=param) from None


def select_epochs(times: np.ndarray, start=None, end=None) -> np.ndarray:
    """Boolean mask of ``times`` within ``[start, end]`` (dates as YYYY-MM-DD)."""

    def as_date(value, param):
        try:
            return np.datetime64(str(value), "D")
        except ValueError:
            raise InputError(None, f"not a date: {value!r}", "use YYYY-MM-DD", param=param) from None

    keep = np.ones(len(times), bool)
    if start is not None:
        keep &= times >= as_date(start, "start")
    if end is not None:
        keep &= times <= as_date(end, "end")
    if not keep.any():
        if start is not None and end is not None:
            asked, param = f"between {start} and {end}", "start/end"
        else:
            asked, param = (f"from {start} on", "start") if start is not None else (f"up to {end}", "end")
        raise InputError(None, f"no epoch {asked} (data: {times[0]} to {times[-1]})", param=param)
    return keep


def coordinate_columns(columns, path, input_crs):
    lower = {c.lower(): c for c in columns}
    if "easting" in lower and "northing" in lower:
        return lower["easting"], lower["northing"], parse_crs(input_crs or EGMS_CRS)
    for xn, yn in (("longitude", "latitude"), ("lon", "lat")):
        if xn in lower and yn in lower:
            return lower[xn], lower[yn], parse_crs(input_crs or "EPSG:4326")
    if "x" in lower and "y" in lower:
        if input_crs is None:
            raise InputError(path, "columns x/y have no CRS", "pass input_crs=EPSG:3035, or the points' CRS")
        return lower["x"], lower["y"], parse_crs(input_crs)
    raise InputError(path, "no coordinate columns found", "expected easting/northing (EPSG:3035) or latitude/longitude")


def arrow_error(path, exc, header=()) -> InputError:
    text = first_line(exc)
    m = re.search(r"invalid value '([^']*)'", text)
    if m and m[1] in header:  # a header line again inside the data
        return InputError(path, f"the header line appears again inside the data ({text})", "concatenated CSV files?")
    if "conversion error" in text or "invalid value" in text:
        return InputError(path, f"non-numeric value in a numeric column: {text}")
    if "Expected" in text and "columns" in text:
        return InputError(path, f"malformed or truncated row: {text}")
    return InputError(path, f"cannot parse as CSV: {text}")


def csv_sources(path: Path, open_files: bool = False):
    """Yield (display name, source) for a CSV or each CSV inside a zip.

    The source is a binary stream for zip members; for a plain CSV it is the path
    (pyarrow reads it directly), or an open binary file with ``open_files``.
    """
    if path.suffix.lower() == ".zip":
        zf, members = egms.csv_members(path)
        with zf:
            for m in members:
                with egms.open_member(zf, path, m) as fh:
                    yield f"{path}!{m}", fh
    elif open_files:
        with open(path, "rb") as fh:
            yield str(path), fh
    else:
        yield str(path), path


def choose_output_crs(input_crs: CRS, x, y, crs=None, egms: bool = False) -> CRS:
    """Output CRS: the user's, else EPSG:3035 for EGMS, else the input's if projected,
    else the UTM zone of the points' centre (geographic input must be projected)."""
    if crs is not None:
        try:
            out = CRS.from_user_input(crs)
        except Exception:
            raise InputError(None, f"unknown CRS {crs!r}", "use e.g. EPSG:3035", param="crs") from None
    elif egms:
        out = CRS.from_user_input(EGMS_CRS)
    elif input_crs.is_projected:
        out = input_crs
    else:
        from pyproj.aoi import AreaOfInterest
        from pyproj.database import query_utm_crs_info

        lon, lat = float(np.nanmedian(x)), float(np.nanmedian(y))
        info = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
        if not info:
            raise InputError(None, "input is geographic and no UTM zone fits", "pass crs=EPSG:XXXX", param="crs")
        out = CRS.from_epsg(int(info[0].code))
        log.info("input is in geographic coordinates; gridding in %s (pass crs=EPSG:XXXX to choose)", out.name)
    if not out.is_projected:
        raise InputError(
            None, f"{out.name} is not a projected CRS", "gridding needs metres, e.g. EPSG:3035", param="crs"
        )
    return out
