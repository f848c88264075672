"""How sure the scores are: confidence intervals over the test dates.

The errors of one test target date are correlated across cells (one atmosphere, one
acquisition), and neighbouring dates share input windows, so cells are far from
independent samples: a confidence interval that treats them so is much too narrow.
The independent-enough unit is the test date. :func:`per_date_errors` sums each
model's squared errors per target date; :func:`block_bootstrap` resamples the dates in
moving blocks (keeping neighbouring dates together) and recomputes every model's RMSE
on the same resampled dates, so that differences between models are paired.

A model is called best only when its RMSE is lower than every other model's in at
least ``level`` of the resamples' difference intervals (the interval of
``RMSE_other - RMSE_best`` lies above 0); otherwise the models whose interval includes
0 are reported as tied with it.
"""

from __future__ import annotations

import math

import numpy as np


def per_date_errors(predicted, observed, valid, date_index, n_dates: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of squared errors (mm²) and number of scored cells per target date.

    Parameters
    ----------
    predicted, observed : array-like, (n_samples, steps, ...)
        Forecasts and observations in mm, NaN where masked.
    valid : array-like of bool, broadcastable to ``observed``
        Cells to score (all models are scored on the same cells).
    date_index : array-like of int, (n_samples, steps)
        Index of each (sample, step)'s target date in ``0 .. n_dates - 1``.
    n_dates : int
        Number of distinct target dates.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    valid = np.broadcast_to(np.asarray(valid, dtype=bool), observed.shape)
    ok = valid & np.isfinite(predicted) & np.isfinite(observed)
    sq = np.where(ok, (predicted - observed) ** 2, 0.0)
    lead = observed.shape[:2]
    sse_ss = sq.reshape(*lead, -1).sum(axis=-1)
    n_ss = ok.reshape(*lead, -1).sum(axis=-1)
    index = np.asarray(date_index, dtype=np.int64).ravel()
    sse = np.bincount(index, weights=sse_ss.ravel(), minlength=n_dates)
    count = np.bincount(index, weights=n_ss.ravel(), minlength=n_dates)
    return sse, count


def block_length(n_dates: int) -> int:
    """Moving-block length for ``n_dates`` dates: about ``n^(1/3)`` (Hall, Horowitz & Jing 1995)."""
    return max(1, int(round(n_dates ** (1 / 3))))


def block_bootstrap(
    sse: dict, count, resamples: int = 2000, level: float = 0.95, seed: int = 0, block: int | None = None
) -> dict:
    """Confidence intervals of each model's RMSE and of its difference to the best model.

    Parameters
    ----------
    sse : dict of str -> array (n_dates,)
        Per-date sums of squared errors (mm²) per model, from :func:`per_date_errors`
        on the same cells for every model.
    count : array (n_dates,)
        Scored cells per date (the same for every model).
    resamples : int
        Bootstrap resamples.
    level : float
        Confidence level of the intervals (0.95: 2.5th to 97.5th percentiles).
    seed : int
        Seed of the resampling.
    block : int, optional
        Dates per block (default :func:`block_length`).

    Returns
    -------
    dict
        ``method``, ``n_dates``, ``block``, ``resamples``, ``level``, ``rmse`` (point
        estimates, mm), ``rmse_ci`` ({model: [low, high]} mm), ``best`` (lowest RMSE),
        ``difference_to_best`` ({model: {"difference": mm, "ci": [low, high]}}, RMSE of
        the model minus the best's), ``best_holds`` (every difference interval above 0)
        and ``tied_with_best`` (models whose difference interval includes 0). With fewer
        than 3 dates no interval is computed: ``best_holds`` is False.
    """
    names = list(sse)
    count = np.asarray(count, dtype=np.float64)
    sse_matrix = np.stack([np.asarray(sse[n], dtype=np.float64) for n in names])  # (models, dates)
    n_dates = count.size
    total = count.sum()
    point = np.sqrt(sse_matrix.sum(axis=1) / total) if total > 0 else np.full(len(names), np.nan)
    best = names[int(np.nanargmin(point))]
    out = {
        "method": "moving-block bootstrap over test target dates",
        "n_dates": int(n_dates),
        "resamples": int(resamples),
        "level": float(level),
        "rmse": {n: float(v) for n, v in zip(names, point)},
        "best": best,
    }
    if n_dates < 3 or total == 0:
        out.update(
            block=None,
            rmse_ci=None,
            difference_to_best=None,
            best_holds=False,
            tied_with_best=[n for n in names if n != best],
        )
        return out
    block = block or block_length(n_dates)
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(n_dates / block)
    starts = rng.integers(0, n_dates - block + 1, size=(resamples, n_blocks))
    picks = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(resamples, -1)[:, :n_dates]
    # Each resample: how many times each date is drawn; RMSE = sqrt(sum w*sse / sum w*n).
    weights = np.zeros((resamples, n_dates))
    np.add.at(weights, (np.repeat(np.arange(resamples), picks.shape[1]), picks.ravel()), 1.0)
    cells = weights @ count
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = np.sqrt((weights @ sse_matrix.T) / cells[:, None])  # (resamples, models)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    ci = np.nanpercentile(boot, [lo_q, hi_q], axis=0)
    b = names.index(best)
    diffs = boot - boot[:, [b]]
    diff_ci = np.nanpercentile(diffs, [lo_q, hi_q], axis=0)
    tied = [n for i, n in enumerate(names) if i != b and not diff_ci[0, i] > 0]
    out.update(
        block=int(block),
        rmse_ci={n: [float(ci[0, i]), float(ci[1, i])] for i, n in enumerate(names)},
        difference_to_best={
            n: {"difference": float(point[i] - point[b]), "ci": [float(diff_ci[0, i]), float(diff_ci[1, i])]}
            for i, n in enumerate(names)
            if i != b
        },
        best_holds=not tied,
        tied_with_best=tied,
    )
    return out


def score_uncertainty(
    results: dict, against: str = "observed", resamples: int = 2000, level: float = 0.95
) -> dict | None:
    """:func:`block_bootstrap` of an evaluation's results (needs its ``_arrays``).

    Dates are the test target dates (``results["test_dates"]``); cells are the common
    cells every model is scored on.
    """
    arrays = results.get("_arrays")
    if not arrays or arrays.get(against) is None:
        return None
    target = arrays[against]
    dates = results["test_dates"]
    unique = sorted({d for row in dates for d in row})
    lookup = {d: i for i, d in enumerate(unique)}
    date_index = np.array([[lookup[d] for d in row] for row in dates])
    sse, count = {}, None
    for name, predicted in arrays["predictions"].items():
        if name not in results["models"]:
            continue
        sse[name], count = per_date_errors(predicted, target, arrays["common"], date_index, len(unique))
    if not sse:
        return None
    return block_bootstrap(sse, count, resamples=resamples, level=level, seed=int(results.get("seed", 0)))
