"""Resample a cube to a regular time step (``resample_cube(cube, "12D")``).

Sentinel-1 series have 6- and 12-day gaps and missing acquisitions. The models take the
time deltas as input, so resampling is optional; it makes the forecast dates regular
and lets fixed-step models (``paper``) see the step they assume.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import xarray as xr

from insar_raster.errors import InputError
from insar_raster.forecast.data import times_in_days

log = logging.getLogger("insar_raster")

#: The line :func:`resample_cube` adds to a cube's ``history`` (read by :func:`resampled_step`).
HISTORY_LINE = "resampled to a regular {step} step (linear in time)"
_HISTORY_RE = re.compile(re.escape(HISTORY_LINE).replace(re.escape("{step}"), r"(.+?)"))


def parse_step(step: str) -> pd.Timedelta:
    """``"12D"`` -> 12 days; raises InputError on anything that is not a positive duration."""
    try:
        delta = pd.to_timedelta(step)
    except (ValueError, TypeError):
        raise InputError(None, f"not a time step: {step!r}", "use e.g. 6D or 12D", param="step") from None
    if delta <= pd.Timedelta(0):
        raise InputError(None, f"time step must be positive, got {step!r}", param="step")
    return delta


def irregularity(cube: xr.Dataset) -> tuple[float, float]:
    """Smallest and largest gap between epochs (days)."""
    gaps = np.diff(times_in_days(cube))
    return (float(gaps.min()), float(gaps.max())) if len(gaps) else (0.0, 0.0)


def resample_cube(cube: xr.Dataset, step: str, end_anchored: bool = False) -> xr.Dataset:
    """Linearly interpolate the cube in time onto ``first, first + step, ...`` (<= last).

    Parameters
    ----------
    cube : xarray.Dataset
        Cube layout of :mod:`insar_raster.io.cube`.
    step : str
        Pandas duration, e.g. ``"12D"``.
    end_anchored : bool
        Onto ``..., last - step, last`` (>= first) instead: the last acquisition is kept
        as it is (what a forecast starts from).

    Returns
    -------
    xarray.Dataset
        Same grid and attributes, regular ``time``; a cell is NaN at a new date when
        either neighbouring acquisition is masked there.
    """
    delta = parse_step(step)
    times = pd.DatetimeIndex(cube["time"].values)
    if end_anchored:
        new_times = pd.DatetimeIndex(times[-1] - delta * np.arange(int((times[-1] - times[0]) / delta), -1, -1))
    else:
        new_times = pd.date_range(times[0], times[-1], freq=delta)
    if len(new_times) < 2:
        raise InputError(
            None,
            f"step {step} leaves fewer than 2 epochs between {times[0].date()} and {times[-1].date()}",
            param="step",
        )
    lo, hi = irregularity(cube)
    displacement = cube["displacement"].interp(time=new_times.values, method="linear").astype(np.float32)
    displacement.attrs = dict(cube["displacement"].attrs)
    out = cube.drop_dims("time").assign(displacement=displacement)
    out["time"].attrs = dict(cube["time"].attrs)
    out.attrs["history"] = (cube.attrs.get("history", "") + "\n" + HISTORY_LINE.format(step=step)).strip()
    log.info(
        "resampled %d epochs (gaps %g to %g days) to %d epochs every %s, linear in time",
        cube.sizes["time"],
        lo,
        hi,
        len(new_times),
        step,
    )
    return out


def resampled_step(cube: xr.Dataset) -> str | None:
    """The step of the latest :func:`resample_cube` a cube went through (``"12D"``), read
    from its ``history`` (kept in the files the cube is written to); None if never."""
    found = _HISTORY_RE.findall(str(cube.attrs.get("history", "")))
    return found[-1] if found else None
