"""The displacement cube: an ``xarray.Dataset`` and its files.

Layout (the contract every module relies on)
--------------------------------------------
- ``displacement`` (time, y, x) float32, mm, NaN where masked (far from any MP).
- ``mp_count`` (y, x) int32: measurement points inside each cell (optional).
- ``distance_to_mp`` (y, x) float32, m: distance from the cell centre to the nearest MP
  (optional).
- coordinates ``time`` (datetime64), ``x`` ascending and ``y`` descending (cell centres,
  metres), and ``spatial_ref`` (CF grid mapping written by rioxarray, with GeoTransform).
- attrs: CF-1.8 ``Conventions``, ``title``, ``history``, provenance (``source``,
  ``method``, ``resolution``, ``max_gap``, ``insar_raster_version``).

Files: ``.nc`` (CF NetCDF, zlib, chunked), ``.zarr`` (folder), written here
(:func:`write_cube_store`); ``.tif`` (one band per epoch, COG layout) is written by
:mod:`insar_raster.gis.raster`, and :func:`insar_raster.gis.write.write_cube` picks the
writer from the suffix. All three are read by :func:`open_cube`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import math
from pathlib import Path

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from insar_raster import __version__
from insar_raster.errors import InputError, first_line
from insar_raster.io.atomic import atomic_path, settled_threads
from insar_raster.io.layout import DISPLACEMENT_LONG_NAME, grid_transform  # noqa: F401  (grid_transform: the cube's API)
from insar_raster.io.layout import xy_attrs as _xy_attrs
from insar_raster.io.ncwrite import to_netcdf_parallel

CUBE_VARIABLE = "displacement"
#: QGIS (MDAL) names a NetCDF's mesh dataset groups by ``long_name``, sorts them by that
#: name and activates the first on load: this one sorts before the static layers'
#: ("distance from cell centre...", "number of measurement points..."), so a cube opened as
#: a mesh shows displacement, not a static layer. tests/test_qgis.py checks it in QGIS.

# The list of the innermost ``opened_inputs()`` block of this context (None outside one).
_RECORDING: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar("opened_inputs", default=None)


@contextlib.contextmanager
def opened_inputs():
    """Record the cube files :func:`open_cube` opens inside the block, in a list the
    caller owns.

    Corruption inside a file shows only when its data is read, lazily and far from
    :func:`open_cube`; the CLI runs each command inside this block so that such an error
    can name the file. Blocks nest (the inner one records) and do not leak across
    threads or asyncio tasks (:mod:`contextvars`).

    >>> with opened_inputs() as opened:
    ...     pass
    >>> opened
    []
    """
    opened: list[Path] = []
    token = _RECORDING.set(opened)
    try:
        yield opened
    finally:
        _RECORDING.reset(token)


def raster_read_reason(exc: BaseException) -> str | None:
    """GDAL's reason when ``exc`` is rasterio failing to read a raster, else None.

    The block-read line of the exception's chain (``IReadBlock``/``TIFFRead...``: a
    GeoTIFF cut short opens, since its header is whole, and fails when its bands are
    read), else, under rasterio's ``Read failed. See previous exception for details.``,
    the first line of the exception it wraps. :func:`open_cube` and the CLI (which names
    the file of a failure met after opening) both take the reason from here.
    """
    try:
        from rasterio.errors import RasterioIOError
    except ImportError:  # pragma: no cover
        return None
    if not isinstance(exc, RasterioIOError):
        return None
    reasons = []
    seen = exc
    while seen is not None and len(reasons) < 4:
        reasons.append(first_line(seen, empty=""))
        seen = seen.__cause__ or seen.__context__
    blocks = [r for r in reasons if "IReadBlock" in r or "TIFFRead" in r]
    if blocks:
        return blocks[0]
    if reasons[0].startswith("Read failed"):
        return reasons[1] if len(reasons) > 1 and reasons[1] else reasons[0]
    return None


def _reason(exc: Exception, path: Path) -> str:
    """One-line reason from a backend exception, without repeating the file name."""
    text = raster_read_reason(exc) or first_line(exc)
    for shown in (str(path.resolve()), str(path), path.name):
        text = text.replace(f": '{shown}'", "").removeprefix(f"{shown}, ")
    if text.startswith("[Errno"):
        text = text.split("] ", 1)[-1]
    return text


def make_cube(displacement, times, grid_spec, extra: dict | None = None, attrs: dict | None = None) -> xr.Dataset:
    """Assemble a cube Dataset with CRS and CF attributes.

    Parameters
    ----------
    displacement : array-like (time, y, x)
        Displacement in mm (numpy or dask).
    times : array-like of datetime64
        Acquisition dates.
    grid_spec : insar_raster.grid.spec.GridSpec
        The grid the values live on.
    extra : dict, optional
        Extra (y, x) layers, e.g. ``{"mp_count": ..., "distance_to_mp": ...}``.
    attrs : dict, optional
        Provenance attributes merged into the global attributes.
    """
    ds = xr.Dataset(
        {CUBE_VARIABLE: (("time", "y", "x"), displacement)},
        coords={"time": np.asarray(times, dtype="datetime64[ns]"), "y": grid_spec.y, "x": grid_spec.x},
    )
    # No CF standard_name exists for InSAR displacement, so long_name carries the meaning.
    ds[CUBE_VARIABLE].attrs.update(units="mm", long_name=DISPLACEMENT_LONG_NAME)
    for name, values in (extra or {}).items():
        ds[name] = (("y", "x"), values)
    if "mp_count" in ds:
        ds["mp_count"].attrs.update(units="1", long_name="number of measurement points in the cell")
    if "distance_to_mp" in ds:
        ds["distance_to_mp"].attrs.update(units="m", long_name="distance from cell centre to nearest measurement point")
    ds = ds.rio.write_crs(grid_spec.crs).rio.write_transform(grid_spec.transform)
    ds = ds.rio.write_coordinate_system()
    ds = _xy_attrs(ds)  # after rioxarray, which writes units "metre"; CF examples use "m" (degrees: lon/lat)
    for name in ds.data_vars:
        ds[name].encoding.pop("grid_mapping", None)
        ds[name].attrs["grid_mapping"] = "spatial_ref"
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ds.attrs.update(
        Conventions="CF-1.8",
        title="InSAR displacement cube",
        institution="insar-raster",
        history=f"{now}: created by insar-raster {__version__}",
        insar_raster_version=__version__,
    )
    ds.attrs.update(attrs or {})
    return ds


#: zlib level of NetCDF outputs. Interpolated float32 displacement hardly compresses
#: (200k MPs x 100 epochs, 449 x 448 cells: 76.7 MiB of values -> 63.6 MiB at level 4,
#: 64.3 MiB at level 1, both with shuffle), while level 4 costs ~30 % more CPU than
#: level 1 (benchmarks/grid_speed.py); level 1 is what most tools use for speed.
NETCDF_COMPLEVEL = 1


def _even_chunk(n: int, most: int) -> int:
    """Size of the equal parts (at most ``most``) that cover ``n`` cells with the fewest chunks."""
    if n <= most:
        return max(1, n)
    return math.ceil(n / math.ceil(n / most))


def _chunk_within_blocks(blocks: tuple[int, ...], most: int) -> int | None:
    """Largest chunk size <= ``most`` that divides every dask block but the last (which
    must not be longer), so that no file chunk straddles two blocks; None if irregular."""
    first = blocks[0]
    if len(blocks) == 1 or any(b != first for b in blocks[:-1]) or blocks[-1] > first:
        return None
    return max(d for d in range(1, min(first, most) + 1) if first % d == 0)


def netcdf_encoding(ds: xr.Dataset, time_chunk: int = 16) -> dict:
    """NetCDF encoding for cubes and derived layers: zlib (level :data:`NETCDF_COMPLEVEL`)
    with byte shuffle, NaN fill on floats, chunks of ``time_chunk`` epochs x at most
    256 x 256 cells, and no ``_FillValue`` on coordinates (CF).

    An axis in one piece is split into equal parts of at most 256 cells (449 rows -> 2 x
    225, not 256 + 193 padded to 512), so HDF5 compresses no padding: ~10 % less write
    time on the 200k-MP benchmark cube. An axis that dask computes in several blocks
    (tiles, time chunks) gets chunks that fit inside those blocks: a chunk straddling two
    blocks would have to be written twice, and the blocks of a whole tile row held in
    memory to assemble it (5M MPs: 7.7 GB peak instead of 2.2 GB)."""
    enc = {}
    for name, var in ds.data_vars.items():
        e = {"zlib": True, "complevel": NETCDF_COMPLEVEL, "shuffle": True}
        if var.dtype.kind == "f":
            e["_FillValue"] = np.float32(np.nan) if var.dtype == np.float32 else np.nan
        else:
            e["_FillValue"] = None
        if var.ndim >= 2:
            blocks = var.chunks or tuple((n,) for n in var.shape)
            e["chunksizes"] = tuple(
                _chunk_within_blocks(b, time_chunk if d == "time" else 256)
                or (min(n, time_chunk) if d == "time" else _even_chunk(n, 256))
                for d, n, b in zip(var.dims, var.shape, blocks)
            )
        enc[name] = e
    for name in ("x", "y"):
        if name in ds.coords:
            enc[name] = {"_FillValue": None}
    if "time" in ds.coords:
        enc["time"] = {"units": "days since 1970-01-01", "calendar": "standard", "dtype": "float64", "_FillValue": None}
    return enc


#: NetCDF cubes up to this size are computed into memory before writing (see write_cube_store).
IN_MEMORY_WRITE_BYTES = 256 * 2**20


def write_cube_store(ds: xr.Dataset, path, overwrite: bool = False) -> Path:
    """Write a cube atomically as NetCDF (``.nc``) or Zarr (``.zarr``); GeoTIFF cubes and
    QGIS styles are written by :func:`insar_raster.gis.write.write_cube`, which calls this.

    Dask-backed variables are computed and written chunk by chunk, so memory stays
    bounded by the chunk size. NetCDF chunks are compressed on all cores where each is
    computed (:mod:`insar_raster.io.ncwrite`). Where that path does not apply (a
    dask.distributed client, no h5py), netCDF4 writes: a cube of at most
    :data:`IN_MEMORY_WRITE_BYTES` is then computed whole first and written in one pass,
    which is faster there (its writer compresses on one thread either way, and chunk-wise
    writes add a lock and a task per chunk).

    Every NetCDF the project writes (cubes, forecasts, layers) goes through here, so all
    carry the same CF coordinate attributes (``axis``, ``standard_name``, units).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".nc", ".zarr"):
        raise ValueError(f"write_cube_store writes .nc or .zarr, not {suffix or 'no extension'!r}")
    ds = _cf_coordinates(ds)
    with atomic_path(path, overwrite=overwrite, directory=suffix == ".zarr") as tmp, settled_threads():
        if suffix == ".nc":
            # Computing and compressing chunk by chunk on all cores needs no in-memory copy.
            if not to_netcdf_parallel(ds, tmp, netcdf_encoding(ds)):
                if ds.nbytes <= IN_MEMORY_WRITE_BYTES:
                    ds = ds.compute()
                ds.to_netcdf(tmp, engine="netcdf4", encoding=netcdf_encoding(ds), compute=True)
        else:
            enc = {name: {} for name in ds.data_vars}
            ds.to_zarr(tmp, mode="w", encoding=enc, consolidated=True, zarr_format=2)
    return path


def _cf_coordinates(ds: xr.Dataset) -> xr.Dataset:
    """The CF attributes of x/y/time (lost by ``assign_coords``, e.g. in a forecast) and
    the grid mapping of every gridded variable, on a shallow copy."""
    ds = ds.copy()
    crs = ds.rio.crs
    if crs is not None and (crs.is_projected or crs.is_geographic) and "x" in ds.coords and "y" in ds.coords:
        ds = _xy_attrs(ds)  # metres, or longitude/latitude in degrees
    elif "time" in ds.coords:
        ds["time"].attrs.update(standard_name="time", long_name="acquisition date", axis="T")
    if crs is not None:
        for var in ds.data_vars.values():
            if var.dims[-2:] == ("y", "x"):
                var.encoding.pop("grid_mapping", None)
                var.attrs["grid_mapping"] = "spatial_ref"
    return ds


#: (time, y, x) variables of a decomposed cube (``grid --decompose``); the first is the default.
COMPONENT_VARIABLES = ("vertical", "east_west")


def select_variable(ds: xr.Dataset, variable: str | None = None, path=None) -> xr.Dataset:
    """The cube with ``variable`` as its ``displacement`` (what every consumer reads).

    ``variable`` None means ``displacement``, or ``vertical`` in a decomposed cube (which
    has ``vertical`` and ``east_west`` instead). The chosen component is recorded in the
    attrs (``component``); the other (time, y, x) variables are dropped.
    """
    if variable is None:
        variable = next((v for v in (CUBE_VARIABLE, *COMPONENT_VARIABLES) if v in ds), CUBE_VARIABLE)
    if variable in ds and ds[variable].dims != ("time", "y", "x") and set(ds[variable].dims) == {"time", "y", "x"}:
        ds = ds.assign({variable: ds[variable].transpose("time", "y", "x")})  # another tool's (y, x, time)
    if variable not in ds or ds[variable].dims != ("time", "y", "x"):
        choices = [v for v, da in ds.data_vars.items() if da.dims == ("time", "y", "x")]
        raise InputError(
            path,
            f"no '{variable}' (time, y, x) variable",
            f"it has {', '.join(choices)}" if choices else "is this a cube from 'insar-raster grid'?",
        )
    if variable == CUBE_VARIABLE:
        return ds
    others = [v for v, da in ds.data_vars.items() if da.dims == ("time", "y", "x") and v != variable]
    ds = ds.drop_vars(others).rename({variable: CUBE_VARIABLE})
    ds.attrs["component"] = variable
    return ds


def cube_date_index(cube: xr.Dataset, other: xr.Dataset, what: str, name=None, hint=None, param=None) -> np.ndarray:
    """Position in ``other``'s ``time`` of each of ``cube``'s dates (compared as days; the
    first where ``other`` repeats a date), for reading ``other`` (points, a truth cube) on
    the cube's dates.

    Raises
    ------
    InputError
        A cube date missing from ``other``: ``"N of the cube's M dates are not in the
        <what> (first: date)"``, about ``name`` (a file) or ``param``, with ``hint``.
    """
    cube_dates = np.asarray(cube["time"].values, "datetime64[D]")
    other_dates = np.asarray(other["time"].values, "datetime64[D]")
    missing = np.setdiff1d(cube_dates, other_dates)
    if missing.size:
        raise InputError(
            name,
            f"{missing.size} of the cube's {cube_dates.size} dates are not in the {what} (first: {missing[0]})",
            hint,
            param=param,
        )
    if np.all(np.diff(other_dates) > np.timedelta64(0, "D")):
        return np.searchsorted(other_dates, cube_dates)
    return np.array([int(np.flatnonzero(other_dates == d)[0]) for d in cube_dates], dtype=int)


def open_cube(path, chunks: dict | None = None, variable: str | None = None) -> xr.Dataset:
    """Open a cube written by :func:`insar_raster.gis.write.write_cube` (or any CF cube with
    ``displacement``).

    A ``.tif`` is read as one band per epoch (:mod:`insar_raster.io.tifcube`): the
    project's own GeoTIFF cubes and forecasts, and multi-band GeoTIFFs from other tools
    whose bands are dated ``YYYY-MM-DD`` or ``YYYYMMDD``.

    Parameters
    ----------
    variable : str, optional
        The (time, y, x) variable to read as ``displacement`` (:func:`select_variable`):
        e.g. ``"east_west"`` of a decomposed cube; default ``displacement``, or
        ``vertical`` in a decomposed cube.

    Raises
    ------
    InputError
        Missing file, unreadable file, or no such (time, y, x) variable.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".zarr":
            ds = xr.open_zarr(path, chunks=chunks)
        elif suffix in (".nc", ".nc4", ".cdf", ".h5"):
            ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks, decode_coords="all")
        elif suffix in (".tif", ".tiff"):
            from insar_raster.io.tifcube import open_geotiff_cube

            ds = open_geotiff_cube(path, chunks=chunks, variable=CUBE_VARIABLE)
        else:
            points_like = suffix in (".csv", ".txt", ".zip", ".gpkg", ".shp", ".parquet", ".geoparquet", ".pq")
            raise InputError(
                path,
                f"not a cube file (expected .nc, .zarr or .tif, got {suffix or 'no extension'!r})",
                f"grid measurement points first: insar-raster grid {path.name}" if points_like else None,
            )
    except InputError:
        raise
    except Exception as exc:  # netCDF4/HDF5/zarr raise assorted types for corrupt files
        if path.is_file() and path.stat().st_size == 0:
            raise InputError(path, "file is empty") from None
        if suffix == ".zarr":
            raise InputError(
                path,
                "not a readable Zarr store (missing or corrupt metadata)",
                "is the folder complete? re-create it or copy it again",
            ) from None
        kind = "GeoTIFF" if suffix in (".tif", ".tiff") else "NetCDF"
        raise InputError(
            path, f"cannot read as {kind}: {_reason(exc, path)}", "is the file complete? re-create it or copy it again"
        ) from None
    recording = _RECORDING.get()
    if recording is not None:
        recording.append(path)
    ds = select_variable(ds, variable, path)
    if ds.rio.crs is None:
        raise InputError(path, "cube has no CRS (no grid_mapping / spatial_ref)")
    return _in_order(ds, path)


def _in_order(ds: xr.Dataset, path) -> xr.Dataset:
    """The cube in the layout's order: dates rising (another tool's NetCDF may list them
    in any order), ``x`` ascending, ``y`` descending. A date given twice is refused: a
    forecast from it would take a zero time step. Lazy: nothing is read but coordinates."""
    if "time" in ds.dims and not np.issubdtype(ds["time"].dtype, np.datetime64):
        raise InputError(
            path,
            f"not a cube: its time coordinate holds no dates ({ds['time'].dtype} values)",
            "a cube's time is CF dates, e.g. units 'days since 2020-01-01'",
        )
    if "time" in ds.dims and ds.sizes["time"] > 1:
        days = np.asarray(ds["time"].values, "datetime64[D]")
        dates, counts = np.unique(days, return_counts=True)
        if (counts > 1).any():
            repeated = dates[counts > 1]
            raise InputError(
                path,
                f"not a cube: {repeated.size} date(s) appear more than once (first: {repeated[0]})",
                "keep one epoch per date",
            )
        if (np.diff(days) < np.timedelta64(0, "D")).any():
            ds = ds.sortby("time")
    for dim, rising in (("x", True), ("y", False)):
        if dim in ds.dims and ds.sizes[dim] > 1 and (ds[dim].values[1] > ds[dim].values[0]) != rising:
            ds = ds.isel({dim: slice(None, None, -1)})
    return ds
