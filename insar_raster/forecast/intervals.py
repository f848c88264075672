"""Calibrated forecast intervals: split-conformal quantiles, scaled by each cell's noise.

After training, the model forecasts a few validation samples (epochs it was not trained
on as targets). For every cell and horizon step the *normalised score*
``|observed - forecast| / sigma_cell`` is computed, where ``sigma_cell`` is the cell's
noise level (:func:`noise_level`, from its own past only). The quantiles of these scores
per horizon step, at levels 50 %, 51 %, ... 99 % (:data:`LEVELS`), are stored in the model
file. A forecast at level ``p`` is then ``forecast +- q_k(p) * sigma_cell`` for step ``k``:
split conformal prediction (Vovk et al. 2005; Lei et al. 2018), so ``p`` is the share of
future *observations* inside the interval, as long as the future behaves like the
validation period. Noisy cells get wider intervals, quiet ones narrower.

The quantile is the ``ceil((n + 1) p) / n`` order statistic of the ``n`` calibration
scores of a step (the finite-sample correction of split conformal prediction).
"""

from __future__ import annotations

import warnings

import numpy as np

#: Interval levels (percent) calibrated and stored with the model.
LEVELS = tuple(range(50, 100))
#: Past epochs read for a cell's noise level.
NOISE_EPOCHS = 60
#: Floor of the noise level (mm): keeps intervals finite on a noise-free cell.
NOISE_FLOOR_MM = 0.05
#: At most this many validation samples (evenly spread) are forecast for the calibration.
#: Each adds its own target dates, and a date's atmosphere moves all cells of a small
#: scene together: with 6, a step's quantile rests on 6 dates and its coverage on held-out
#: epochs scattered 79-87 % for a stated 80 % over the steps of a realistic L2b burst
#: (64 x 80 cells; not monotone in the step); with all 27 validation samples there, 83-85 %.
CALIBRATION_SAMPLES = 24
#: At least this many (when there are as many validation samples).
CALIBRATION_MIN_SAMPLES = 6
#: Cells x samples forecast for the calibration: a large tile holds many independent
#: atmospheric patches per date and needs fewer dates (an EGMS L3 tile of 1000 x 700 cells
#: gets the minimum; with 24 samples its train + forecast took 4.3 instead of 1.7 minutes), a burst or a 128 x 128
#: scene gets the maximum (:func:`calibration_sample_count`).
CALIBRATION_CELL_SAMPLES = 24 * 128 * 128
#: Calibration samples forecast at once (bounds the memory on a large tile).
CALIBRATION_CHUNK = 6
#: At most this many scores per horizon step enter the quantiles (random subsample).
MAX_SCORES = 2_000_000


def calibration_sample_count(n_validation: int, n_cells: int) -> int:
    """How many of ``n_validation`` samples to forecast for the calibration of a grid of
    ``n_cells`` cells: :data:`CALIBRATION_CELL_SAMPLES` / ``n_cells``, within
    [:data:`CALIBRATION_MIN_SAMPLES`, :data:`CALIBRATION_SAMPLES`] and at most ``n_validation``."""
    wanted = CALIBRATION_CELL_SAMPLES // max(int(n_cells), 1)
    return int(min(n_validation, max(CALIBRATION_MIN_SAMPLES, min(CALIBRATION_SAMPLES, wanted))))


def noise_level(history: np.ndarray) -> np.ndarray:
    """Robust per-cell noise level (mm) from second differences of the cell's past.

    ``history`` (n, h, w), mm, NaN masked: the last :data:`NOISE_EPOCHS` epochs are used.
    Second differences cancel any linear motion; for white noise of standard deviation
    ``s`` they have standard deviation ``sqrt(6) s``, estimated by 1.4826 x the median
    absolute deviation (robust to steps and front arrivals). NaN where fewer than 5
    second differences are observed.
    """
    h = np.asarray(history, dtype=np.float32)[-NOISE_EPOCHS:]
    d2 = h[2:] - 2 * h[1:-1] + h[:-2]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells
        centre = np.nanmedian(d2, axis=0)
        mad = np.nanmedian(np.abs(d2 - centre), axis=0)
    count = np.isfinite(d2).sum(axis=0)
    sigma = np.maximum(1.4826 * mad / np.sqrt(6.0), NOISE_FLOOR_MM)
    return np.where(count >= 5, sigma, np.nan).astype(np.float32)


def conformal_quantiles(scores: np.ndarray, levels=LEVELS) -> list[list[float]]:
    """Split-conformal quantiles: ``[level][step]`` from ``scores`` (n, steps), NaN ignored."""
    ranked = [np.sort(column[np.isfinite(column)]) for column in scores.T]  # once per step, not per level
    out = []
    for level in levels:
        row = []
        for s in ranked:
            if not len(s):
                row.append(float("nan"))
                continue
            rank = min(len(s), int(np.ceil((len(s) + 1) * level / 100.0)))
            row.append(float(s[rank - 1]))
        out.append(row)
    return out


def calibration_scores(
    forecast: np.ndarray,
    observed: np.ndarray,
    sigma: np.ndarray,
    rng: np.random.Generator | None = None,
    share: float = 1.0,
) -> np.ndarray:
    """Normalised scores (n_cells, steps) from forecasts and observations (n, steps, h, w)
    and noise levels (n, h, w); a (sample, cell) with no finite score is dropped, one
    with some (an epoch masked in one of its targets: a stack whose mask changes from date
    to date, an empty epoch) keeps NaN at the others, which :func:`conformal_quantiles`
    skips per step; at most ``share`` x :data:`MAX_SCORES` (``share``: this batch's part
    of all calibration samples)."""
    score = np.abs(observed - forecast) / sigma[:, None]
    score = np.moveaxis(score, 1, -1).reshape(-1, forecast.shape[1])
    score = score[np.isfinite(score).any(axis=1)]
    cap = max(1, int(MAX_SCORES * share))
    if len(score) > cap:
        rng = rng or np.random.default_rng(0)
        score = score[rng.choice(len(score), cap, replace=False)]
    return score


def quantile_at(calibration: dict, level: float) -> np.ndarray:
    """Score quantile per step at ``level`` percent (linear between stored levels).

    Raises
    ------
    ValueError
        ``level`` outside the calibrated range.
    """
    levels = np.asarray(calibration["levels"], dtype=float)
    q = np.asarray(calibration["quantiles"], dtype=float)  # (levels, steps)
    if not levels[0] <= level <= levels[-1]:
        raise ValueError(f"interval level must be between {levels[0]:g} and {levels[-1]:g} percent, got {level:g}")
    return np.array([np.interp(level, levels, q[:, k]) for k in range(q.shape[1])])


def coverage_and_width(lower: np.ndarray, upper: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step: share of observed values inside ``[lower, upper]`` (percent) and mean width (mm).

    Arrays (n, steps, h, w); cells where any of the three is NaN are left out.
    """
    ok = np.isfinite(lower) & np.isfinite(upper) & np.isfinite(observed)
    inside = (observed >= lower) & (observed <= upper) & ok
    n = ok.sum(axis=(0, 2, 3)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cover = 100.0 * inside.sum(axis=(0, 2, 3)) / n
        width = np.where(ok, upper - lower, 0.0).sum(axis=(0, 2, 3)) / n
    return cover, width


def scene_wide_errors(
    values: np.ndarray,
    days: np.ndarray,
    starts,
    window: int,
    steps: int,
    history: int,
    acceleration_ridge: float,
    lag_prior=None,
    step_days: float | None = None,
) -> np.ndarray:
    """Scene-wide error (n, steps) mm of the per-pixel history prior at each sample of
    ``starts``: the median over the cells of ``prior - observed``.

    ``values`` (n_times, n_cells) mm (a sample of the grid's cells), ``days`` their dates.
    The prior is the per-MP history fit's function
    (:class:`~insar_raster.forecast.points.MPHistoryFit`, each cell a series) over the
    ``history`` epochs up to each sample's last input epoch, extrapolated to its
    ``steps`` targets; a cell with no valid epoch in a sample's window has no forecast.
    With ``lag_prior`` (:class:`~insar_raster.forecast.data.LinearPrior`) and its lag
    spacing ``step_days``, the learned linear prior replaces it where the model's would
    (observed lags, regular leads).
    """
    from insar_raster.forecast.data import known_feature_mean, lag_features, regular_leads
    from insar_raster.forecast.points import MPHistoryFit

    starts = np.asarray(starts, int).reshape(-1)
    series = np.asarray(values, np.float32).T  # (n_cells, n_times)
    prior = MPHistoryFit(window, steps, history, acceleration_ridge).fit(series, days, starts)
    targets = np.asarray(values)[starts[:, None] + window + np.arange(steps)]  # (n, steps, n_cells)
    forecast = prior.predict(series, days, starts)
    if lag_prior is not None:
        cube = np.asarray(values)[:, :, None]  # (n_times, n_cells, 1): a grid of one column
        for i, s in enumerate(starts):
            last = s + window - 1
            first = max(0, last - lag_prior.lookback)
            leads = (days[last + 1 : last + 1 + steps] - days[last]) / step_days
            if not regular_leads(leads):  # the history fit stays, as in the model
                continue
            fit_change = (forecast[i] - cube[last, :, 0])[:, :, None]
            history, history_days = cube[first : last + 1], days[first : last + 1]
            lags = lag_features(history, history_days, lag_prior.lookback, step_days)
            # These cells are the model's grid sample: the same means.
            mean = known_feature_mean(lags, fit_change) if lag_prior.centred else None
            learned = lag_prior.change(history, history_days, leads, step_days, fit_change, mean, lags)[:, :, 0]
            forecast[i] = np.where(np.isfinite(learned), learned + cube[last, :, 0], forecast[i])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a date with no valid cell
        return np.nanmedian(forecast - targets, axis=2).astype(np.float64)


def scene_wide_widening(
    values: np.ndarray,
    days: np.ndarray,
    calibration_starts,
    window: int,
    steps: int,
    history: int,
    acceleration_ridge: float,
    calibration_mse: np.ndarray,
    lag_prior=None,
    step_days: float | None = None,
    calibration_scene_mse: np.ndarray | None = None,
) -> np.ndarray:
    """Per-step factor on the calibrated quantiles for scene-wide errors that the
    calibration samples did not show, or showed more of than the years before them.

    A date's atmosphere, or a dry year's seasonal swing, moves every cell of a scene
    together: this scene-wide part of the error changes from one stretch of dates to the
    next, and a calm validation period makes intervals too narrow for the next (issue
    12's ``urban`` scene, seed 2: its RMS was 0.32-0.50 mm over the validation samples,
    0.55-0.99 mm over the years before them and 0.58-1.19 mm over the test samples, and
    the intervals covered 73-77 % for 80 %). The history prior's scene-wide errors
    (:func:`scene_wide_errors`, which need no network) are read at every origin of the
    three years before the last calibration origin (each with a year of history: the
    point forecast's :data:`~insar_raster.forecast.points.COMMON_MODE_DAYS` and
    :data:`~insar_raster.forecast.points.MIN_HISTORY_DAYS`) and at the calibration samples; where
    their mean square over the longer past exceeds that over the calibration samples, the
    excess ``x_k`` (mm^2) is added to the model's calibration mean squared error
    ``calibration_mse[k]`` (mm^2): factor ``sqrt(1 + x_k / mse_k)``.

    A calibration stretch with *more* scene-wide error than the three years (issue 12's
    ``realistic`` scene, seed 1: the prior's scene-wide mean square 1.9 times that of the
    three years at step 6, and intervals covering 86 % of the test epochs for 80 %)
    narrows them by as much: the model's own scene-wide mean square on the calibration
    samples, ``calibration_scene_mse[k]`` (median over the cells of its error, per sample),
    is taken to shrink in the ratio ``past_k / now_k`` of the prior's, so
    ``x_k = -calibration_scene_mse[k] (1 - past_k / now_k)``: never more than the
    scene-wide part the model's errors held, and nothing where the model removed it.
    Without ``calibration_scene_mse``, never narrows.

    Parameters
    ----------
    values : ndarray (n_times, n_cells)
        Displacement (mm) of a sample of the grid's cells, NaN masked.
    days : ndarray (n_times,)
    calibration_starts : array of int
        The samples the quantiles were calibrated on.
    window, steps, history : int
    acceleration_ridge : float
        The prior's form (:class:`~insar_raster.forecast.config.TrainConfig`).
    lag_prior, step_days
        The learned linear prior, when the model uses it (:func:`scene_wide_errors`).
    calibration_mse : ndarray (steps,)
        Mean squared error (mm^2) of the model on the calibration samples, per step.
    calibration_scene_mse : ndarray (steps,), optional
        Mean square (mm^2) over the calibration samples of the model's scene-wide error
        (median over the cells), per step.
    """
    from insar_raster.forecast.points import COMMON_MODE_DAYS, MIN_HISTORY_DAYS

    days = np.asarray(days, np.float64)
    cal = np.asarray(calibration_starts, int).reshape(-1)
    last_origin = days[cal.max() + window - 1]
    origins = np.arange(0, cal.max() + 1)
    origin_days = days[origins + window - 1]
    keep = (origin_days >= days[0] + MIN_HISTORY_DAYS) & (origin_days >= last_origin - COMMON_MODE_DAYS)
    if lag_prior is not None:  # only origins with the learned prior's whole lookback: what forecasts use
        keep &= origins + window - 1 >= lag_prior.lookback
    longer = origins[keep]
    if len(longer) < 2:
        return np.ones(steps)
    both = np.union1d(longer, cal)
    squared = (
        scene_wide_errors(values, days, both, window, steps, history, acceleration_ridge, lag_prior, step_days) ** 2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps
        past = np.nanmean(squared[np.isin(both, longer)], 0)
        now = np.nanmean(squared[np.isin(both, cal)], 0)
    excess = np.nan_to_num(np.maximum(past - now, 0.0))
    if calibration_scene_mse is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            shrink = np.clip(np.nan_to_num(1.0 - past / now), 0.0, 1.0)  # 0 where past >= now
        excess = excess - np.nan_to_num(np.asarray(calibration_scene_mse, np.float64)) * shrink
    mse = np.asarray(calibration_mse, np.float64)
    factor = np.sqrt(np.maximum(1.0 + excess / np.where(mse > 0, mse, 1.0), 0.0))
    return np.where(mse > 0, factor, 1.0)
