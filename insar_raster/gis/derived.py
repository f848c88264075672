"""Derived (y, x) layers of a displacement cube: mean velocity and cumulative displacement.

Both are plain xarray arithmetic over the ``time`` axis, so they stay lazy on a
dask-backed cube and are computed chunk by chunk when written.
"""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from insar_raster.errors import InputError
from insar_raster.io.cube import CUBE_VARIABLE
from insar_raster.units import DAYS_PER_YEAR

LAYERS = ("displacement", "velocity", "cumulative")


def _displacement(cube) -> xr.DataArray:
    da = cube[CUBE_VARIABLE] if isinstance(cube, xr.Dataset) else cube
    if "time" not in da.dims:
        raise InputError(None, f"expected a (time, y, x) displacement cube, got dims {da.dims}")
    return da


def _finish(layer: xr.DataArray, source: xr.DataArray, name: str, units: str, long_name: str) -> xr.DataArray:
    layer = layer.astype(np.float32).rename(name)
    layer.attrs = {"units": units, "long_name": long_name}
    times = source["time"].values
    if len(times):
        first, last = (str(np.datetime_as_string(t, unit="D")) for t in (times[0], times[-1]))
        layer.attrs.update(first_epoch=first, last_epoch=last, n_epochs=int(len(times)))
    if source.rio.crs is not None:
        layer = layer.rio.write_crs(source.rio.crs)
        layer.attrs["grid_mapping"] = "spatial_ref"
    return layer


def years_since_first(times) -> np.ndarray:
    """Decimal years since the first of ``times`` (365.25-day years)."""
    times = np.asarray(times, dtype="datetime64[ns]")
    days = (times - times[0]) / np.timedelta64(1, "D")
    return days / DAYS_PER_YEAR


def mean_velocity(cube, min_epochs: int = 2) -> xr.DataArray:
    """Mean velocity (mm/yr): slope of a per-pixel least-squares line through time.

    Epochs where a pixel is NaN are left out of that pixel's fit (no gap filling), so
    a gappy series still gets a velocity from its valid epochs.

    Parameters
    ----------
    cube : xarray.Dataset or xarray.DataArray
        Cube with ``displacement`` (time, y, x) in mm.
    min_epochs : int
        Fewer valid epochs than this gives NaN.

    Returns
    -------
    xarray.DataArray
        ``mean_velocity`` (y, x) float32, mm/yr, CRS attached.
    """
    disp = _displacement(cube)
    t = xr.DataArray(years_since_first(disp["time"].values), dims="time", coords={"time": disp["time"]})
    # Closed-form slope from moments of the valid samples (vectorised, lazy on dask):
    # slope = (n*Sum(t d) - Sum(t) Sum(d)) / (n*Sum(t^2) - Sum(t)^2), float64 sums.
    d = disp.astype(np.float64)
    valid = d.notnull()
    tw = t.where(valid)
    n = valid.sum("time")
    s_t, s_d = tw.sum("time"), d.sum("time", skipna=True)
    s_tt, s_td = (tw * tw).sum("time"), (tw * d).sum("time", skipna=True)
    denominator = n * s_tt - s_t * s_t
    slope = (n * s_td - s_t * s_d) / denominator.where(denominator > 0)
    slope = slope.where(n >= max(2, min_epochs))
    return _finish(slope, disp, "mean_velocity", "mm/yr", "mean velocity from a least-squares linear fit over time")


def cumulative_displacement(cube) -> xr.DataArray:
    """Cumulative displacement (mm): last epoch minus first epoch, per pixel.

    NaN where either epoch is NaN (masked or missing).
    """
    disp = _displacement(cube)
    if disp.sizes["time"] == 0:
        raise InputError(None, "cube has no epochs")
    first = disp.isel(time=0, drop=True)
    last = disp.isel(time=-1, drop=True)
    return _finish(
        last - first, disp, "cumulative_displacement", "mm", "cumulative displacement, last minus first epoch"
    )


def derived_layer(cube, layer: str) -> xr.DataArray:
    """``displacement`` (the cube itself), ``velocity`` or ``cumulative``."""
    if layer == "displacement":
        return _displacement(cube)
    if layer == "velocity":
        return mean_velocity(cube)
    if layer == "cumulative":
        return cumulative_displacement(cube)
    raise InputError(None, f"unknown layer {layer!r}", f"use one of {', '.join(LAYERS)}", param="layer")
