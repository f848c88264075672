"""A multi-band GeoTIFF read as a displacement cube (one band per epoch).

Both cube formats the project writes are cubes to every command: the ``.tif`` of
``grid -o cube.tif`` / ``export`` / ``forecast`` carries one float32 band per epoch with
the ISO date as band description (:mod:`insar_raster.gis.raster`). GeoTIFFs from other
tools (MintPy ``save_gdal``, GDAL stacks, SNAP/LiCSBAS exports) name their bands
``YYYYMMDD`` or carry the date in a band tag; both are read. Values are converted to mm
from the band unit (``m``, ``cm``, ``mm``; none = mm), nodata becomes NaN.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from insar_raster.errors import InputError, first_line
from insar_raster.io.layout import DISPLACEMENT_LONG_NAME, xy_attrs

#: Band tags (GDAL metadata items) that other tools use for a band's acquisition date.
DATE_TAGS = ("DATE", "date", "ACQUISITION_DATE", "acquisition_date", "TIME", "time", "NETCDF_DIM_time")

#: Factors to mm of the displacement units a band may declare.
UNIT_TO_MM = {
    "": 1.0,
    "mm": 1.0,
    "millimeter": 1.0,
    "millimetre": 1.0,
    "millimeters": 1.0,
    "millimetres": 1.0,
    "cm": 10.0,
    "centimeter": 10.0,
    "centimetre": 10.0,
    "centimeters": 10.0,
    "centimetres": 10.0,
    "m": 1000.0,
    "meter": 1000.0,
    "metre": 1000.0,
    "meters": 1000.0,
    "metres": 1000.0,
}

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?Z?)?$")
_COMPACT = re.compile(r"^(?:[A-Za-z_ ]*?)(\d{4})(\d{2})(\d{2})(?:T\d{6})?$")


def parse_band_date(text) -> np.datetime64 | None:
    """The date a band label names, or None.

    Accepted: ISO ``YYYY-MM-DD`` (optionally with a time), compact ``YYYYMMDD``
    (optionally prefixed by letters, e.g. ``D20200115``, or followed by ``THHMMSS``).
    """
    text = str(text or "").strip()
    m = _ISO.match(text) or _COMPACT.match(text)
    if not m:
        return None
    year, month, day = (int(v) for v in m.groups()[:3])
    if not (1 <= month <= 12 and 1 <= day <= 31 and 1900 <= year <= 2200):
        return None
    try:
        return np.datetime64(f"{year:04d}-{month:02d}-{day:02d}", "D")
    except ValueError:
        return None


def band_dates(descriptions, tags=None) -> tuple[list, int | None]:
    """(dates, index of the first undated band or None) from band descriptions or tags.

    Parameters
    ----------
    descriptions : sequence of str or None
        GDAL band descriptions, one per band.
    tags : sequence of dict, optional
        GDAL band metadata per band, searched for :data:`DATE_TAGS` when a description
        is not a date.
    """
    dates = []
    for i, desc in enumerate(descriptions):
        date = parse_band_date(desc)
        if date is None and tags is not None:
            for key in DATE_TAGS:
                date = parse_band_date(tags[i].get(key))
                if date is not None:
                    break
        if date is None:
            return dates, i
        dates.append(date)
    return dates, None


def is_geotiff_cube(path) -> bool:
    """True when ``path`` is a GeoTIFF whose every band is dated (a cube, not a layer)."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            _, undated = band_dates(src.descriptions, [src.tags(b) for b in src.indexes])
            return undated is None
    except Exception:
        return False


def open_geotiff_cube(path, chunks: dict | None = None, variable: str = "displacement") -> xr.Dataset:
    """Open a multi-band GeoTIFF as a cube Dataset (same layout as a NetCDF cube).

    Parameters
    ----------
    path : str or Path
        GeoTIFF with one band per epoch, each band dated by its description (ISO or
        ``YYYYMMDD``) or a date tag.
    chunks : dict, optional
        Dask chunks (``time``, ``y``, ``x`` keys; ``{}`` = one epoch per chunk); None
        reads lazily without dask.
    variable : str
        Name of the data variable.

    Returns
    -------
    xarray.Dataset
        ``variable`` (time, y, x) float32 in mm, NaN where the file has nodata; ``x``
        ascending, ``y`` descending (cell centres), CRS and transform attached.

    Raises
    ------
    InputError
        Unreadable file, no CRS, a band that is not dated, repeated dates, a rotated
        grid, or a unit that is not a length.
    """
    import rasterio
    import rioxarray

    path = Path(path)
    try:
        with rasterio.open(path) as src:
            descriptions = list(src.descriptions)
            tags = [src.tags(b) for b in src.indexes]
            units = [u or t.get("units") or t.get("UNITS") or "" for u, t in zip(src.units, tags)]
            crs, transform = src.crs, src.transform
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(path, f"cannot read as GeoTIFF: {first_line(exc)}") from None
    dates, undated = band_dates(descriptions, tags)
    if undated is not None:
        shown = descriptions[undated] or "no description"
        raise InputError(
            path,
            f"not a cube: band {undated + 1} ({shown!r}) is not dated",
            "a cube GeoTIFF has one band per epoch named by its date, YYYY-MM-DD or YYYYMMDD",
        )
    if len(set(dates)) != len(dates):
        raise InputError(path, "not a cube: two bands have the same date")
    if crs is None:
        raise InputError(path, "the GeoTIFF has no CRS", "assign one, e.g. gdal_edit.py -a_srs EPSG:3035")
    if transform.b != 0 or transform.d != 0:
        raise InputError(path, "the GeoTIFF grid is rotated", "warp it north-up first (gdalwarp)")
    unit_names = {str(u).strip().lower() for u in units}
    unknown = sorted(u for u in unit_names if u not in UNIT_TO_MM)
    if unknown:
        raise InputError(path, f"band unit {unknown[0]!r} is not a length", "expected mm, cm or m")
    if len(unit_names) > 1:
        raise InputError(path, f"bands have different units ({', '.join(sorted(unit_names))})")
    factor = UNIT_TO_MM[unit_names.pop() if unit_names else ""]
    if chunks is not None:
        chunks = {"band": chunks.get("time", 1), "y": chunks.get("y", "auto"), "x": chunks.get("x", "auto")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NotGeoreferencedWarning etc.: checked above
        da = rioxarray.open_rasterio(path, chunks=chunks, mask_and_scale=True, lock=False if chunks else None)
    da = da.astype(np.float32)
    if factor != 1.0:
        da = da * np.float32(factor)
    da = da.rename({"band": "time"}).assign_coords(time=np.asarray(dates, dtype="datetime64[ns]"))
    da = da.sortby("time")
    if da.sizes["y"] > 1 and da["y"].values[1] > da["y"].values[0]:
        da = da.isel(y=slice(None, None, -1))
    da = da.drop_vars([c for c in da.coords if c not in ("time", "y", "x", "spatial_ref")])
    da.attrs = {"units": "mm", "long_name": DISPLACEMENT_LONG_NAME}
    da.encoding = {}
    ds = da.to_dataset(name=variable)
    ds = ds.rio.write_crs(crs).rio.write_transform(transform).rio.write_coordinate_system()
    if crs.is_projected:
        ds = xy_attrs(ds)
    ds[variable].attrs["grid_mapping"] = "spatial_ref"
    ds.attrs.update(title="InSAR displacement cube", source=path.name, Conventions="CF-1.8")
    if factor != 1.0:
        ds.attrs["converted_from_units"] = {1000.0: "m", 10.0: "cm"}[factor]
    return ds
