"""Measurement points (MPs): read EGMS CSV tiles and vector files into one Dataset.

Points layout (the contract)
----------------------------
``xarray.Dataset`` with dims ``(point, time)``:

- ``displacement`` (point, time) float32, mm, relative to the first epoch;
- coordinates ``x``, ``y`` (point) float64 in a projected CRS (metres), ``pid`` (point,
  string), ``time`` (datetime64) and ``spatial_ref`` (CRS via rioxarray);
- optional per-point variables such as ``mean_velocity`` (mm/yr) and the per-MP
  geometry ``los_east``, ``los_north``, ``los_up``, ``incidence_angle``, ``track_angle``
  (see :mod:`insar_raster.io.egms`);
- attrs ``source`` (input files), ``product`` (e.g. ``EGMS L2``), and, when known,
  ``product_level``, ``track``, ``pass_direction`` (:func:`insar_raster.io.egms.points_geometry`)
  and ``epochs_dropped`` (epochs not in every input).

What an EGMS file is (headers of every release, file names, product level, geometry)
and how tiles merge (common epochs, duplicate pids, rows with NaN) is decided in
:mod:`insar_raster.io.egms`, which the streaming cache uses too.

Formats: EGMS CSV (L2a, L2b, L3 Up/East; several tiles, a folder, or a ``.zip`` as
downloaded), GeoPackage, Shapefile, GeoParquet. CSV is parsed by pyarrow
(multi-threaded); no Python loop over rows anywhere.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401
import xarray as xr
from pyproj import CRS, Transformer

from insar_raster.errors import InputError, first_line
from insar_raster.io import egms
from insar_raster.io.cache import cached_points, use_cache
from insar_raster.io.dialect import sniff
from insar_raster.io.egms import EGMS_CRS, parse_date_column  # noqa: F401  (parse_date_column: public here)
from insar_raster.io.formats import write_geopackage
from insar_raster.io.sanitize import (
    check_coordinate_frame,
    check_pid_majority,
    drop_coordinate_outliers,
    empty_epochs,
)
from insar_raster.io.sources import (  # noqa: F401  (the public names of the points readers)
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    VECTOR_SUFFIXES,
    arrow_error,
    choose_output_crs,
    classify_columns,
    coordinate_columns,
    csv_sources,
    expand_inputs,
    make_points,
    parse_crs,
    select_epochs,
)

log = logging.getLogger("insar_raster")

# Per-point attributes kept when present (EGMS names of every release, and the geometry).
POINT_ATTRS = egms.POINT_COLUMNS


# --------------------------------------------------------------------------- reading


def _read_csv_table(source, path, allow_dates: bool = False):
    """Read one EGMS CSV (path or binary stream) into (frame of non-date columns, values, times)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # A file on disk is parsed by pyarrow straight from the path (no copy in Python);
    # a zip member is a stream and is read into memory first.
    if hasattr(source, "read"):
        raw = source.read()
        head, csv_input = raw[:65536], pa.py_buffer(raw)
    else:
        with open(source, "rb") as fh:
            head = fh.read(65536)
        csv_input = str(source)
    if not head.strip():
        raise InputError(path, "file is empty")
    dialect = sniff(head)
    header = egms.split_header(head.split(b"\n", 1)[0], path)
    date_cols, times = classify_columns(header, path, allow_dates)
    types = {c: pa.float32() for c in date_cols}
    keep = set(date_cols) | {c for c in header if c.lower() in egms.READ_COLUMNS}
    for c in keep - set(date_cols):
        types[c] = pa.string() if c.lower() == "pid" else pa.float64()
    try:
        table = pacsv.read_csv(
            csv_input if isinstance(csv_input, str) else pa.BufferReader(csv_input),
            # 1 MiB blocks: enough blocks to keep every core busy (16 MiB left one idle).
            # The header as egms.split_header reads it (BOM, quotes, spaces around names
            # removed), as the streaming cache does.
            read_options=dialect.read_options(use_threads=True, block_size=1 << 20, column_names=header, skip_rows=1),
            parse_options=dialect.parse_options(),
            convert_options=dialect.convert_options(
                column_types=types, include_columns=[c for c in header if c in keep]
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise arrow_error(path, exc, header) from None
    if table.num_rows == 0:
        raise InputError(path, "no data rows (header only)")
    egms.warn_spreadsheet_row_limit(path, table.num_rows)
    values = _columns_to_matrix(table, date_cols)
    frame = table.drop_columns(date_cols).to_pandas()
    frame.attrs["header"] = header  # all columns, for egms.geometry_of
    return frame, values, np.array(times, dtype="datetime64[D]")


def _columns_to_matrix(table, columns) -> np.ndarray:
    """float32 (rows, columns) matrix of Arrow columns, filled chunk by chunk: one copy and
    no temporaries. Fortran order, so each column is one contiguous write (and epochs,
    sliced as columns downstream, stay contiguous). Nulls become NaN."""
    out = np.empty((table.num_rows, len(columns)), np.float32, order="F")
    for j, name in enumerate(columns):
        start = 0
        for chunk in table.column(name).chunks:
            out[start : start + len(chunk), j] = chunk.to_numpy(zero_copy_only=False)
            start += len(chunk)
    return out


def _first_layer(path: Path) -> str:
    """The first layer of a vector file; that only it is read is warned where there are
    more (a GeoPackage QGIS saved several layers into: the others' points would vanish
    without a word)."""
    import warnings

    import pyogrio

    layers = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    if len(layers) > 1:
        others = ", ".join(repr(n) for n in layers[1:4]) + (", ..." if len(layers) > 4 else "")
        warnings.warn(
            f"{path.name}: read its first layer {layers[0]!r} only; {len(layers) - 1} other layer(s) "
            f"ignored ({others}): save each layer to its own file to read it",
            stacklevel=4,
        )
    return layers[0]


def _read_vector(path: Path, input_crs, allow_dates: bool = False):
    """Read GeoPackage/Shapefile/GeoParquet points -> (frame, values, times, x, y, crs)."""
    import geopandas as gpd

    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            try:
                gdf = gpd.read_parquet(path)
            except ValueError:  # plain Parquet without geometry metadata: columns as in CSV
                gdf = pd.read_parquet(path)
        else:
            gdf = gpd.read_file(path, engine="pyogrio", layer=_first_layer(path))
    except InputError:
        raise
    except Exception as exc:
        text = first_line(exc)
        raise InputError(path, f"cannot read as {path.suffix.lstrip('.').upper() or 'vector'} file: {text}") from None
    if len(gdf) == 0:
        raise InputError(path, "no features (empty layer)")
    gdf = _header_from_first_row(gdf, path)
    if path.suffix.lower() == ".shp":  # EGMS names cut to 10 characters
        lower = {str(c).lower() for c in gdf.columns}
        renamed = {
            c: egms.SHAPEFILE_NAMES[str(c).lower()] for c in gdf.columns if str(c).lower() in egms.SHAPEFILE_NAMES
        }
        gdf = gdf.rename(columns={c: full for c, full in renamed.items() if full not in lower})
    date_cols, times = classify_columns(list(gdf.columns), path, allow_dates)
    # Columns GDAL's CSV driver left as text (ogr2ogr without -oo AUTODETECT_TYPE=YES):
    # numbers again, an empty field NaN as in the CSV.
    for c in gdf.columns:
        if (c in date_cols or str(c).lower() in egms.READ_COLUMNS - {"pid"}) and not _is_numbers(gdf[c]):
            gdf[c] = _text_to_numbers(gdf[c], path, c, "displacement column" if c in date_cols else "column")
    values = gdf[date_cols].to_numpy(dtype=np.float32)
    if isinstance(gdf, gpd.GeoDataFrame) and gdf.geometry is not None and gdf.geometry.name in gdf:
        geom = gdf.geometry
        if not (geom.geom_type == "Point").all():
            raise InputError(path, "geometries must be points")
        x, y = geom.x.to_numpy(), geom.y.to_numpy()
        crs = gdf.crs if gdf.crs is not None else (parse_crs(input_crs) if input_crs else None)
        if crs is None:
            crs = _crs_of_matching_columns(gdf, x, y, path)
        if crs is None:
            raise InputError(path, "unknown CRS (the file declares none)", "pass input_crs=EPSG:XXXX")
        frame = pd.DataFrame(gdf.drop(columns=date_cols + [geom.name]))
    else:
        xc, yc, crs = coordinate_columns(list(gdf.columns), path, input_crs)
        x, y = gdf[xc].to_numpy(float), gdf[yc].to_numpy(float)
        frame = pd.DataFrame(gdf.drop(columns=date_cols))
    return frame, values, np.array(times, dtype="datetime64[D]"), x, y, CRS.from_user_input(crs)


def _crs_of_matching_columns(gdf, x, y, path):
    """The CRS of a point geometry declared without one (``ogr2ogr -oo X_POSSIBLE_NAMES=easting``
    without ``-a_srs``) when it is made of EGMS coordinate columns also in the layer:
    ``easting/northing`` (EPSG:3035) or ``longitude/latitude`` (EPSG:4326); else None."""
    lower = {str(c).lower(): c for c in gdf.columns}
    for xn, yn, crs in (("easting", "northing", EGMS_CRS), ("longitude", "latitude", "EPSG:4326")):
        if xn in lower and yn in lower and _is_numbers(gdf[lower[xn]]) and _is_numbers(gdf[lower[yn]]):
            cx, cy = gdf[lower[xn]].to_numpy(float), gdf[lower[yn]].to_numpy(float)
            if np.allclose(cx, x, rtol=0, atol=1e-6, equal_nan=True) and np.allclose(
                cy, y, rtol=0, atol=1e-6, equal_nan=True
            ):
                log.info("%s: the points declare no CRS; they are the %s/%s columns: %s", Path(path).name, xn, yn, crs)
                return crs
    return None


_DECIMAL_COMMA = r"^[-+]?\d+,\d+(?:[eE][-+]?\d+)?$"
#: Field names GDAL's CSV driver gives when it takes the header line for data.
_GDAL_FIELD_NAME = re.compile(r"^field_\d+$")


def _header_from_first_row(gdf, path):
    """A layer converted from an EGMS CSV by GDAL (``ogr2ogr out.gpkg EGMS.csv``) without
    ``-oo HEADERS=YES`` has fields ``field_1`` ... ``field_n`` and the CSV's header as its
    first row: GDAL's CSV driver takes a first line with a numeric name (the ``YYYYMMDD``
    dates) for data. The names are taken from that row, which is dropped."""
    names = [c for c in gdf.columns if not _is_geometry(gdf, c)]
    if not names or not all(_GDAL_FIELD_NAME.match(str(c)) for c in names):
        return gdf
    # With -oo AUTODETECT_TYPE=YES the date columns are numbers: 20200107.0.
    first = [re.sub(r"^(\d{8})\.0*$", r"\1", str(v).strip()) for v in gdf[names].iloc[0]]
    if not any(parse_date_column(v) is not None for v in first):
        return gdf
    log.info(
        "%s: fields named field_1 ... field_%d with the CSV header in the first row (GDAL's CSV driver read "
        "the header as data: convert with -oo HEADERS=YES): names taken from that row",
        Path(path).name,
        len(names),
    )
    return gdf.iloc[1:].rename(columns=dict(zip(names, first))).reset_index(drop=True)


def _is_geometry(gdf, column) -> bool:
    import geopandas as gpd

    return isinstance(gdf, gpd.GeoDataFrame) and isinstance(gdf[column].dtype, gpd.array.GeometryDtype)


def _is_numbers(series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _text_to_numbers(series, path, column, what: str):
    """A column of numbers written as text: empty fields (and ``nan``) are NaN; decimal
    commas (``12,5``: a ``;`` CSV of a European spreadsheet converted as text) are read
    when no field of the column has a decimal point; any other text is an
    :class:`InputError` naming the column and the value."""
    text = series.astype("string").str.strip()
    blank = text.isna() | text.str.lower().isin(["", "nan", "null", "na"])
    numbers = pd.to_numeric(text.mask(blank), errors="coerce")
    bad = numbers.isna() & ~blank
    if bad.any() and not text.str.contains(".", regex=False).any() and text[bad].str.match(_DECIMAL_COMMA).all():
        text = text.str.replace(",", ".", regex=False)
        numbers = pd.to_numeric(text.mask(blank), errors="coerce")
        bad = numbers.isna() & ~blank
    if bad.any():
        raise InputError(path, f"non-numeric value in {what} {column!r}: {text[bad].iloc[0]!r}")
    return numbers.astype(np.float64)


def read_points(
    paths,
    crs=None,
    input_crs=None,
    start=None,
    end=None,
    allow_dates: bool = False,
    keep_outliers: bool = False,
    cache=False,
    cache_dir=None,
    progress: bool = False,
    max_output_size: int | None = None,
    max_missing: float = 0.0,
) -> xr.Dataset:
    """Read and merge measurement points from EGMS CSV tiles or vector files.

    Parameters
    ----------
    paths : path or list of paths
        CSV files, ``.zip`` archives of CSVs, folders, ``.gpkg``/``.shp``/``.parquet``.
    crs : str or pyproj.CRS, optional
        Output (projected) CRS; default EPSG:3035 for EGMS CSV, else the input's
        projected CRS, else the local UTM zone.
    input_crs : str, optional
        CRS of the input coordinates when the file does not say (e.g. plain x/y columns).
    start, end : str or datetime64, optional
        Keep epochs in ``[start, end]``.
    allow_dates : bool
        Accept epochs before Sentinel-1 (2014-04) or after today (non-Sentinel data);
        dates beyond what a cube can hold are refused regardless.
    keep_outliers : bool
        Keep MPs at (0, 0) or far outside the bulk of the points
        (:mod:`insar_raster.io.sanitize`); by default they are dropped with a warning.
    cache : {False, "auto", True}
        Read CSV inputs through the points cache (:mod:`insar_raster.io.cache`: streamed
        once into Parquet + Zarr, reused by later reads, lazy ``displacement``). False
        (default): in memory. ``"auto"`` (what ``insar-raster grid`` uses): when
        ``cache_dir`` is given or the CSV text exceeds
        :data:`insar_raster.io.cache.AUTO_CACHE_BYTES` (256 MB); see
        :func:`insar_raster.io.cache.use_cache`. Other formats are always read in memory.
    cache_dir : path, optional
        Folder of the caches (default :func:`insar_raster.io.cache.default_cache_dir`).
    progress : bool
        Progress bar while building a cache.
    max_output_size : int, optional
        Largest cache built (bytes, estimated before streaming); the free space is always checked.
    max_missing : float
        Largest share (0-1) of an MP's epochs that may be empty (NaN, e.g. point sets
        merged from several exports); MPs with more empty epochs are dropped with a
        warning, those with fewer are kept with NaN at their empty epochs. 0 (default):
        an MP with any empty epoch is dropped, as gridding wants complete series. Above
        0, CSV inputs are read in memory (the points cache keeps complete series only).

    Returns
    -------
    xarray.Dataset
        Points layout (module docstring), coordinates reprojected to ``crs``; through the
        cache, ``displacement`` is a dask array.

    Warns
    -----
    UserWarning
        Duplicate pids across tiles (dropped), rows with NaN (dropped; with
        ``max_missing``, only those with more empty epochs than that), differing epochs
        across tiles (intersection kept, the number dropped said), MPs with unusable
        coordinates (dropped, counted in the attrs ``coordinate_outliers_dropped``), epochs
        empty in every row (dropped).

    Raises
    ------
    insar_raster.io.egms.MixedGeometryError
        Inputs of different geometries (tracks, pass directions, LOS/vertical/east).
    InputError
        Unreadable input, dates out of range, rows mostly sharing a pid, lat/lon swapped.
    """
    if not 0.0 <= float(max_missing) < 1.0:
        raise ValueError(f"max_missing must be a share in [0, 1), got {max_missing}")
    if not max_missing and use_cache(paths, cache, cache_dir):
        return cached_points(
            paths,
            crs=crs,
            input_crs=input_crs,
            start=start,
            end=end,
            cache_dir=cache_dir,
            progress=progress,
            allow_dates=allow_dates,
            keep_outliers=keep_outliers,
            max_output_size=max_output_size,
        )
    parts = []
    for path in expand_inputs(paths, say_copies=True):
        suffix = path.suffix.lower()
        if suffix in CSV_SUFFIXES or suffix == ".zip":
            for name, source in csv_sources(path):
                frame, values, times = _read_csv_table(source, name, allow_dates)
                xc, yc, in_crs = coordinate_columns(list(frame.columns), name, input_crs)
                x, y = frame[xc].to_numpy(float), frame[yc].to_numpy(float)
                check_coordinate_frame(x, y, in_crs, name)
                product = egms.product_label(frame.attrs.get("header", list(frame.columns)))
                geometry = _frame_geometry(name, frame.attrs.get("header", list(frame.columns)), frame)
                parts.append((name, frame, values, times, x, y, in_crs, product, geometry))
        elif suffix in VECTOR_SUFFIXES | PARQUET_SUFFIXES:
            frame, values, times, x, y, in_crs = _read_vector(path, input_crs, allow_dates)
            geometry = _frame_geometry(str(path), list(frame.columns), frame)
            # A conversion of an EGMS CSV (its columns kept) is gridded as the CSV would be.
            kind = egms.header_kind(frame.columns)
            parts.append(
                (str(path), frame, values, times, x, y, in_crs, f"EGMS {kind[:2]}" if kind else "vector", geometry)
            )
        else:
            raise InputError(
                path, f"unsupported file type {suffix or '(none)'!r}", "use .csv, .zip, .gpkg, .shp or .parquet"
            )
    points = _merge_parts(parts, crs=crs, start=start, end=end, max_missing=float(max_missing))
    return drop_coordinate_outliers(points, keep_outliers=keep_outliers)


def _frame_geometry(name, header, frame) -> "egms.Geometry":
    """Geometry of one input from its name, header and ``track_angle`` (or ``los_east``) column."""
    lower = {c.lower(): c for c in frame.columns}
    angles = frame[lower["track_angle"]].to_numpy(float) if "track_angle" in lower else None
    east = frame[lower["los_east"]].to_numpy(float) if "los_east" in lower else None
    return egms.geometry_of(name, header, angles, east)


def _merge_parts(parts, crs, start, end, max_missing: float = 0.0) -> xr.Dataset:
    names = [p[0] for p in parts]
    egms.check_single_release(names, [p[1].attrs.get("header", list(p[1].columns)) for p in parts])
    geometry = egms.check_single_geometry([(p[0], p[8]) for p in parts])
    # Common epochs across tiles (EGMS tiles of one release share them).
    common, dropped_epochs = egms.common_epochs(names, [p[3] for p in parts])
    is_egms = all(p[7].startswith("EGMS") for p in parts)
    out_crs = None
    xs, ys, vals, pids, extras = [], [], [], [], {}
    for name, frame, values, times, x, y, in_crs, *_ in parts:
        if out_crs is None:
            out_crs = choose_output_crs(in_crs, x, y, crs=crs, egms=is_egms)
        if in_crs != out_crs:
            x, y = Transformer.from_crs(in_crs, out_crs, always_xy=True).transform(x, y)
        # Date columns may come in any order: look each common epoch up in the sorted
        # dates, then map back to its column.
        order = np.argsort(times)
        idx = order[np.searchsorted(times[order], common)]
        xs.append(np.asarray(x, float))
        ys.append(np.asarray(y, float))
        vals.append(values if np.array_equal(idx, np.arange(values.shape[1])) else values[:, idx])
        lower = {c.lower(): c for c in frame.columns}
        pid = (
            frame[lower["pid"]].astype(str).to_numpy()
            if "pid" in lower
            else np.char.add(f"{Path(name).stem}:", np.arange(len(frame)).astype(str))
        )
        pids.append(pid)
        for attr in POINT_ATTRS:
            if attr in lower:
                extras.setdefault(attr, []).append(frame[lower[attr]].to_numpy(np.float32))
    # One input (the usual case): no concatenation copies of the values matrix.
    x, y, values, pid = (a[0] if len(a) == 1 else np.concatenate(a) for a in (xs, ys, vals, pids))
    # Each input's own first epoch: its values are relative to it (EGMS: zero there).
    own_first = np.repeat([np.min(p[3]) for p in parts], [len(v) for v in xs])
    extra = {k: np.concatenate(v) for k, v in extras.items() if len(v) == len(parts)}

    check_pid_majority(pid, names[0] if len(names) == 1 else ", ".join(names))
    first = egms.first_of_each_pid(pid, x, y)
    keep = np.ones(len(x), bool) if first is None else first
    # Epoch selection before the NaN check: NaNs outside the period do not matter.
    tsel = select_epochs(common, start, end)
    if not tsel.all():
        values, common = values[:, tsel], common[tsel]
    filled = empty_epochs(values, common, names[0] if len(names) == 1 else "inputs")
    if not filled.all():
        values, common = values[:, filled], common[filled]
    # NaN/infinite coordinates are dropped with the other unusable coordinates
    # (sanitize.drop_coordinate_outliers), in one warning.
    finite = np.isfinite(values)
    if max_missing > 0:
        # Kept with their gaps unless too many epochs are empty (never an MP with none valid).
        empty = 1.0 - finite.mean(axis=1) if values.shape[1] else np.zeros(len(values))
        bad = keep & ((empty > max_missing) | ~finite.any(axis=1))
        gaps = int((keep & ~bad & ~finite.all(axis=1)).sum())
        if gaps:
            log.info("%d measurement point(s) kept with some empty (NaN) epochs", gaps)
    else:
        bad = keep & ~finite.all(axis=1)
    egms.warn_dropped_rows(int(bad.sum()), max_missing)
    keep &= ~bad
    if not keep.any():
        raise InputError(names[0], egms.NO_VALID_POINT)
    order = np.argsort(common)
    # Copy the values matrix only where rows or epochs change (80 MB at 200k MPs x 100 epochs).
    if not keep.all():
        values = values[keep]
    if not np.array_equal(order, np.arange(len(order))):
        values = values[:, order]
    values = rereference(values, own_first[keep], common[order][0])
    return make_points(
        x[keep],
        y[keep],
        values,
        common[order],
        out_crs,
        pid=pid[keep],
        extra={k: v[keep] for k, v in extra.items()},
        attrs={
            "source": ", ".join(egms.display_name(n) for n in names),
            "product": parts[0][7] if is_egms else "vector",
            "epochs_dropped": dropped_epochs,
            **egms.geometry_attrs(geometry),
            # The CRS the (first) file itself is in; the coordinates are now in out_crs.
            "input_crs": parts[0][6].to_wkt(),
        },
    )


def rereference(values: np.ndarray, own_first, first_kept) -> np.ndarray:
    """Values (point, time; the first column is ``first_kept``) made relative to the first
    kept epoch where an MP's series started earlier: its own first epoch (the zero of an
    EGMS series) was dropped (``start``, or an epoch not in every input), so the contract
    (relative to the first epoch) holds again. In place where it changes anything."""
    later = np.asarray(own_first) < np.datetime64(first_kept, "D")
    if later.any() and values.shape[1]:
        # The first kept epoch, or where it is empty (a series with gaps) its first value.
        first = values[later, np.argmax(np.isfinite(values[later]), axis=1)]
        if later.all():
            values -= first[:, None]
        else:
            values[later] -= first[:, None]
        log.info("%d measurement point series re-referenced to %s, the first epoch kept", int(later.sum()), first_kept)
    return values


# --------------------------------------------------------------------------- writing


def _date_names(times, style="YYYYMMDD"):
    days = np.asarray(times).astype("datetime64[D]").astype(str)
    return [d.replace("-", "") for d in days] if style == "YYYYMMDD" else list(days)


def to_l3(points: xr.Dataset, resolution: float = 100.0) -> xr.Dataset:
    """Aggregate points into EGMS-L3-like cells: mean series per ``resolution`` cell."""
    col = np.floor(points.x.values / resolution).astype(np.int64)
    row = np.floor(points.y.values / resolution).astype(np.int64)
    key = pd.MultiIndex.from_arrays([row, col])
    codes, uniques = pd.factorize(key)
    counts = np.bincount(codes)
    sums = np.zeros((len(uniques), points.sizes["time"]), np.float64)
    np.add.at(sums, codes, points.displacement.values)
    rows = np.array([u[0] for u in uniques])
    cols = np.array([u[1] for u in uniques])
    return make_points(
        (cols + 0.5) * resolution,
        (rows + 0.5) * resolution,
        (sums / counts[:, None]).astype(np.float32),
        points.time.values,
        points.rio.crs,
        pid=np.array([f"L3{r}_{c}" for r, c in zip(rows, cols)]),
        attrs={**points.attrs, "product": "EGMS L3"},
    )


def write_points(points: xr.Dataset, path, layout: str = "L2b", overwrite: bool = False) -> Path:
    """Write points as an EGMS CSV (``layout`` L2a, L2b, L3UD, L3EW), GeoPackage or GeoParquet.

    The CSV layouts follow the Copernicus EGMS product description: metadata columns
    then one column per acquisition named ``YYYYMMDD`` (mm). Atomic.
    """
    from insar_raster.io.atomic import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    crs = points.rio.crs
    values = points.displacement.values
    names = _date_names(points.time.values)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if suffix == ".csv":
            import pyarrow as pa
            import pyarrow.csv as pacsv

            from insar_raster.units import DAYS_PER_YEAR

            pts = to_l3(points) if layout.upper().startswith("L3") else points
            if CRS.from_user_input(crs) != CRS.from_user_input(EGMS_CRS):
                e, n = Transformer.from_crs(crs, EGMS_CRS, always_xy=True).transform(pts.x.values, pts.y.values)
            else:
                e, n = pts.x.values, pts.y.values
            vals = pts.displacement.values
            years = (pts.time.values - pts.time.values[0]) / np.timedelta64(1, "D") / DAYS_PER_YEAR
            velocity = np.polyfit(years, vals.T, 1)[0] if len(years) > 1 else np.zeros(len(e))
            cols = {"pid": pa.array(pts.pid.values.astype(str))}
            if not layout.upper().startswith("L3"):
                lon, lat = Transformer.from_crs(EGMS_CRS, "EPSG:4326", always_xy=True).transform(e, n)
                cols["mp_type"] = pa.array(np.full(len(e), "PS" if layout.upper() == "L2B" else "DS"))
                cols["latitude"] = pa.array(np.round(lat, 7))
                cols["longitude"] = pa.array(np.round(lon, 7))
            cols["easting"] = pa.array(np.round(e, 1))
            cols["northing"] = pa.array(np.round(n, 1))
            cols["height"] = pa.array(np.round(50 + 0.001 * (e - e.min()), 1) if len(e) else e)
            cols["rmse"] = pa.array(np.full(len(e), 1.2))
            if not layout.upper().startswith("L3"):
                for name in egms.GEOMETRY_COLUMNS:  # per-MP geometry, in EGMS order
                    if name in pts:
                        cols[name] = pa.array(np.round(pts[name].values.astype(np.float64), 6))
            cols["mean_velocity"] = pa.array(np.round(velocity, 2))
            cols["mean_velocity_std"] = pa.array(np.full(len(e), 0.2))
            for j, name in enumerate(names):
                cols[name] = pa.array(np.round(vals[:, j], 2))
            pacsv.write_csv(pa.table(cols), tmp, pacsv.WriteOptions(quoting_style="none", quoting_header="none"))
        elif suffix in {".gpkg", ".parquet", ".geoparquet"}:
            import geopandas as gpd

            frame = pd.DataFrame(values, columns=names)
            frame.insert(0, "pid", points.pid.values.astype(str))
            attrs = [c for c in egms.POINT_COLUMNS if c in points]  # e.g. mean_velocity, the LOS geometry
            for j, name in enumerate(attrs):
                frame.insert(1 + j, name, points[name].values)
            gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(points.x.values, points.y.values), crs=crs)
            if suffix == ".gpkg":
                write_geopackage(gdf, tmp, "measurement_points")
            else:
                gdf.to_parquet(tmp)
        else:
            raise InputError(path, f"unknown points format {suffix!r}", "use .csv, .gpkg or .parquet")
    return path
