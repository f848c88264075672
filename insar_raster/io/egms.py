"""EGMS products as they are distributed: the one home of the EGMS CSV rules.

Every reader of measurement points (:mod:`insar_raster.io.points` in memory,
:mod:`insar_raster.io.cache` streaming) asks this module what an EGMS file is and how
tiles merge, so that both give the same answer and the same warning texts.

What is known here
------------------
- **Headers of every release.** 2020_2024 (L2a and L2b share it)::

      pid, mp_type, latitude, longitude, easting, northing, height_ortho, height_ellipse,
      line, pixel, rmse_ts, temporal_coherence, amplitude_dispersion, incidence_angle,
      track_angle, los_east, los_north, los_up, mean_velocity, mean_velocity_std,
      acceleration, acceleration_std, seasonality, seasonality_std, gnss_velocity, YYYYMMDD...

  2020_2024 L3 Up / East::

      pid, easting, northing, height_ortho, rmse_ts, mean_velocity, mean_velocity_std,
      acceleration, acceleration_std, seasonality, seasonality_std, gnss_velocity_n,
      gnss_velocity_e, gnss_velocity_u, YYYYMMDD...

  Older releases (2015_2021, 2018_2022, 2019_2023) say ``height, height_wgs84, rmse``
  instead of ``height_ortho, height_ellipse, rmse_ts``, have no ``gnss_*`` columns, and
  their L2a adds ``cluster_label``. See :data:`HEADERS`.
- **File names.** ``EGMS_L2b_{track:03d}_{burst:04d}_IW{1-3}_VV_{release}_{version}.zip``
  (also L2a) and ``EGMS_L3_E{xx}N{yy}_100km_{U|E}_{release}_{version}.zip``; the baseline
  and the first update have no ``_{release}_{version}`` suffix (EGMS Product Description
  and Format Specification, "naming convention"), e.g. ``EGMS_L3_E40N28_100km_E.zip``;
  each zip holds one ``.csv`` and one ``.xml`` (its "XML header file", whose
  ``<product_level>`` says L2a, L2b or L3, but no release, track or pass direction:
  :func:`xml_product_level`) (:func:`parse_file_name`, :func:`csv_members`;
  EGMStoolkit's merged files are named too: ``EGMS_L2b_015_VV_2018_2022_1.csv`` (one
  track's bursts), ``EGMS_L3_2018_2022_1_UD.csv`` / ``_EW`` (a component's tiles), with
  ``_clipped`` after a clip; a ``.gpkg`` or ``.parquet`` converted under the product's
  name, a browser's ``..._1 (1).zip``, a file manager's ``..._1 - Copy.zip`` and a zip
  whose member was renamed are read by the product name too; a damaged member is an :class:`InputError` naming the zip,
  :func:`open_member`; copies of a zip beside it, :func:`extracted_copies`).
- **Releases** (:func:`release_of`, :func:`header_release`, :func:`check_single_release`):
  each release is a separate processing (other pids, reference dates, calibration), so
  products of two releases never share one set of points, told by the names or, for
  renamed files, by the header (2020_2024 renamed ``height``/``rmse``).
- **Product level** (``"L2a"``, ``"L2b"``, ``"L3U"``, ``"L3E"``, ``"L3"`` or None) from the
  file name and the header (:func:`product_level`, :func:`header_kind`). The name decides
  where both say something: a name that contradicts the header (an L3 name over L2
  columns) is refused, an L2b name over an older L2a header (``cluster_label``) is read
  as named with a warning. L3 Up
  and East share their header: under a name that is not an EGMS name, words such as
  ``up``/``U``/``vertical`` or ``east``/``E``/``EW`` tell the component; otherwise the
  level is ``"L3"``: read alone, but refused beside other inputs, which it could be the
  other component of (:func:`check_unnamed_l3`). A header with only ``pid``, coordinates and dates says nothing.
  Without an EGMS name, ``cluster_label`` makes a file L2a (in a 2020_2024 header too,
  whose renamed columns still tell its release); a 2020_2024 L2 header without it (L2a
  and L2b share it) claims no level, unless the product's XML header file says L2a or L2b:
  in the zip for a zip member (:func:`zip_xml_level`), beside the file for a CSV extracted
  from it (``X.csv`` + ``X.xml``, or the folder's only CSV and XML: :func:`sibling_xml`);
  read only then: the name and the header win where they tell, and an XML that is
  malformed or contradicts the header is ignored.
  L2a (relative to a local reference point) and L2b (referenced to GNSS) never share one
  set of points (:func:`check_single_l2_level`).
- **Geometry.** L2 values are motion along the line of sight (LOS), positive towards the
  satellite; ``los_east/los_north/los_up`` are the components of the unit vector from
  the ground to the satellite (Sentinel-1 looks right, so an ascending pass, heading
  about -9 deg, has ``los_east < 0``; a descending one, about 191 deg, ``los_east > 0``).
  ``track_angle`` is the heading of the satellite track (deg clockwise from north): a
  pass is ascending when the track points north (:func:`pass_direction`); without
  ``track_angle``, when ``los_east < 0`` (:func:`pass_direction_of_los`). Two inputs can
  share a cube only with the same geometry (:class:`Geometry`).
- **Merging tiles** (:func:`common_epochs`, :func:`first_of_each_pid`,
  :func:`warn_dropped_rows`): epochs common to all tiles are kept (and the dropped ones
  counted), duplicate pids across overlapping tiles keep their first occurrence, rows
  with a missing value are dropped, each with one warning text used by every reader.

Per-MP geometry contract (points Dataset): per-point float32 variables ``los_east``,
``los_north``, ``los_up``, ``incidence_angle``, ``track_angle`` when the file has them;
attrs ``product_level``, ``track`` (int or None) and ``pass_direction``
(``"ascending"``, ``"descending"`` or None). NetCDF attributes cannot hold None, so a
missing value is left out of the attrs; read them with :func:`points_geometry`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import numpy as np

from insar_raster.errors import InputError, first_line

#: An epoch column: ``YYYYMMDD`` (EGMS), ``DYYYYMMDD`` or ``YYYY-MM-DD``; also ``d20200107``
#: (a database that lowercases names) and R's ``X20200107`` / ``X2020.01.07`` (``read.csv``
#: makes names that start with a digit valid that way); a time of day after the date
#: (``2020-01-07 05:17:00``, pandas' name for an acquisition time) is left out.
_DATE_RE = re.compile(
    r"^[DdXx]?(\d{4})([-.]?)(\d{2})\2(\d{2})" + r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)


def parse_date_column(name: str):
    """Date of a column named ``YYYYMMDD``, ``DYYYYMMDD`` or ``YYYY-MM-DD`` (or ``d``/``X``
    prefixed, ``YYYY.MM.DD``), else None."""
    m = _DATE_RE.match(str(name).strip())
    if not m:
        return None
    try:
        return np.datetime64(f"{m[1]}-{m[3]}-{m[4]}", "D")
    except ValueError:
        return None


# A date as a spreadsheet writes it back into a header: 07/01/2020, 7.1.2020, 01-07-2020.
_SHEET_DATE_RE = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})$")


def spreadsheet_date_columns(columns, name) -> dict:
    """Dates of columns named as a spreadsheet rewrites a date header (``07/01/2020``,
    ``7.1.2020``, ``01-07-2020``): a ``YYYY-MM-DD`` header opened and saved again in Excel.

    Day and month are told apart across all such columns: dots are day first (European);
    otherwise the field that exceeds 12 somewhere is the day (EGMS dates every 6 or 12
    days always give one). Returns {column: date}; {} when no column is named so.

    Raises
    ------
    InputError
        When the order cannot be told (no field above 12), or a name is no date.
    """
    found = {c: m for c in columns if (m := _SHEET_DATE_RE.match(str(c).strip()))}
    if not found:
        return {}
    firsts = max(int(m[1]) for m in found.values())
    seconds = max(int(m[3]) for m in found.values())
    example = next(iter(found))
    if any(m[2] == "." for m in found.values()) or (firsts > 12 >= seconds):
        day_first = True
    elif seconds > 12 >= firsts:
        day_first = False
    else:
        raise InputError(
            name,
            f"date columns such as {example!r} (a header a spreadsheet rewrote) do not say whether the day or"
            " the month comes first",
            "name the date columns YYYYMMDD (e.g. 20200107), as EGMS writes them",
        )
    dates = {}
    for c, m in found.items():
        day, month = (m[1], m[3]) if day_first else (m[3], m[1])
        try:
            dates[c] = np.datetime64(f"{m[4]}-{int(month):02d}-{int(day):02d}", "D")
        except ValueError:
            raise InputError(name, f"column {c!r} is named like a date but is not a valid date") from None
    return dates


#: Lines an Excel worksheet holds (since Excel 2007): a CSV opened and saved again in Excel
#: keeps at most this many, the header included; the rows past it are cut without a word.
SPREADSHEET_MAX_ROWS = 1_048_576


def warn_spreadsheet_row_limit(name, data_rows: int) -> bool:
    """Warn when a CSV has exactly :data:`SPREADSHEET_MAX_ROWS` lines (its header and
    ``data_rows``, counted by the reader): it was almost surely cut by a spreadsheet.
    Returns whether it warned."""
    if data_rows + 1 != SPREADSHEET_MAX_ROWS:
        return False
    warnings.warn(
        f"{display_name(name)} has exactly Excel's row limit ({SPREADSHEET_MAX_ROWS:,} lines with the header):"
        " it was probably cut by a spreadsheet; rows past it are lost",
        stacklevel=3,
    )
    return True


#: CRS of EGMS easting/northing columns (ETRS89-LAEA).
EGMS_CRS = "EPSG:3035"

_L2_2020 = (
    "pid mp_type latitude longitude easting northing height_ortho height_ellipse line pixel "
    "rmse_ts temporal_coherence amplitude_dispersion incidence_angle track_angle los_east los_north "
    "los_up mean_velocity mean_velocity_std acceleration acceleration_std seasonality seasonality_std "
    "gnss_velocity"
).split()
_L3_2020 = (
    "pid easting northing height_ortho rmse_ts mean_velocity mean_velocity_std acceleration "
    "acceleration_std seasonality seasonality_std gnss_velocity_n gnss_velocity_e gnss_velocity_u"
).split()
_L2B_OLD = (
    "pid mp_type latitude longitude easting northing height height_wgs84 line pixel rmse "
    "temporal_coherence amplitude_dispersion incidence_angle track_angle los_east los_north los_up "
    "mean_velocity mean_velocity_std acceleration acceleration_std seasonality seasonality_std"
).split()
_L2A_OLD = _L2B_OLD[:13] + ["cluster_label"] + _L2B_OLD[13:]
_L3_OLD = (
    "pid easting northing height rmse mean_velocity mean_velocity_std acceleration acceleration_std "
    "seasonality seasonality_std"
).split()

#: Metadata columns (before the date columns) of each release and level, as distributed.
HEADERS: dict[str, tuple[str, ...]] = {
    "2020_2024 L2a": tuple(_L2_2020),
    "2020_2024 L2b": tuple(_L2_2020),
    "2020_2024 L3": tuple(_L3_2020),
    "2018_2022 L2a": tuple(_L2A_OLD),
    "2018_2022 L2b": tuple(_L2B_OLD),
    "2018_2022 L3": tuple(_L3_OLD),
}

#: Per-MP geometry columns kept as float32 variables (deg for the angles).
GEOMETRY_COLUMNS = ("los_east", "los_north", "los_up", "incidence_angle", "track_angle")
#: Per-MP attributes kept as float32 variables when present, whatever the release calls them.
POINT_COLUMNS = (
    "mean_velocity",
    "mean_velocity_std",
    "height",
    "height_ortho",
    "height_ellipse",
    "height_wgs84",
    "rmse",
    "rmse_ts",
    "temporal_coherence",
) + GEOMETRY_COLUMNS
#: EGMS columns as a Shapefile holds them (GDAL cuts field names to 10 characters and
#: numbers the clashes): read back under their EGMS names.
SHAPEFILE_NAMES = {
    "height_ort": "height_ortho",
    "height_ell": "height_ellipse",
    "height_wgs": "height_wgs84",
    "temporal_c": "temporal_coherence",
    "incidence_": "incidence_angle",
    "track_angl": "track_angle",
    "mean_veloc": "mean_velocity",
    "mean_vel_1": "mean_velocity_std",
}
#: Columns read besides the dates: identifiers, coordinates and :data:`POINT_COLUMNS`.
READ_COLUMNS = frozenset(
    {"pid", "easting", "northing", "latitude", "longitude", "lat", "lon", "x", "y", *POINT_COLUMNS}
)
#: Per-MP standard deviation of the series (mm), by release: a weight where one is needed.
RMSE_COLUMNS = ("rmse_ts", "rmse")

# The ``_{release}_{version}`` suffix is absent from the baseline's and first update's names;
# ``_clipped``: EGMStoolkit's clip of a file; words a user added after the version
# (``_subset``, ``-reprojected``) are left out (without a release, such a name is not read).
_L2_NAME = re.compile(
    r"^EGMS_(L2[ab])_(\d{3})_(\d{4})_IW([1-3])_VV(?:_(\d{4}_\d{4})_(\d+)(?:[_ .-].*)?)?(?:_clipped)?$", re.IGNORECASE
)
_L3_NAME = re.compile(
    r"^EGMS_L3_E(\d{2})N(\d{2})_100km_([UE])(?:_(\d{4}_\d{4})_(\d+)(?:[_ .-].*)?)?(?:_clipped)?$", re.IGNORECASE
)
# EGMStoolkit's merged files (one track's bursts, one release's L3 tiles of a component),
# optionally numbered parts (its .vrt merging) and clipped: ``EGMS_L2b_015_VV_2018_2022_1``,
# ``EGMS_L3_2018_2022_1_UD_clipped``; the 2015_2021 release again without the suffix.
_L2_MERGED = re.compile(r"^EGMS_(L2[ab])_(\d{3})_VV(?:_(\d{4}_\d{4})_(\d+))?(?:_\d+)?(?:_clipped)?$", re.IGNORECASE)
_L3_MERGED = re.compile(r"^EGMS_L3(?:_(\d{4}_\d{4})_(\d+))?_(UD|EW)(?:_clipped)?$", re.IGNORECASE)


# Names a copy of a file gets: a browser's for a file downloaded again ("X (1).zip"),
# Windows Explorer's ("X - Copy.zip", "X - Copy (2).zip", in a European Windows "X - Kopie",
# "X - Copie", "X - Copia", "X - Kopia"; before Windows 7 "Copy of X.zip", "Copy (2) of
# X.zip"), macOS Finder's ("X copy.zip", "X copy 2.zip") and GNOME Files' ("X (copy).zip",
# "X (another copy).zip", "X (3rd copy).zip").
_COPY_SUFFIX = re.compile(
    r"(?:\s*\(\d+\)|\s+-\s+(?:copy|kopie|copie|copia|kopia|cópia)(?:\s*\(\d+\))?|\s+copy(?:\s+\d+)?"
    r"|\s+\((?:another |\d+(?:st|nd|rd|th) )?copy\))$",
    re.IGNORECASE,
)
_COPY_PREFIX = re.compile(r"^copy(?:\s*\(\d+\))?\s+of\s+", re.IGNORECASE)


def without_copy_marker(stem: str) -> str:
    """A file name (without suffix) less the words a browser or file manager adds to a
    copy: ``X (1)``, ``X - Copy``, ``X - Copy (2)``, ``Copy of X``, ``X copy 2``, ``X (copy)``
    -> ``X``."""
    previous = None
    while stem != previous:  # "X (1) - Copy": a copy of a second download
        previous = stem
        stem = _COPY_PREFIX.sub("", _COPY_SUFFIX.sub("", stem))
    return stem


#: Suffixes left out of a name before it is parsed: the distribution's, and those of the
#: files users convert a product's CSV to (GDAL ogr2ogr, GeoPandas) under the same name.
_NAME_SUFFIXES = (
    ".zip",
    ".csv",
    ".txt",
    ".xml",
    ".tif",
    ".gpkg",
    ".parquet",
    ".geoparquet",
    ".pq",
    ".shp",
    ".fgb",
    ".geojson",
)


@dataclass(frozen=True)
class FileName:
    """What an EGMS file name says (fields not in that kind of name are None)."""

    level: str  # "L2a", "L2b", "L3U", "L3E"
    release: str | None  # e.g. "2020_2024"; None in the baseline's and first update's names
    version: int | None
    track: int | None = None
    burst: int | None = None
    swath: int | None = None
    tile: str | None = None  # e.g. "E32N34"


def parse_file_name(name) -> FileName | None:
    """Parse an EGMS product name (a ``.zip``, its ``.csv`` or a ``zip!member`` path).

    Returns None for a name that is not an EGMS product name.
    """
    zip_part, sep, member = str(name).partition("!")
    if sep:  # a zip member: its own name, else (a member renamed, e.g. data.csv) the zip's
        return _parse_stem(Path(member).name) or _parse_stem(Path(zip_part).name)
    return _parse_stem(Path(str(name)).name)


def _parse_stem(stem: str) -> FileName | None:
    # Conversions keep the product's name with their own suffix (ogr2ogr to .gpkg, .parquet).
    for suffix in _NAME_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = without_copy_marker(stem)
    m = _L2_NAME.match(stem)
    if m:
        level = "L2" + m[1][-1].lower()
        version = int(m[6]) if m[6] else None
        return FileName(level, m[5], version, track=int(m[2]), burst=int(m[3]), swath=int(m[4]))
    m = _L3_NAME.match(stem)
    if m:
        return FileName(f"L3{m[3].upper()}", m[4], int(m[5]) if m[5] else None, tile=f"E{m[1]}N{m[2]}")
    m = _L2_MERGED.match(stem)
    if m:
        return FileName("L2" + m[1][-1].lower(), m[3], int(m[4]) if m[4] else None, track=int(m[2]))
    m = _L3_MERGED.match(stem)
    if m:
        return FileName("L3" + m[3][0].upper(), m[1], int(m[2]) if m[2] else None)
    return None


#: What :func:`release_of` says of an EGMS name without ``_{release}_{version}`` (the
#: baseline and the first update).
UNNAMED_RELEASE = "baseline or first update (no release in the name)"


def release_of(name) -> str | None:
    """The release an EGMS file name states (e.g. ``"2020_2024"``), :data:`UNNAMED_RELEASE`
    for an EGMS name without one, None for a name that is not an EGMS product name."""
    parsed = parse_file_name(name)
    if parsed is None:
        return None
    return parsed.release or UNNAMED_RELEASE


#: The header families: 2020_2024 renamed columns (:data:`HEADERS`).
NEW_HEADER = "2020_2024"
OLD_HEADER = "before 2020_2024"


def header_release(columns) -> str | None:
    """:data:`NEW_HEADER` for the 2020_2024 column names (``height_ortho``, ``rmse_ts``,
    ``gnss_velocity*``), :data:`OLD_HEADER` for those of the releases before it
    (``height_wgs84``, ``rmse``), None when the header has neither, or both.

    ``cluster_label`` (L2a) says the level, not the release: it tells an older release only
    in a header without the renamed columns (:data:`HEADERS`: only older L2a files have it).
    """
    lower = {str(c).strip().lower() for c in columns}
    new = bool(lower & {"height_ortho", "height_ellipse", "rmse_ts", "gnss_velocity", *_L3_ONLY})
    old = bool(lower & {"height_wgs84", "rmse"}) or (not new and "cluster_label" in lower)
    if new == old:
        return None
    return NEW_HEADER if new else OLD_HEADER


def check_single_release(names, headers=None) -> None:
    """Refuse EGMS inputs of different releases: by their names (an EGMS name states its
    release) and, with ``headers`` (the columns of each input), by the header family, so
    renamed files (``asc.csv``) of 2020_2024 and of an older release are refused too.

    Each release is a separate processing of the whole record: other pids, other reference
    dates, other calibration. Bursts of two releases in one set would count the same
    scatterers twice over the years the releases share and keep only those years' dates.

    Raises
    ------
    InputError
        Naming each file's release.
    """
    _check_name_releases(names)
    if headers is None:
        return
    families: dict[str, list[str]] = {}
    for name, columns in zip(names, headers):
        family = header_release(columns)
        if family is None:
            named = release_of(name)  # an EGMS name without release: baseline or first update
            family = None if named is None else (NEW_HEADER if named == "2020_2024" else OLD_HEADER)
        if family is not None:
            shown = display_name(name)
            families.setdefault(family, [])
            if shown not in families[family]:
                families[family].append(shown)
    if len(families) > 1:
        listed = "; ".join(
            f"{', '.join(files)}: {'2020_2024 columns' if family == NEW_HEADER else 'columns of a release before 2020_2024'}"
            for family, files in families.items()
        )
        raise InputError(
            "",
            f"inputs come from different EGMS releases ({listed})",
            "use the products of one release, or process each release separately: the same MPs have other"
            " pids and reference dates in each, and only the dates they share would be kept",
        )


def _check_name_releases(names) -> None:
    releases: dict[str, list[str]] = {}
    for name in names:
        release = release_of(name)
        if release is not None:
            shown = Path(str(name).split("!")[0]).name
            releases.setdefault(release, [])
            if shown not in releases[release]:
                releases[release].append(shown)
    if len(releases) > 1:
        listed = "; ".join(f"{', '.join(files)}: {release}" for release, files in releases.items())
        raise InputError(
            "",
            f"inputs come from different EGMS releases ({listed})",
            "use the products of one release, or process each release separately: the same MPs have other"
            " pids and reference dates in each, and only the dates they share would be kept",
        )


#: Columns only L2a/L2b products have (any release).
_L2_ONLY = frozenset(
    "mp_type latitude longitude height_ellipse height_wgs84 line pixel temporal_coherence amplitude_dispersion"
    " incidence_angle track_angle los_east los_north los_up gnss_velocity cluster_label".split()
)
#: Columns only L3 products have (2020_2024), and the product columns every L3 release has
#: besides ``pid, easting, northing``: with either, a header without L2 columns is L3's.
_L3_ONLY = frozenset({"gnss_velocity_n", "gnss_velocity_e", "gnss_velocity_u"})
_L3_PRODUCT = frozenset({"mean_velocity", "mean_velocity_std"})

# Words of a file name (not an EGMS one) that say which L3 component it holds, e.g.
# ``up.csv``, ``milan_vertical.csv``, ``L3_east_2020.gpkg``, ``EW.csv``.
_UP_WORDS = frozenset({"u", "ud", "up", "vertical", "vert"})
_EAST_WORDS = frozenset({"e", "ew", "east", "eastwest"})


def header_kind(columns) -> str | None:
    """``"L2a"``, ``"L2"`` (L2a or L2b: 2020_2024 headers are the same), ``"L3"`` or None
    (not an EGMS header) from the column names.

    L2a: ``cluster_label`` (older releases' L2a only). L2: ``latitude/longitude`` or any
    column only L2 products have (``mp_type``, ``track_angle``, ``los_*``, ...). L3: no L2
    column, and the L3 product columns (``mean_velocity``, ``mean_velocity_std`` with
    ``rmse`` or ``rmse_ts``, or 2020_2024's ``gnss_velocity_n/e/u``). A file with only
    ``pid``, coordinates and dates says nothing (None): it may be a stripped L2 file.
    """
    lower = {str(c).strip().lower() for c in columns}
    if not {"pid", "easting", "northing"} <= lower:
        return None
    if "cluster_label" in lower:
        return "L2a"
    if {"latitude", "longitude"} <= lower or lower & _L2_ONLY:
        return "L2"
    if lower & _L3_ONLY or (_L3_PRODUCT <= lower and lower & set(RMSE_COLUMNS)):
        return "L3"
    return None


def product_label(columns) -> str:
    """The ``product`` attr of a CSV: ``"EGMS L2"`` / ``"EGMS L3"`` by its header, ``"EGMS"``
    when the header does not tell (the CSV is still read by the EGMS rules: EPSG:3035
    easting/northing, output in EPSG:3035)."""
    kind = header_kind(columns)
    return f"EGMS {kind[:2]}" if kind else "EGMS"


def l3_component_of_name(name) -> str | None:
    """``"L3U"`` / ``"L3E"`` when the words of a file name say Up or East (``up.csv``,
    ``vertical``, ``UD``; ``east.csv``, ``EW``), else None (neither, or both)."""
    stem = Path(str(name).split("!")[-1]).name.rsplit(".", 1)[0].lower()
    words = set(re.split(r"[^a-z0-9]+", stem)) | {stem.replace("-", "_").replace("_", "")}
    up, east = bool(words & _UP_WORDS), bool(words & _EAST_WORDS)
    if up == east:
        return None
    return "L3U" if up else "L3E"


def product_level(name, columns, warn: bool = True) -> str | None:
    """Product level of an EGMS CSV from its file name and header, else its XML header file.

    The name tells L2a/L2b/L3U/L3E; the header tells L2a (older releases, by
    ``cluster_label``), L2 or L3 (:func:`header_kind`). An L3 header under a name that is
    not an EGMS name is ``"L3U"``/``"L3E"`` when the name's words say so (``up.csv``,
    ``east.csv``: :func:`l3_component_of_name`), else ``"L3"`` (Up or East not told:
    their headers are the same). Only when neither settles it (a file or zip member
    whose names are not EGMS names, under a 2020_2024 L2 header, which L2a and L2b share,
    or a header that says nothing) is the product's XML header file read, in the zip or
    beside the extracted file (:func:`header_file_level`): its ``L2a``/``L2b``, or its
    ``L3`` over a header that says nothing; an XML contradicting the header is ignored. None when nothing tells (not an
    EGMS file, or one without the columns that say its level).

    Raises
    ------
    InputError
        When the name and the header disagree: an L3 name over an L2 header or the
        reverse.

    Warns
    -----
    UserWarning
        An L2b name over an older L2a header (``cluster_label``): read as named.
    """
    parsed = parse_file_name(name)
    kind = header_kind(columns)
    if parsed is None:
        if kind == "L3":
            return l3_component_of_name(name) or "L3"
        if kind == "L2a":
            return "L2a"
        # Neither name nor header tells (a 2020_2024 L2 header is L2a's and L2b's): the
        # product's XML header file may (in its zip, or beside the extracted CSV).
        stated = header_file_level(name)
        if stated in ("L2a", "L2b"):
            return stated
        if stated == "L3" and kind is None:
            return l3_component_of_name(name) or "L3"
        return None
    if kind is not None and kind[:2] != parsed.level[:2]:
        raise InputError(
            name,
            f"file name says EGMS {parsed.level} but the columns are those of an {kind} product",
            "the file was renamed or its columns changed: name it after the product it holds",
        )
    if warn and kind == "L2a" and parsed.level != "L2a":
        warnings.warn(
            f"{display_name(name)}: the file name says EGMS {parsed.level} but the columns include cluster_label,"
            f" which only L2a files have: read as {parsed.level}, as named",
            stacklevel=2,
        )
    return parsed.level


def pass_direction(track_angle) -> str | None:
    """``"ascending"`` when the satellite heads north (EGMS ``track_angle`` about -9 to
    -15 deg), ``"descending"`` when it heads south (about 190 deg); None without angles.

    The circular mean of the angles decides, so -9 and 351 deg are the same track.
    """
    angle = np.asarray(track_angle, dtype=np.float64)
    angle = angle[np.isfinite(angle)]
    if angle.size == 0:
        return None
    north = np.cos(np.deg2rad(angle)).mean()
    if abs(north) < 1e-6:
        return None
    return "ascending" if north > 0 else "descending"


def pass_direction_of_los(los_east) -> str | None:
    """The pass direction from the east component of the LOS unit vector (ground to
    satellite): Sentinel-1 looks right, so an ascending satellite is west of the ground
    (``los_east`` about -0.6), a descending one east (about +0.6). None without values or
    near 0 (no side told)."""
    east = np.asarray(los_east, dtype=np.float64)
    east = east[np.isfinite(east)]
    if east.size == 0 or abs(east.mean()) < 0.05:
        return None
    return "ascending" if east.mean() < 0 else "descending"


def pass_direction_of(track_angle=None, los_east=None) -> str | None:
    """The pass direction from ``track_angle`` (:func:`pass_direction`), else from
    ``los_east`` (:func:`pass_direction_of_los`); None when neither tells."""
    direction = pass_direction(track_angle) if track_angle is not None else None
    if direction is None and los_east is not None:
        direction = pass_direction_of_los(los_east)
    return direction


@dataclass(frozen=True)
class Geometry:
    """What a points file measures: LOS of one track and pass direction, vertical or east.

    Parameters
    ----------
    level : str or None
        Product level (``"L2a"``, ``"L2b"``, ``"L3U"``, ``"L3E"``; ``"L3"``: an L3 file
        whose name does not say Up or East) or None (unknown).
    track : int or None
        Relative orbit (L2 file names).
    pass_direction : str or None
        ``"ascending"`` or ``"descending"`` (from ``track_angle``).
    kind : str or None
        ``"L2"`` or ``"L3"`` from the header alone, when the level is not known.
    """

    level: str | None = None
    track: int | None = None
    pass_direction: str | None = None
    kind: str | None = None

    @property
    def component(self) -> str | None:
        """``"LOS"``, ``"vertical"``, ``"east-west"``, ``"L3"`` (vertical or east-west,
        unnamed) or None (unknown)."""
        if self.level is not None:
            return {"L3U": "vertical", "L3E": "east-west", "L3": "L3"}.get(self.level, "LOS")
        if self.kind == "L3":
            return "L3"
        if self.kind in ("L2", "L2a") or self.pass_direction or self.track is not None:
            return "LOS"
        return None

    def compatible(self, other: "Geometry") -> bool:
        """Whether values of both can be averaged: same component, and for LOS the same
        track and pass direction where both are known. Unknown matches anything."""
        a, b = self.component, other.component
        if a is None or b is None:
            return True
        if "L3" in (a, b):  # an unnamed L3 file: Up or East cannot be told apart
            return "LOS" not in (a, b)
        if a != b:
            return False
        if a != "LOS":
            return True
        if self.track is not None and other.track is not None and self.track != other.track:
            return False
        if self.pass_direction and other.pass_direction and self.pass_direction != other.pass_direction:
            return False
        return True

    def merged(self, other: "Geometry") -> "Geometry":
        """The geometry of a group holding both (compatible) inputs: known values win (an
        L3 component over an unnamed ``"L3"``); L2a with L2b of one track has no single
        level (None)."""
        levels = {self.level, other.level} - {None}
        if len(levels) == 2 and "L3" in levels:
            levels.discard("L3")
        level = levels.pop() if len(levels) == 1 else None
        return Geometry(
            level,
            self.track if self.track is not None else other.track,
            self.pass_direction or other.pass_direction,
            self.kind or other.kind,
        )

    def __str__(self) -> str:
        comp = self.component
        if comp is None:
            return "unknown geometry"
        if comp == "L3":
            return "L3 (Up or East not named)"
        if comp != "LOS":
            return f"{self.level} ({comp})"
        parts = [self.level or "LOS"]
        if self.track is not None:
            parts.append(f"track {self.track}")
        parts.append(self.pass_direction or "pass direction unknown")
        return " ".join(parts)

    def attrs(self) -> dict:
        """The contract attrs (``product_level``, ``track``, ``pass_direction``)."""
        return {"product_level": self.level, "track": self.track, "pass_direction": self.pass_direction}


def geometry_of(name, columns, track_angle=None, los_east=None, warn: bool = True) -> Geometry:
    """Geometry of one CSV from its name, header and (a sample of) its ``track_angle``
    (or, without one, its ``los_east``: :func:`pass_direction_of_los`); ``warn``: see
    :func:`product_level`."""
    parsed = parse_file_name(name)
    direction = pass_direction_of(track_angle, los_east)
    level = product_level(name, columns, warn)
    return Geometry(level, parsed.track if parsed else None, direction, header_kind(columns))


class MixedGeometryError(InputError):
    """Inputs measure different things (tracks, pass directions, LOS/vertical/east)."""

    def __init__(self, groups: dict, hint: str | None = None):
        self.groups = groups  # Geometry -> list of file names
        listed = "; ".join(
            f"{', '.join(Path(n.split('!')[0]).name for n in names)}: {g}" for g, names in groups.items()
        )
        super().__init__(
            "",
            f"inputs have different geometries and cannot share one cube ({listed})",
            hint
            or "grid each geometry separately, or decompose ascending and descending LOS into vertical and east-west",
        )


class MixedLevelError(InputError):
    """L2a with L2b inputs of one track (:func:`check_single_l2_level`)."""

    def __init__(self, groups: dict, problem: str, hint: str):
        self.groups = groups  # level ("L2a", "L2b") -> list of input names
        super().__init__("", problem, hint)


def group_geometries(named: list[tuple[str, Geometry]]) -> dict:
    """Group (name, geometry) pairs into compatible groups: {Geometry: [names]}."""
    groups: dict[Geometry, list[str]] = {}
    for name, geom in named:
        for key in list(groups):
            if key.compatible(geom):
                names = groups.pop(key)
                groups.setdefault(key.merged(geom), []).extend(names + [name])
                break
        else:
            groups[geom] = [name]
    return groups


def check_single_geometry(named: list[tuple[str, Geometry]]) -> Geometry:
    """The common geometry of the inputs, or :class:`MixedGeometryError` naming them (an
    :class:`InputError` for L2a with L2b, :func:`check_single_l2_level`, or an L3 input
    whose name does not say Up or East beside others, :func:`check_unnamed_l3`)."""
    groups = group_geometries(named)
    if len(groups) > 1:
        raise MixedGeometryError(groups)
    check_single_l2_level(named)
    check_unnamed_l3(named)
    return next(iter(groups)) if groups else Geometry()


def check_single_l2_level(named: list[tuple[str, Geometry]]) -> None:
    """Refuse L2a with L2b inputs (of one track: other geometries are refused before).

    They measure the same LOS against other references: L2a (Basic) relative to a local
    reference point, L2b (Calibrated) to a GNSS model. Merged, one cube would mix both
    references (and pids repeated across them would be dropped as duplicates) without a word.

    Raises
    ------
    MixedLevelError
        Naming each file's level.
    """
    levels: dict[str, list[str]] = {}
    for name, geometry in named:
        if geometry.level in ("L2a", "L2b"):
            levels.setdefault(geometry.level, []).append(name)
    if len(levels) > 1:
        shown = {
            level: dict.fromkeys(Path(str(n).split("!")[0]).name for n in names) for level, names in levels.items()
        }
        listed = "; ".join(f"{', '.join(files)}: {level}" for level, files in sorted(shown.items()))
        raise MixedLevelError(
            dict(sorted(levels.items())),
            f"inputs mix EGMS L2a (Basic, relative to a local reference point) and L2b (Calibrated, referenced to"
            f" GNSS) products ({listed})",
            "grid one level: L2b for motion comparable across bursts, L2a for the local relative motion",
        )


def check_unnamed_l3(named: list[tuple[str, Geometry]]) -> None:
    """Refuse an L3 input whose name does not say Up or East (level ``"L3"``) beside
    other inputs: L3 Up and East have the same header, so an Up file named ``tile1.csv``
    and an East file named ``tile2.csv`` cannot be told apart, and merged they would be
    averaged in one cube. One input alone (the cube's level is ``"L3"``), or inputs whose
    names say their component, pass.

    Raises
    ------
    InputError
        Naming the unnamed files (and the others beside them).
    """
    shown = list(dict.fromkeys(display_name(n) for n, _ in named))
    unnamed = list(dict.fromkeys(display_name(n) for n, g in named if g.level == "L3"))
    if not unnamed or len(shown) < 2:
        return
    others = list(dict.fromkeys(f"{display_name(n)}: {g}" for n, g in named if g.level != "L3"))
    beside = f", beside {'; '.join(others)}" if others else ""
    raise InputError(
        "",
        f"L3 Up and East have the same columns and the name{'s' if len(unnamed) > 1 else ''} of"
        f" {', '.join(unnamed)} do{'' if len(unnamed) > 1 else 'es'} not say which{beside}: gridded together,"
        " Up and East could be averaged in one cube",
        "rename each file with its component, _U_ or _E_ as EGMS names do, e.g. ..._100km_U_..., or a word such as"
        " up, vertical, east, EW; or grid each file in a separate run",
    )


def points_geometry(points) -> Geometry:
    """The :class:`Geometry` a points Dataset's attrs describe."""
    track = points.attrs.get("track")
    return Geometry(
        points.attrs.get("product_level") or None,
        None if track is None or track == "" else int(track),
        points.attrs.get("pass_direction") or None,
    )


#: Geometry of each variable of a decomposed cube (``grid --decompose``), as the EGMS
#: L3 product that measures the same component.
_COMPONENT_LEVELS = {"vertical": "L3U", "east_west": "L3E"}
_LEVEL_NAMES = {"L3U": "L3 Up (U)", "L3E": "L3 East (E)"}


def cube_geometry(attrs) -> Geometry:
    """The :class:`Geometry` of a cube's values from its attrs: the product level, track
    and pass direction ``grid`` recorded, or, for a component of a decomposed cube
    (attr ``component``), the L3 level measuring it (``vertical`` as L3U)."""
    component = attrs.get("component")
    if component in _COMPONENT_LEVELS:
        return Geometry(_COMPONENT_LEVELS[component])
    track = attrs.get("track")
    return Geometry(
        attrs.get("product_level") or None,
        None if track is None or track == "" else int(track),
        attrs.get("pass_direction") or None,
    )


def check_points_on_cube(points: Geometry, cube_attrs, name=None) -> None:
    """Refuse measurement points whose values are not what the cube holds.

    A cube forecast (or scored) at MPs must be the quantity the MPs measure: LOS of the
    same track and pass direction (and level: L2a and L2b have other references), or the
    same L3 component (EGMS L3 Up points on a ``vertical`` cube, L3 East on ``east_west``). LOS points on a decomposed cube are
    refused rather than projected: the projection would need both components forecast
    and a north-south motion assumed zero, and would no longer be the MP's own series.
    Unknown geometries (files without EGMS names or geometry columns) pass.

    Raises
    ------
    InputError
        About ``name``, naming both geometries.
    """
    cube = cube_geometry(cube_attrs)
    if cube.compatible(points):
        levels = {cube.level, points.level}
        if levels == {"L2a", "L2b"}:
            # One LOS, two references (as grid refuses them together): the point forecast
            # would add the cube's change to each MP's level measured against the other one.
            raise InputError(
                name,
                f"the points are {points} but the cube was gridded from {cube.level} (L2a: Basic, relative to a local"
                " reference point; L2b: Calibrated, referenced to GNSS)",
                "use points of the level the cube was gridded from",
            )
        return
    component = cube_attrs.get("component")
    if component in _COMPONENT_LEVELS:
        held = f"'{component}' decomposed from ascending and descending LOS"
        level = _COMPONENT_LEVELS[component]
        hint = (
            f"use EGMS {_LEVEL_NAMES[level]} points for it, or forecast LOS points on a cube gridded from them"
            if points.component == "LOS"
            else f"use EGMS {_LEVEL_NAMES[level]} points, or the other component of the cube"
        )
    else:
        held = str(cube)
        hint = "use points of the geometry the cube was gridded from: same product, track and pass direction"
    raise InputError(name, f"the points are {points} but the cube holds {held}", hint)


def geometry_attrs(geometry: Geometry) -> dict:
    """Contract attrs without the None values (NetCDF and JSON-safe)."""
    return {k: v for k, v in geometry.attrs().items() if v is not None}


# --------------------------------------------------------------------------- files


#: What a damaged zip (or one compressed with a method Python cannot inflate) raises on reading.
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)


def _zip_read_error(path, member: str, exc: Exception) -> InputError:
    text = first_line(exc)
    if isinstance(exc, NotImplementedError):  # e.g. Deflate64, written by some archivers for big files
        return InputError(
            path,
            f"{member} is compressed with a method the zip reader cannot inflate ({text})",
            "extract the .csv with another unzip tool and pass the .csv",
        )
    return InputError(path, f"damaged zip archive: {member} cannot be read ({text})", "download it again")


class _MemberStream:
    """A zip member's binary stream whose read errors (bad CRC, truncated or damaged data)
    are :class:`InputError` about the zip. Not seekable: members seek by re-inflating."""

    def __init__(self, fh, path, member: str):
        self._fh, self._path, self._member = fh, path, member

    def read(self, size: int = -1) -> bytes:
        try:
            return self._fh.read(size)
        except _ZIP_READ_ERRORS as exc:
            raise _zip_read_error(self._path, self._member, exc) from None

    def readline(self, size: int = -1) -> bytes:
        try:
            return self._fh.readline(size)
        except _ZIP_READ_ERRORS as exc:
            raise _zip_read_error(self._path, self._member, exc) from None

    def seekable(self) -> bool:
        return False


@contextlib.contextmanager
def open_member(zf: zipfile.ZipFile, path, member: str):
    """Open ``member`` of the zip ``path`` for reading; damage is an :class:`InputError`
    naming the zip (one line, exit 2), found on opening or on any later read."""
    try:
        fh = zf.open(member)
    except _ZIP_READ_ERRORS as exc:
        raise _zip_read_error(path, member, exc) from None
    with fh:
        yield _MemberStream(fh, path, member)


def display_name(name) -> str:
    """An input's name as attrs and messages show it: ``a.zip!a.csv`` for a zip member
    (a folder inside the zip left out, the zip kept), the file name otherwise."""
    zip_part, sep, member = str(name).partition("!")
    return Path(zip_part).name + (f"!{Path(member).name}" if sep else "")


def csv_members(path: Path) -> tuple[zipfile.ZipFile, list[str]]:
    """The open zip and its CSV members (an EGMS zip holds one ``.csv`` and one ``.xml``)."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(path, "not a valid zip archive") from None
    members = [m for m in zf.namelist() if m.lower().endswith(".csv")]
    if not members:
        zips = [m for m in zf.namelist() if m.lower().endswith(".zip")]
        zf.close()
        if zips:  # e.g. a folder of downloads zipped again for transfer
            raise InputError(
                path,
                f"zip archive holds no .csv file but {len(zips)} zip archive(s) ({Path(zips[0]).name}, ...)",
                "extract it and pass the folder of product zips",
            )
        raise InputError(path, "zip archive holds no .csv file")
    return zf, members


def extracted_copies(files) -> dict:
    """Files among ``files`` that are the extracted copy of an EGMS zip also among them, or
    a conversion of it under its name (same folder, same product name: ``.csv``;
    ``.gpkg``, ``.parquet``, ``.shp``, ...), or a copy of the zip (a browser's second
    download ``EGMS_..._1 (1).zip``, a file manager's ``EGMS_..._1 - Copy.zip``,
    ``Copy of EGMS_..._1.zip``: :func:`without_copy_marker`): {copy: zip}. Read once,
    from the zip."""

    def key(f: Path):
        return f.parent, without_copy_marker(f.stem).lower()

    zips: dict = {}
    for f in sorted(map(Path, files), key=lambda f: (len(f.name), f.name)):  # "X.zip" before "X (1).zip"
        if f.suffix.lower() == ".zip" and parse_file_name(f.name) is not None:
            zips.setdefault(key(f), f)
    return {
        f: zips[key(f)]
        for f in map(Path, files)
        if (f.suffix.lower() in _COPY_SUFFIXES or f.suffix.lower() == ".zip") and zips.get(key(f), f) != f
    }


#: Levels an EGMS XML header file states in ``<product_level>``.
_XML_LEVELS = {"l2a": "L2a", "l2b": "L2b", "l3": "L3"}
#: Larger "XML header files" are not read (an EGMS one lists the burst's images: tens of kB).
_XML_MAX_BYTES = 1 << 24


def xml_product_level(data) -> str | None:
    """``"L2a"``, ``"L2b"`` or ``"L3"``: what an EGMS XML header file (bytes) says in its
    ``<product_level>``; None for anything else (malformed, another layout, another value).

    The layout is the EGMS Product Description and Format Specification's (v2.0, Appendix A,
    "XML Header File", tables 9 and 10): a root (``<BURST>`` for L2a/L2b) whose children
    are ``product_level`` (``L2a``, ``L2b``, ``L3``), ``burst_id`` (the burst's number in
    its track, e.g. ``0282``, without the track), ``production_facility``,
    ``production_date``, ``dem``, ``corine``, ``sce``, ``gnss``, ``clusters``,
    ``reference`` and ``dataset`` (the Sentinel-1 images used). Nothing in it states the
    release, the track or the pass direction, so only the level is read. The specification
    (eea/CLMS_documents, ``DOCS/products/EGMS_product_description_2023.qmd``, section 11.1;
    its 2025 edition shows the same example) also says each CSV's XML has the CSV's name
    (``..._U_2018_2022_1.xml``). A third-party reader of 2020_2024 L2a files (an Insarmaps
    ingest script) also looks for ``<track>`` and ``<sub_swath>`` under ``<BURST>``, "when
    present": no published file shows them, so they are not read (their presence does not
    change the level).

    Parsed by :mod:`xml.etree.ElementTree` (no external entity is fetched), and not at all
    when the text declares a DTD or entities (an EGMS header has none) or holds NUL bytes
    (UTF-16, where a declaration could hide from that check): nothing in a file can make
    the reader expand or fetch anything.
    """
    if not isinstance(data, bytes) or len(data) > _XML_MAX_BYTES or b"\x00" in data:
        return None
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        return None
    try:  # leniently: a BOM or blank lines before the declaration
        root = ElementTree.fromstring(data.removeprefix(b"\xef\xbb\xbf").lstrip())
    except (ElementTree.ParseError, ValueError, LookupError):  # malformed, or an unknown encoding
        return None
    for child in root:
        if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1].lower() == "product_level":
            return _XML_LEVELS.get((child.text or "").strip().lower())
    return None


@functools.lru_cache(maxsize=64)
def _folder_index(folder: str, mtime_ns: int) -> tuple[dict, tuple]:
    """{lowercase stem: [names]} of a folder's ``.xml`` files and the names of its ``.csv``
    files, listed once per folder state (``mtime_ns`` changes when entries come or go):
    :func:`sibling_xml` is asked for every input of a folder of thousands."""
    xmls: dict[str, list[str]] = {}
    csvs = []
    with os.scandir(folder) as entries:
        for entry in entries:
            low = entry.name.lower()
            if low.endswith(".xml") and entry.is_file():
                xmls.setdefault(low[:-4], []).append(entry.name)
            elif low.endswith(".csv"):
                csvs.append(entry.name)
    return xmls, tuple(csvs)


def sibling_xml(path) -> Path | None:
    """The XML header file beside ``path``, a product file extracted from its zip: the
    ``.xml`` of the same name (``X.csv`` -> ``X.xml``, any case; EGMS names a product's CSV
    and XML alike), else the folder's only ``.xml`` when ``path`` is the folder's only
    ``.csv`` (the CSV renamed after extraction: the rule of :func:`zip_xml_level`). None
    when there is none, or more than one could be it."""
    path = Path(path)
    folder = path.parent
    try:
        xmls, csvs = _folder_index(str(folder), folder.stat().st_mtime_ns)
    except OSError:
        return None
    chosen = xmls.get(path.stem.lower(), [])
    if not chosen and path.suffix.lower() == ".csv" and csvs == (path.name,):
        chosen = [name for names in xmls.values() for name in names]
    return folder / chosen[0] if len(chosen) == 1 else None


def sibling_xml_level(path) -> str | None:
    """The level (:func:`xml_product_level`) the XML header file beside an extracted file
    states (:func:`sibling_xml`); None where there is none or it says nothing readable (an
    XML that is too large, unreadable or malformed is ignored, never an error)."""
    xml = sibling_xml(path)
    if xml is None:
        return None
    try:
        if xml.stat().st_size > _XML_MAX_BYTES:
            return None
        with open(xml, "rb") as fh:
            data = fh.read(_XML_MAX_BYTES + 1)
    except OSError:
        return None
    return xml_product_level(data)


def header_file_level(name) -> str | None:
    """The level the product's XML header file states: in the zip for a zip member
    ``path.zip!member.csv`` (:func:`zip_xml_level`), beside the file otherwise
    (:func:`sibling_xml_level`)."""
    if "!" in str(name):
        return zip_xml_level(name)
    return sibling_xml_level(name)


def zip_xml_level(name) -> str | None:
    """The level (:func:`xml_product_level`) the XML header file of a zip member
    ``name`` (``path.zip!member.csv``) states: the ``.xml`` of the member's name, else the
    zip's only ``.xml`` when the zip holds one ``.csv`` (as EGMS packs them). None for a
    file not in a zip, a zip without that XML, and an XML that cannot be read, is malformed
    or says no level: it is ignored, never an error (the CSV's own reading reports a
    damaged zip)."""
    zip_part, sep, member = str(name).partition("!")
    if not sep:
        return None
    try:
        with zipfile.ZipFile(zip_part) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            xmls = [i for i in infos if i.filename.lower().endswith(".xml")]
            stem = PurePosixPath(member).stem.lower()
            chosen = [i for i in xmls if PurePosixPath(i.filename).stem.lower() == stem]
            if not chosen and sum(i.filename.lower().endswith(".csv") for i in infos) == 1:
                chosen = xmls
            if len(chosen) != 1 or chosen[0].file_size > _XML_MAX_BYTES:
                return None
            with zf.open(chosen[0]) as fh:
                data = fh.read(_XML_MAX_BYTES + 1)
    except (OSError, RuntimeError, ValueError, *_ZIP_READ_ERRORS):  # RuntimeError: an encrypted member
        return None
    return xml_product_level(data)


#: What a copy of a product's zip beside it may be: its CSV, or a conversion of it.
_COPY_SUFFIXES = frozenset(s for s in _NAME_SUFFIXES if s not in (".zip", ".xml", ".tif"))


def xml_header_text(level: str | None, burst: int | None = None, dates=()) -> str:
    """An XML header file as EGMS writes one beside each CSV (Product Description and
    Format Specification, Appendix A, tables 9 and 10): ``<BURST>`` holding
    ``product_level`` (``level``: ``"L2a"``, ``"L2b"`` or ``"L3"``; left out when None),
    ``burst_id`` (L2), ``production_facility``, ``production_date``, ``dem``, ``corine``
    and ``sce`` (L2), ``gnss`` (L2b, L3), ``clusters`` (L2a), and for L2 the Sentinel-1
    images used: ``reference`` (the middle one) and ``dataset`` (one per date of
    ``dates``). The specification shows only an L2 example: an L3 file is written under
    the same ``<BURST>`` root (the reader does not depend on it). Values other than the
    level, burst and dates are plausible placeholders."""
    from xml.sax.saxutils import escape

    days = [str(np.datetime64(d, "D")).replace("-", "") for d in dates]
    last = np.datetime64(dates[-1], "D") + 1 if len(dates) else np.datetime64("2025-03-14")
    y, m, d = str(last).split("-")
    lines = ['<?xml version="1.0"?>', "<BURST>"]
    if level is not None:
        lines.append(f"  <product_level>{escape(level)}</product_level>")
    l2 = level is None or level.startswith("L2")
    if l2 and burst is not None:
        lines.append(f"  <burst_id>{burst:04d}</burst_id>")
    lines += [
        "  <production_facility>3</production_facility>",
        f"  <production_date>{d}/{m}/{y}</production_date>",
        "  <dem>\n    <version>COP-DEM GLO-30 2022_1</version>\n  </dem>",
    ]
    if l2:
        lines += ["  <corine>\n    <version>2018</version>\n  </corine>", "  <sce>\n    <version></version>\n  </sce>"]
    if level in ("L2b", "L3"):
        lines.append("  <gnss>\n    <version>2024.0</version>\n  </gnss>")
    if level == "L2a":
        lines.append("  <clusters>0</clusters>")

    def image(day):
        return (
            f"    <image>\n      <product_id>S1A_IW_SLC__1SDV_{day}T052240_{day}T052307_000000_000000</product_id>\n"
            "      <orbit_type>AUX_POEORB</orbit_type>\n    </image>"
        )

    if l2 and days:
        lines += ["  <reference>", image(days[len(days) // 2]), "  </reference>", "  <dataset>"]
        lines += [image(day) for day in days] + ["  </dataset>"]
    lines.append("</BURST>")
    return "\n".join(lines) + "\n"


def write_zip(
    csv_path, zip_path, xml_text: str | None = None, overwrite: bool = False, level: str | None = None
) -> Path:
    """Pack ``csv_path`` as EGMS distributes it: a zip of the ``.csv`` and its XML header
    file (:func:`xml_header_text`), both named after the zip. Written atomically.

    The default ``xml_text`` states ``level`` (``"L2a"``, ``"L2b"`` or ``"L3"``), else the
    level of the zip's EGMS name, else the one the CSV header tells (L2a by
    ``cluster_label``, L3), else none (a 2020_2024 L2 header is L2a's and L2b's: the level
    is not guessed); with the burst of the name and the dates of the header."""
    from insar_raster.io.atomic import atomic_path

    zip_path = Path(zip_path)
    stem = zip_path.stem
    if level is not None and level.upper().startswith("L3"):
        level = "L3"  # the XML says L3 for Up and East alike
    if xml_text is None:
        with open(csv_path, "rb") as fh:
            columns = split_header(fh.readline(1 << 22), csv_path)
        parsed = parse_file_name(zip_path.name)
        if level is None and parsed is not None:
            level = "L3" if parsed.level.startswith("L3") else parsed.level
        if level is None and header_kind(columns) in ("L2a", "L3"):
            level = header_kind(columns)
        dates = [t for t in map(parse_date_column, columns) if t is not None]
        xml_text = xml_header_text(level, parsed.burst if parsed else None, dates)
    with atomic_path(zip_path, overwrite=overwrite) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv_path, f"{stem}.csv")
        zf.writestr(f"{stem}.xml", xml_text)
    return zip_path


def split_header(line: bytes, name) -> list[str]:
    """Column names of a CSV header line (UTF-8, optional BOM, quotes stripped), separated by
    ``,`` ``;`` or tab (:func:`insar_raster.io.dialect.sniff`)."""
    if not line.strip():
        raise InputError(name, "file is empty")
    if line[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(
            name,
            "UTF-16 text (e.g. Excel's 'Unicode Text' export), not a UTF-8 CSV",
            "save it from the spreadsheet as 'CSV UTF-8'",
        )
    if b"\x00" in line[:4096]:
        raise InputError(name, "not a text CSV file (binary content)")
    if b"\r" in line.rstrip(b"\r\n"):
        raise InputError(
            name,
            "lines end with a carriage return only (CR, e.g. Excel's 'CSV (Macintosh)')",
            "save it as 'CSV UTF-8', or convert the line ends to LF",
        )
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(name, "not a text CSV file (not UTF-8)") from None
    if text.strip().lower().startswith("sep=") and len(text.strip()) <= 6:
        raise InputError(
            name,
            f"the first line is {text.strip()!r}, a separator hint for spreadsheets, not the header",
            "delete that line",
        )
    from insar_raster.io.dialect import sniff

    # Only the line end is cut before splitting: a tab is a delimiter, not space to strip (a
    # leading tab is pandas' unnamed index column, a trailing one an empty last column).
    return [h.strip().strip('"').strip() for h in text.strip("\r\n").split(sniff(line).delimiter)]


def probe_samples(path, sample_rows: int = 200) -> list[tuple[str, list[str], dict]]:
    """(name, column names, sampled) of each CSV in ``path`` (a CSV or an EGMS zip):
    ``sampled`` holds the values of ``track_angle`` in the first ``sample_rows`` rows, or
    of ``los_east`` where there is no ``track_angle`` (for :func:`pass_direction_of`)."""
    import pandas as pd

    path = Path(path)
    out = []
    sources = []
    if path.suffix.lower() == ".zip":
        zf, members = csv_members(path)
        with zf:
            for m in members:
                with open_member(zf, path, m) as fh:
                    sources.append((f"{path}!{m}", _head_lines(fh, sample_rows)))
    else:
        with open(path, "rb") as fh:
            sources.append((str(path), _head_lines(fh, sample_rows)))
    for name, lines in sources:
        columns = split_header(lines[0] if lines else b"", name)
        # The pass direction from track_angle, else from los_east (a file without track_angle).
        sampled = {}
        for wanted in ("track_angle", "los_east"):
            col = next((c for c in columns if c.lower() == wanted), None)
            if col is None or len(lines) < 2:
                continue
            import io

            try:
                from insar_raster.io.dialect import sniff

                dialect = sniff(b"".join(lines))
                frame = pd.read_csv(
                    io.BytesIO(b"".join(lines)),
                    usecols=[columns.index(col)],  # by position: the file may write " track_angle"
                    sep=dialect.delimiter,
                    decimal=dialect.decimal,
                    encoding=dialect.encoding,
                )
                sampled[wanted] = pd.to_numeric(frame.iloc[:, 0], errors="coerce").to_numpy(float)
            except Exception:  # a malformed sample: the full read reports it properly
                pass
            break
        out.append((name, columns, sampled))
    return out


def probe(path, sample_rows: int = 200) -> list[tuple[str, Geometry]]:
    """Geometry of each CSV in ``path`` (a CSV or an EGMS zip) from its name, header and
    first rows (:func:`probe_samples`): cheap, so a command can refuse mixed inputs before
    reading them."""
    # No warning here: the reader that follows gives it.
    return [
        (name, geometry_of(name, columns, sampled.get("track_angle"), sampled.get("los_east"), warn=False))
        for name, columns, sampled in probe_samples(path, sample_rows)
    ]


def csv_headers(path) -> list[tuple[str, list[str]]]:
    """(name, column names) of each CSV in ``path`` (a CSV or an EGMS zip): the first line only."""
    path = Path(path)
    if path.suffix.lower() != ".zip":
        with open(path, "rb") as fh:
            return [(str(path), split_header(fh.readline(1 << 22), path))]
    zf, members = csv_members(path)
    out = []
    with zf:
        for m in members:
            with open_member(zf, path, m) as fh:
                out.append((f"{path}!{m}", split_header(fh.readline(1 << 22), f"{path}!{m}")))
    return out


def _head_lines(fh, n: int) -> list[bytes]:
    lines = []
    for _ in range(n + 1):
        line = fh.readline()
        if not line:
            break
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- merging tiles


def common_epochs(names, times_list) -> tuple[np.ndarray, int]:
    """Epochs common to all inputs (sorted) and how many epochs of the union are dropped.

    Warns once (the same text for every reader) when inputs have different epochs,
    saying how many are dropped and why; raises when they share none.
    """
    times_list = [np.unique(np.asarray(t, dtype="datetime64[D]")) for t in times_list]
    common = times_list[0]
    union = times_list[0]
    for t in times_list[1:]:
        common = np.intersect1d(common, t)
        union = np.union1d(union, t)
    if len(common) == 0:
        raise InputError(names[0], "inputs share no common epoch")
    dropped = len(union) - len(common)
    if dropped:
        counts = ", ".join(f"{Path(str(n).split('!')[0]).name}: {len(t)}" for n, t in zip(names, times_list))
        warnings.warn(
            f"inputs have different epochs ({counts}); keeping the {len(common)} common to all, "
            f"dropping {dropped} not in every input",
            stacklevel=3,
        )
    return common, dropped


def first_of_each_pid(pid, x=None, y=None) -> np.ndarray | None:
    """Mask keeping the first occurrence of each pid (warned), or None when all are unique.

    With the coordinates ``x``, ``y`` the warning tells the same MP met again (overlapping
    tiles, the same position) from a pid reused for another MP (a different position:
    the later rows are other points, dropped all the same)."""
    import pandas as pd

    pid = pd.Series(np.asarray(pid))
    dup = pid.duplicated().to_numpy()
    if not dup.any():
        return None
    n = int(dup.sum())
    moved = 0
    if x is not None and y is not None:
        # factorize numbers the pids in order of first appearance: the k-th first row is code k's.
        codes = pd.factorize(pid)[0]
        at = np.flatnonzero(~dup)[codes[dup]]
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        same = np.isclose(x[dup], x[at], rtol=0, atol=1e-6) & np.isclose(y[dup], y[at], rtol=0, atol=1e-6)
        moved = int((~same).sum())
    if moved:
        warnings.warn(
            f"dropped {n} duplicate pid(s), {moved} of them at another position than the first row with that pid"
            " (a pid reused for another MP, not the same MP in overlapping tiles); kept the first of each",
            stacklevel=3,
        )
    else:
        warnings.warn(f"dropped {n} duplicate pid(s) from overlapping tiles", stacklevel=3)
    return ~dup


def warn_dropped_rows(n: int, max_missing: float = 0.0) -> None:
    """The warning for measurement points dropped for missing values (any, or more than
    the share ``max_missing`` of their epochs when the reader keeps series with gaps)."""
    if n:
        # Coordinates: insar_raster.io.sanitize.drop_coordinate_outliers drops and counts those.
        what = (
            f"more than {100 * max_missing:g} % of their epochs empty (NaN)"
            if max_missing
            else "missing (NaN) displacement"
        )
        warnings.warn(f"dropped {int(n)} point(s) with {what}", stacklevel=3)


NO_VALID_POINT = "no valid measurement point left after dropping NaN rows"
