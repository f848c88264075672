"""Export a cube, or a layer derived from it, as GeoTIFF / COG / Zarr / NetCDF.

Python API behind ``insar-raster export``::

    cube = open_cube("cube.nc", chunks={})
    export(cube, "velocity.tif", layer="velocity", dates="2020-01-01:2021-12-31")
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
from pathlib import Path

import numpy as np
import xarray as xr

from insar_raster import __version__
from insar_raster.errors import InputError
from insar_raster.gis.derived import LAYERS, derived_layer
from insar_raster.gis.raster import grid_transform, iso_dates, write_geotiff
from insar_raster.gis.write import write_cube
from insar_raster.io.atomic import atomic_path, check_output_path, settled_threads
from insar_raster.io.cube import netcdf_encoding

log = logging.getLogger("insar_raster")

FORMATS = ("cog", "geotiff", "zarr", "netcdf")
SUFFIX_OF_FORMAT = {"cog": ".tif", "geotiff": ".tif", "zarr": ".zarr", "netcdf": ".nc"}
FORMAT_OF_SUFFIX = {".tif": "cog", ".tiff": "cog", ".zarr": "zarr", ".nc": "netcdf"}


def _parse_day(text: str, param: str = "dates") -> np.datetime64:
    try:
        return np.datetime64(text.strip(), "D")
    except ValueError:
        raise InputError(None, f"not a date: {text!r}", "use YYYY-MM-DD", param=param) from None


def select_dates(cube: xr.Dataset, spec: str | None, param: str = "dates") -> xr.Dataset:
    """Keep the epochs named by ``spec``.

    ``spec`` is a comma-separated list of items, each ``YYYY-MM-DD`` (an acquisition
    date, exact to the day), ``START:END`` (inclusive range, either end optional),
    ``first`` or ``last``. ``None`` or ``""`` keeps all epochs. Epochs stay in time order.

    Raises
    ------
    InputError
        A date that is not an epoch of the cube (the nearest epochs are named), a range
        with no epoch, or an unparsable item.
    """
    if not spec:
        return cube
    days = cube["time"].values.astype("datetime64[D]")
    if len(days) == 0:
        raise InputError(None, "the cube has no epochs", param=param)
    keep = np.zeros(len(days), bool)
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item.lower() == "first":
            keep[0] = True
        elif item.lower() == "last":
            keep[-1] = True
        elif ":" in item:
            start, end = item.split(":", 1)
            in_range = np.ones(len(days), bool)
            if start.strip():
                in_range &= days >= _parse_day(start, param)
            if end.strip():
                in_range &= days <= _parse_day(end, param)
            if not in_range.any():
                raise InputError(None, f"no epoch in {item!r} (cube: {days[0]} to {days[-1]})", param=param)
            keep |= in_range
        else:
            day = _parse_day(item, param)
            hit = days == day
            if not hit.any():
                nearest = days[np.argsort(np.abs((days - day).astype(np.int64)))[:2]]
                raise InputError(
                    None,
                    f"{item} is not an epoch of the cube",
                    f"nearest: {', '.join(map(str, sorted(nearest)))}; or use a range START:END",
                    param=param,
                )
            keep |= hit
    return cube.isel(time=np.flatnonzero(keep))


def output_format(path, fmt: str | None) -> str:
    """The format to write: ``fmt`` if given (checked against the suffix), else from the suffix."""
    suffix = Path(path).suffix.lower()
    if fmt is None:
        if suffix not in FORMAT_OF_SUFFIX:
            raise InputError(
                path,
                f"cannot tell the format from {suffix or 'no extension'!r}",
                "use .tif, .zarr or .nc, or pass format=FORMAT",
            )
        return FORMAT_OF_SUFFIX[suffix]
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise InputError(None, f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}", param="format")
    expected = SUFFIX_OF_FORMAT[fmt]
    if suffix != expected and not (expected == ".tif" and suffix == ".tiff"):
        raise InputError(
            path,
            f"format={fmt} writes {expected} files, not {suffix or 'no extension'!r}",
            f"name the output *{expected}",
        )
    return fmt


def default_output(input_path, layer: str, fmt: str) -> Path:
    """``<input stem>_<layer><suffix>`` next to the input."""
    input_path = Path(input_path)
    return input_path.with_name(f"{input_path.stem}_{layer}{SUFFIX_OF_FORMAT[fmt]}")


def _history(attrs: dict, text: str) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{now}: {text} (insar-raster {__version__})"
    old = attrs.get("history")
    return f"{old}\n{line}" if old else line


def layer_dataset(layer: xr.DataArray, cube: xr.Dataset, history: str) -> xr.Dataset:
    """A (y, x) layer as a CF-1.8 Dataset with the cube's grid mapping and provenance."""
    ds = layer.to_dataset(name=layer.name)
    ds = ds.rio.write_crs(cube.rio.crs).rio.write_transform(grid_transform(cube))
    ds = ds.rio.write_coordinate_system()
    ds[layer.name].encoding.pop("grid_mapping", None)
    ds[layer.name].attrs["grid_mapping"] = "spatial_ref"
    attrs = {k: v for k, v in cube.attrs.items() if k not in ("title", "history")}
    attrs.update(
        Conventions="CF-1.8",
        title=f"{layer.attrs.get('long_name', layer.name)} ({layer.attrs.get('first_epoch', '?')} to "
        f"{layer.attrs.get('last_epoch', '?')})",
        history=_history(cube.attrs, history),
        insar_raster_version=__version__,
    )
    ds.attrs = attrs
    return ds


def _computed_layer(values: xr.DataArray, selected: xr.Dataset, layer: str, dates) -> xr.DataArray:
    """A derived (y, x) layer computed once (it is small), refused when no cell has a value:
    an empty raster written with exit 0 looks like a result."""
    with _progress(values, f"computing {layer}"):
        values = values.compute()
    if np.isfinite(values.values).any():
        return values
    first, last = iso_dates(selected["time"].values[[0, -1]])
    why = {
        "velocity": f"no cell has data at 2 or more of the epochs {first} to {last}",
        "cumulative": f"no cell has data at both {first} and {last}",
    }[layer]
    where = {"param": "dates"} if dates else {}
    raise InputError(
        None, f"the {layer} layer would be empty: {why}", "choose epochs with data: dates=START:END", **where
    )


def _progress(values: xr.DataArray, desc: str):
    """A progress bar over ``values``' dask work (none for NumPy values or with -q)."""
    if log.isEnabledFor(logging.INFO) and values.chunks is not None:
        from insar_raster.progress import DaskTqdm

        return DaskTqdm(desc=desc)
    return contextlib.nullcontext()


def export(
    cube: xr.Dataset,
    path,
    fmt: str | None = None,
    layer: str = "displacement",
    dates: str | None = None,
    overwrite: bool = False,
    style: bool = True,
    compress: str = "deflate",
    history: str | None = None,
) -> Path:
    """Write the cube's displacement (selected epochs) or a derived layer.

    Parameters
    ----------
    cube : xarray.Dataset
        Cube layout of :mod:`insar_raster.io.cube` (NumPy or dask backed).
    path : str or Path
        Output file (``.tif``, ``.zarr``, ``.nc``).
    fmt : {"cog", "geotiff", "zarr", "netcdf"}, optional
        Default from the suffix (``.tif`` -> COG).
    layer : {"displacement", "velocity", "cumulative"}
        ``displacement``: one band per selected epoch (mm). ``velocity``: least-squares
        mean velocity over the selected epochs (mm/yr). ``cumulative``: last minus first
        selected epoch (mm).
    dates : str, optional
        Epoch selection, see :func:`select_dates`.
    overwrite, style, compress
        As in :func:`insar_raster.gis.raster.write_geotiff` (``style`` and ``compress``
        only apply to GeoTIFF outputs).
    history : str, optional
        Line appended to the CF ``history`` attribute (default: a description of the call).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    fmt = output_format(path, fmt)
    if layer not in LAYERS:
        raise InputError(None, f"unknown layer {layer!r}", f"use one of {', '.join(LAYERS)}", param="layer")
    check_output_path(path, overwrite)
    selected = select_dates(cube, dates)
    if layer == "velocity" and selected.sizes["time"] < 2:
        # About the dates chosen, or (none chosen) about the cube: the caller names its file.
        where = {"param": "dates"} if dates else {}
        raise InputError(None, f"mean velocity needs at least 2 epochs, got {selected.sizes['time']}", **where)
    values = derived_layer(selected, layer)
    if layer != "displacement":
        values = _computed_layer(values, selected, layer, dates)
    history = history or f"export(layer={layer!r}" + (f", dates={dates!r})" if dates else ")")
    n_epochs = selected.sizes["time"]
    log.info(
        "exporting %s over %d epoch(s) (%s to %s) as %s",
        layer,
        n_epochs,
        *(iso_dates(selected["time"].values[[0, -1]]) if n_epochs else ("-", "-")),
        fmt,
    )
    if fmt in ("cog", "geotiff"):
        return write_geotiff(
            values,
            path,
            overwrite=overwrite,
            cog=fmt == "cog",
            style=style,
            units=values.attrs.get("units"),
            compress=compress,
        )
    progress = _progress(values, f"writing {path.name}")
    if layer == "displacement":
        ds = selected.copy()
        ds.attrs["history"] = _history(cube.attrs, history)
        with progress:
            return write_cube(ds, path, overwrite=overwrite)
    ds = layer_dataset(values, cube, history)
    with progress, atomic_path(path, overwrite=overwrite, directory=fmt == "zarr") as tmp, settled_threads():
        if fmt == "zarr":
            for var in ds.variables.values():
                var.encoding.clear()  # encodings from a NetCDF source confuse the Zarr writer
            ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
        else:
            ds.to_netcdf(tmp, engine="netcdf4", encoding=netcdf_encoding(ds))
    return path
