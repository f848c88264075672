"""Forecast scores over valid (unmasked) cells.

All functions take predictions and observations of the same shape, in mm, with NaN
where a cell is masked, and score only the cells where both are finite (or where an
explicit ``valid`` mask says so). The arrays of an evaluation are usually
``(n_samples, steps, H, W)``: axis 1 is the forecast step.
"""

from __future__ import annotations

import numpy as np


def _pairs(predicted, observed, valid=None):
    predicted = np.asarray(predicted, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    if predicted.shape != observed.shape:
        raise ValueError(f"shapes differ: predicted {predicted.shape}, observed {observed.shape}")
    ok = np.isfinite(predicted) & np.isfinite(observed)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    return predicted[ok], observed[ok]


def rmse(predicted, observed, valid=None) -> float:
    """Root mean square error (mm) over valid cells; NaN if there are none."""
    p, o = _pairs(predicted, observed, valid)
    return float(np.sqrt(np.mean((p - o) ** 2))) if p.size else float("nan")


def mae(predicted, observed, valid=None) -> float:
    """Mean absolute error (mm) over valid cells; NaN if there are none."""
    p, o = _pairs(predicted, observed, valid)
    return float(np.mean(np.abs(p - o))) if p.size else float("nan")


def r2(predicted, observed, valid=None) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` over valid cells.

    ``SS_tot`` is taken around the mean of the observed values. On cumulative
    displacement (which grows over time and differs strongly between cells) this is
    close to 1 even for persistence; see :func:`score` for the change-based variant.
    """
    p, o = _pairs(predicted, observed, valid)
    if p.size == 0:
        return float("nan")
    ss_tot = np.sum((o - o.mean()) ** 2)
    if ss_tot == 0:
        return float("nan")
    return float(1.0 - np.sum((p - o) ** 2) / ss_tot)


def skill(rmse_model: float, rmse_reference: float) -> float:
    """Skill score ``1 - RMSE / RMSE_reference`` (1 perfect, 0 no better, < 0 worse)."""
    if not np.isfinite(rmse_reference) or rmse_reference == 0:
        return float("nan")
    return float(1.0 - rmse_model / rmse_reference)


def score(predicted, observed, valid=None, reference=None) -> dict:
    """RMSE, MAE, R² (and optionally R² of the change) of one set of forecasts.

    Parameters
    ----------
    predicted, observed : array-like
        Same shape, mm, NaN masked.
    valid : array-like of bool, optional
        Cells to score (combined with finiteness).
    reference : array-like, optional
        The last observed input epoch broadcast to ``observed``'s shape (mm). When
        given, ``r2_change`` scores the predicted change ``predicted - reference``
        against the observed change: an R² that persistence cannot inflate.

    Returns
    -------
    dict
        ``rmse`` and ``mae`` (mm), ``r2``, ``n_cells`` and optionally ``r2_change``.
    """
    p, o = _pairs(predicted, observed, valid)
    out = {
        "rmse": rmse(predicted, observed, valid),
        "mae": mae(predicted, observed, valid),
        "r2": r2(predicted, observed, valid),
        "n_cells": int(p.size),
    }
    if reference is not None:
        reference = np.broadcast_to(np.asarray(reference, dtype=np.float64), np.shape(observed))
        out["r2_change"] = r2(
            np.asarray(predicted, np.float64) - reference, np.asarray(observed, np.float64) - reference, valid
        )
    return out


def score_by_step(predicted, observed, valid=None, reference=None) -> dict:
    """:func:`score` overall and for each forecast step (axis 1).

    Returns
    -------
    dict
        ``{"overall": {...}, "per_step": [{...}, ...]}``.
    """
    predicted = np.asarray(predicted)
    observed = np.asarray(observed)
    if predicted.ndim < 2:
        raise ValueError("expected arrays shaped (n_samples, steps, ...)")
    if valid is not None:
        valid = np.broadcast_to(np.asarray(valid, dtype=bool), observed.shape)
    if reference is not None:
        reference = np.broadcast_to(np.asarray(reference), observed.shape)
    per_step = [
        score(
            predicted[:, k],
            observed[:, k],
            None if valid is None else valid[:, k],
            None if reference is None else reference[:, k],
        )
        for k in range(observed.shape[1])
    ]
    return {"overall": score(predicted, observed, valid, reference), "per_step": per_step}


def add_skill(scores: dict, reference_scores: dict) -> dict:
    """Add ``skill`` (vs. the reference model's RMSE) to overall and per-step scores, in place."""
    scores["overall"]["skill"] = skill(scores["overall"]["rmse"], reference_scores["overall"]["rmse"])
    for mine, ref in zip(scores["per_step"], reference_scores["per_step"]):
        mine["skill"] = skill(mine["rmse"], ref["rmse"])
    return scores
