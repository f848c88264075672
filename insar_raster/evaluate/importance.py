"""Which input epochs do the models use?

Two views, as in the paper and one step further:

- *Intrinsic* lag importance of the pixel regressors: LASSO's absolute coefficients
  and LightGBM's total split gain per lag (:meth:`PixelLasso.lag_importance`,
  :meth:`PixelLightGBM.lag_importance`), normalised here to shares. The paper found
  both lean overwhelmingly on the most recent epoch, i.e. they default to persistence.
- *Permutation* importance, for any model with ``predict_windows(cube, starts)``
  (deep models included): the input epoch at lag ``j`` of a test sample is replaced by
  the map at the same lag of another window, the forecast is recomputed, and the
  increase of RMSE (mm) against the observed targets is the importance of lag ``j``.
  Maps are swapped whole, so spatial structure stays intact and only the time
  information of that lag is broken.

  Donor windows are *earlier, non-overlapping* windows: sample ``s`` borrows lag ``j``
  from the window starting at ``s - r (window + steps)``, ``r = 1, 2, ...``. Test
  windows overlap (consecutive starts), so a donor taken from a later test sample
  would hand the model one of its own target epochs (a persistence forecast would then
  *improve* when its input is "permuted"); earlier donors carry no future information.
  Each sample is forecast from the cube truncated after its targets with only that
  one epoch replaced, so models that also read the past before the window (the
  default deep models' history prior) see their true history, and the replaced epoch
  enters both their window and their history fit.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from insar_raster.evaluate.metrics import rmse
from insar_raster.forecast.windows import evenly_spread
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


def permutation_importance(
    model, cube: xr.Dataset, starts, window: int, steps: int, repeats: int = 2, valid=None, max_samples: int | None = 6
) -> dict:
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
        (n, steps, H, W) cells to score, for all of ``starts`` (default: finite
        observations and forecasts).
    max_samples : int or None
        Use at most this many samples, evenly spread over ``starts`` (each sample and
        lag costs one forecast per donor).

    Returns
    -------
    dict
        ``base_rmse_mm``, ``delta_rmse_mm`` (per lag, oldest first), ``share`` (the
        positive increases normalised to sum to 1), ``donor_offsets`` (epochs back),
        ``samples`` (the sample starts used).

    Raises
    ------
    ValueError
        No sample start is far enough from the cube's start for a donor window.
    """
    all_starts = np.asarray(starts, dtype=int)
    chosen = np.arange(len(all_starts))
    if max_samples and len(all_starts) > max_samples:  # evenly spread subset: cost is per sample
        chosen = evenly_spread(len(all_starts), max_samples)
    starts = all_starts[chosen]
    offsets = donor_offsets(starts, window, steps, repeats)
    if not offsets:
        raise ValueError(f"permutation test needs a donor window {window + steps} epochs before every sample")
    da = cube[CUBE_VARIABLE]
    base_pred, perm_pred = [], [[] for _ in range(window)]
    observed = []
    for s in starts:
        end = s + window + steps
        # One in-memory copy per sample, modified in place one epoch at a time.
        sub = cube.isel(time=slice(0, end))
        values = np.asarray(da.isel(time=slice(0, end)).values, dtype=np.float32).copy()
        sub[CUBE_VARIABLE] = (da.dims, values, da.attrs)
        array = sub[CUBE_VARIABLE].values  # the array the models read
        observed.append(values[s + window : end].copy())
        base_pred.append(model.predict_windows(sub, np.array([s]))[0])
        for lag in range(window):
            epoch = s + lag
            kept = array[epoch].copy()
            preds = []
            for offset in offsets:
                array[epoch] = array[epoch - offset]
                preds.append(model.predict_windows(sub, np.array([s]))[0])
            array[epoch] = kept
            perm_pred[lag].append(preds)
    observed = np.stack(observed)
    if valid is not None:
        valid = np.asarray(valid)[chosen]
    base = rmse(np.stack(base_pred), observed, valid)
    delta = np.array(
        [
            np.mean([rmse(np.stack([p[r] for p in perm_pred[lag]]), observed, valid) for r in range(len(offsets))])
            - base
            for lag in range(window)
        ]
    )
    return {
        "base_rmse_mm": base,
        "delta_rmse_mm": delta.tolist(),
        "share": shares(np.clip(delta, 0, None)).tolist(),
        "donor_offsets": offsets,
        "samples": starts.tolist(),
    }
