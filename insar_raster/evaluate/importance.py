"""Which input epochs do the models use?

Two views, as in the paper and one step further:

- *Intrinsic* lag importance of the pixel regressors: LASSO's absolute coefficients
  and LightGBM's total split gain per lag (:meth:`PixelLasso.lag_importance`,
  :meth:`PixelLightGBM.lag_importance`), normalised here to shares. The paper found
  both lean overwhelmingly on the most recent epoch, i.e. they default to persistence.
- *Permutation* importance, for any model with ``predict_windows(cube, starts)``
  (deep models included): the input epoch at lag ``j`` of every test sample is
  replaced by the map at the same lag of another window, the forecasts are
  recomputed, and the increase of RMSE (mm) against the observed targets is the
  importance of lag ``j``. Maps are swapped whole, so spatial structure stays intact
  and only the time information of that lag is broken.

  Donor windows are *earlier, non-overlapping* windows: sample ``s`` borrows lag ``j``
  from the window starting at ``s - r (window + steps)``, ``r = 1, 2, ...``. Test
  windows overlap (consecutive starts), so a donor taken from a later test sample
  would hand the model one of its own target epochs (a persistence forecast would then
  *improve* when its input is "permuted"); earlier donors carry no future information.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from insar_raster.evaluate.metrics import rmse
from insar_raster.io.cube import CUBE_VARIABLE


def shares(importance) -> np.ndarray:
    """Normalise non-negative importances along the last axis so they sum to 1."""
    importance = np.abs(np.asarray(importance, dtype=np.float64))
    total = importance.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, importance / total, np.nan)


def donor_offsets(starts: np.ndarray, window: int, steps: int, repeats: int) -> list[int]:
    """Offsets ``r (window + steps)``, ``r = 1..repeats``, that every sample can go back by."""
    span = window + steps
    available = int(np.min(starts)) // span if len(starts) else 0
    return [r * span for r in range(1, min(repeats, available) + 1)]


def stacked_windows(cube: xr.Dataset, starts: np.ndarray, window: int, steps: int,
                    replace_lag: int | None = None, donor_starts: np.ndarray | None = None) -> tuple[xr.Dataset, np.ndarray]:
    """One cube holding each sample's window and targets back to back.

    Sample ``i`` occupies epochs ``[i * (window + steps), (i + 1) * (window + steps))``
    of the result, with its own dates (so time features and leads are unchanged).
    If ``replace_lag`` is given, the input epoch at that lag of sample ``i`` is taken
    from the window starting at ``donor_starts[i]`` instead (same lag).

    Returns
    -------
    cube : xarray.Dataset
        Same grid and CRS; the time coordinate is not monotonic.
    starts : ndarray
        Start of each sample in the stacked cube.
    """
    starts = np.asarray(starts, dtype=int)
    span = window + steps
    epochs = (starts[:, None] + np.arange(span)[None, :]).ravel()
    stacked = cube.isel(time=epochs)
    values = np.asarray(stacked[CUBE_VARIABLE].values, dtype=np.float32).copy()
    if replace_lag is not None:
        donor = np.asarray(donor_starts, dtype=int) + replace_lag
        values[np.arange(len(starts)) * span + replace_lag] = np.asarray(
            cube[CUBE_VARIABLE].isel(time=donor).values, dtype=np.float32)
    stacked = stacked.copy()
    stacked[CUBE_VARIABLE] = (stacked[CUBE_VARIABLE].dims, values, stacked[CUBE_VARIABLE].attrs)
    return stacked, np.arange(len(starts)) * span


def permutation_importance(model, cube: xr.Dataset, starts, window: int, steps: int,
                           repeats: int = 4, valid=None) -> dict:
    """Increase of RMSE when each input epoch (lag) is replaced by an earlier window's.

    Parameters
    ----------
    model : object
        Anything with ``predict_windows(cube, starts) -> (n, steps, H, W)``.
    cube : xarray.Dataset
        The evaluated cube.
    starts : array-like of int
        Sample starts (usually ``split.test``); the earliest must be at least
        ``window + steps`` so that one earlier donor window exists.
    window, steps : int
    repeats : int
        Donor windows per sample and lag (1, 2, ... spans of ``window + steps``
        back, as far as the cube allows); the RMSE increase is averaged over them.
    valid : ndarray of bool, optional
        (n, steps, H, W) cells to score (default: finite observations and forecasts).

    Returns
    -------
    dict
        ``base_rmse_mm``, ``delta_rmse_mm`` (per lag, oldest first), ``share`` (the
        positive increases normalised to sum to 1), ``donor_offsets`` (epochs back).

    Raises
    ------
    ValueError
        No sample start is far enough from the cube's start for a donor window.
    """
    starts = np.asarray(starts, dtype=int)
    offsets = donor_offsets(starts, window, steps, repeats)
    if not offsets:
        raise ValueError(f"permutation test needs a donor window {window + steps} epochs before every sample")
    observed = np.asarray(cube[CUBE_VARIABLE].values, dtype=np.float32)[
        starts[:, None] + window + np.arange(steps)[None, :]]
    stacked, stacked_starts = stacked_windows(cube, starts, window, steps)
    base = rmse(model.predict_windows(stacked, stacked_starts), observed, valid)
    delta = np.zeros(window)
    for lag in range(window):
        for offset in offsets:
            permuted, _ = stacked_windows(cube, starts, window, steps, lag, starts - offset)
            delta[lag] += rmse(model.predict_windows(permuted, stacked_starts), observed, valid) - base
    delta /= len(offsets)
    return {"base_rmse_mm": base, "delta_rmse_mm": delta.tolist(),
            "share": shares(np.clip(delta, 0, None)).tolist(), "donor_offsets": offsets}
