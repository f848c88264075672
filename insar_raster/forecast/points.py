"""Forecasts at the measurement points (MPs): a grid forecast sampled at the MPs, per-MP
baselines, and the point forecast that combines each MP's own history with the cube's.

Why a point forecast
--------------------
A grid forecast says what the *cell* will do. An MP (a roof, a bridge pier) is not its
cell: it has its own offset from the cell mean (EGMS references every series to its own
first epoch), its own seasonal amplitude (thermal dilation) and its own noise. Sampled
at an MP and scored against the MP's own future, a grid forecast carries all of these
as error; the MP's own persistence and a per-MP history fit do not, but they know
nothing of space (the neighbours' motion, the atmosphere shared with them).

:class:`PointForecaster` combines both. For each MP and forecast step ``k`` it
forecasts a convex combination (weights >= 0, summing to 1, one set per step) of
:data:`MEMBERS`:

- the MP's last value (per-MP persistence);
- the MP's history fit (:func:`insar_raster.forecast.data.history_fit`, the default
  model's prior, applied to the MP's own series) extrapolated (per-MP history fit);
- ``recent``: the fit's level at the last input epoch plus the mean residual of the
  last :data:`RECENT_EPOCHS` epochs (a denoised last value, which keeps a departure
  that persists, e.g. correlated atmosphere or a change of rate), held;
- ``recent`` plus the change the history fit extrapolates;
- ``recent`` plus the change the grid forecast predicts at the MP (the forecast raster
  and the cube's last input epoch, both sampled at the MP with :func:`sample_grid`, so
  the MP's offset from its cell cancels).

The weights are least squares over (validation sample, MP) pairs under the convex
constraint: they are learned on epochs the grid model did not train on, never on the
epochs that are scored. Both per-MP baselines are members, so on the epochs it learns
from the combination is at least as good as either; whether it is on later epochs is
what ``evaluate`` measures (``evaluate --points``).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import xarray as xr

from insar_raster.errors import InputError
from insar_raster.forecast.data import ACCELERATION_RIDGES, harmonic_design, history_eval, history_fit, times_in_days

log = logging.getLogger("insar_raster")

#: Residuals averaged into the ``r_recent`` feature (epochs).
RECENT_EPOCHS = 4
#: Candidate shrinkage of the learned weights towards the MP's own history fit (0: the
#: learned weights, 1: the history fit), chosen by two-fold cross-validation in time.
SHRINKS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: The forecasts the point forecast combines, per MP and step ``k`` (``level``: the MP's
#: history fit at the last input epoch; ``recent``: ``level`` plus the mean residual of
#: the last :data:`RECENT_EPOCHS` epochs, a denoised last value):
#: the last value (per-MP persistence), the history fit (per-MP history fit), ``recent``
#: held, ``recent`` + the history fit's change, ``recent`` + the grid forecast's change.
MEMBERS = (
    "mp_persistence",
    "mp_history_fit",
    "recent_level",
    "recent_level_plus_history_change",
    "recent_level_plus_grid_change",
    "recent_level_plus_grid_trend_and_own_annual_change",
)


# --------------------------------------------------------------------------- sampling


def grid_positions(cube: xr.Dataset, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, col) of map coordinates ``x, y`` (cube CRS) on the cube's cells.

    Cell centres are integers; ``-0.5`` and ``n - 0.5`` are the grid's outer edges.
    """
    from insar_raster.io.cube import grid_transform

    t = grid_transform(cube)
    cols = (np.asarray(x, np.float64) - t.c) / t.a - 0.5
    rows = (np.asarray(y, np.float64) - t.f) / t.e - 0.5
    return rows, cols


def sample_grid(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample a raster stack at fractional cell positions: bilinear where the four
    surrounding cells are valid, else the nearest cell.

    Parameters
    ----------
    values : ndarray (..., h, w)
        Raster(s), NaN masked.
    rows, cols : ndarray (n,)
        Positions from :func:`grid_positions`.

    Returns
    -------
    ndarray (..., n) float32
        NaN for positions outside the grid, or where the nearest cell is masked and
        bilinear interpolation is not possible.
    """
    values = np.asarray(values)
    h, w = values.shape[-2:]
    rows, cols = np.asarray(rows, np.float64), np.asarray(cols, np.float64)
    inside = (rows >= -0.5) & (rows <= h - 0.5) & (cols >= -0.5) & (cols <= w - 0.5)
    r0 = np.clip(np.floor(rows), 0, h - 1).astype(np.intp)
    c0 = np.clip(np.floor(cols), 0, w - 1).astype(np.intp)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr = np.clip(rows - r0, 0.0, 1.0)
    fc = np.clip(cols - c0, 0.0, 1.0)
    v00, v01 = values[..., r0, c0], values[..., r0, c1]
    v10, v11 = values[..., r1, c0], values[..., r1, c1]
    bilinear = (1 - fr) * (1 - fc) * v00 + (1 - fr) * fc * v01 + fr * (1 - fc) * v10 + fr * fc * v11
    rn = np.clip(np.rint(rows), 0, h - 1).astype(np.intp)
    cn = np.clip(np.rint(cols), 0, w - 1).astype(np.intp)
    four = np.isfinite(v00) & np.isfinite(v01) & np.isfinite(v10) & np.isfinite(v11)
    out = np.where(four, bilinear, values[..., rn, cn]).astype(np.float32)
    out[..., ~inside] = np.nan
    return out


def points_on_cube(points: xr.Dataset, cube: xr.Dataset, name=None) -> dict:
    """The MPs of ``points`` that lie on the cube's grid, on the cube's dates.

    Parameters
    ----------
    points : xarray.Dataset
        Points layout of :mod:`insar_raster.io.points`; reprojected to the cube's CRS
        when they differ.
    cube : xarray.Dataset
    name : str, optional
        What to call the points in errors (e.g. their file names).

    Returns
    -------
    dict
        ``values`` (n, time) float32 mm on the cube's dates, ``rows``, ``cols`` (grid
        positions), ``x``, ``y`` (cube CRS), ``pid``, ``keep`` (bool per input MP:
        inside the grid), ``mean_velocity`` (mm/yr, the input's or None).

    Raises
    ------
    InputError
        A cube date missing from the points, or no MP on the grid.
    """
    from pyproj import CRS, Transformer

    name = name or points.attrs.get("source") or "points"
    component = cube.attrs.get("component")
    if component not in (None, "displacement"):
        raise InputError(
            name,
            f"the cube holds the {component!r} component, which the measurement points do not measure",
            "score or forecast points on a cube gridded from them",
        )
    cube_dates = np.asarray(cube["time"].values, "datetime64[D]")
    point_dates = np.asarray(points["time"].values, "datetime64[D]")
    missing = np.setdiff1d(cube_dates, point_dates)
    if missing.size:
        raise InputError(
            name,
            f"{missing.size} of the cube's {cube_dates.size} dates are not in the points (first: {missing[0]})",
            "use the points the cube was gridded from",
        )
    index = (
        np.searchsorted(point_dates, cube_dates)
        if np.all(np.diff(point_dates) > np.timedelta64(0, "D"))
        else np.array([int(np.flatnonzero(point_dates == d)[0]) for d in cube_dates])
    )
    x, y = np.asarray(points["x"].values, np.float64), np.asarray(points["y"].values, np.float64)
    crs_points, crs_cube = points.rio.crs, cube.rio.crs
    if (
        crs_points is not None
        and crs_cube is not None
        and CRS.from_user_input(crs_points) != CRS.from_user_input(crs_cube)
    ):
        x, y = Transformer.from_crs(crs_points, crs_cube, always_xy=True).transform(x, y)
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rows, cols = grid_positions(cube, x, y)
    h, w = cube.sizes["y"], cube.sizes["x"]
    keep = (rows >= -0.5) & (rows <= h - 0.5) & (cols >= -0.5) & (cols <= w - 0.5)
    if not keep.any():
        raise InputError(
            name, "no measurement point lies on the cube's grid", "use the points the cube was gridded from"
        )
    if not keep.all():
        log.warning(
            "%d of %d measurement points lie outside the cube's grid and are left out", int((~keep).sum()), keep.size
        )
    values = np.asarray(points["displacement"].values, np.float32)[keep][:, index]
    velocity = points["mean_velocity"].values[keep].astype(np.float32) if "mean_velocity" in points else None
    return {
        "values": values,
        "rows": rows[keep],
        "cols": cols[keep],
        "x": x[keep],
        "y": y[keep],
        "pid": np.asarray(points["pid"].values).astype(str)[keep],
        "keep": keep,
        "mean_velocity": velocity,
        "times": np.asarray(cube["time"].values),
    }


def cell_change_at_points(cell_forecast: np.ndarray, last_input: np.ndarray, rows, cols) -> np.ndarray:
    """Change the grid forecast predicts at each MP, (n, steps, n_mp) mm.

    ``cell_forecast`` (n, steps, h, w) and ``last_input`` (n, h, w, the cube at each
    sample's last input epoch) are sampled at the MPs the same way, so the MP's offset
    from its cell cancels.
    """
    return sample_grid(cell_forecast, rows, cols) - sample_grid(last_input, rows, cols)[:, None]


# --------------------------------------------------------------------------- per-MP models


def _target_days(days, starts, window, steps, target_days=None) -> np.ndarray:
    if target_days is not None:
        return np.asarray(target_days, np.float64).reshape(len(starts), steps)
    epochs = np.asarray(starts)[:, None] + window + np.arange(steps)[None, :]
    step = float(np.median(np.diff(days))) if len(days) > 1 else 1.0
    return np.where(
        epochs < len(days), days[np.minimum(epochs, len(days) - 1)], days[-1] + (epochs - len(days) + 1) * step
    )


def mp_persistence(values: np.ndarray, starts, window: int, steps: int) -> np.ndarray:
    """Per-MP persistence: each MP's last input value for every step, (n, steps, n_mp) mm."""
    last = np.asarray(values, np.float32)[:, np.asarray(starts) + window - 1].T  # (n, n_mp)
    return np.repeat(last[:, None], steps, axis=1)


class MPHistoryFit:
    """Per-MP history fit: the default model's prior applied to each MP's own series.

    Per MP, :func:`~insar_raster.forecast.data.history_fit` (trend + acceleration +
    annual cycle, ridge) over at most ``history`` epochs up to the last input epoch,
    extrapolated to the target dates; the acceleration penalty is picked from
    :data:`~insar_raster.forecast.data.ACCELERATION_RIDGES` by RMSE on the samples
    given to :meth:`fit` (as the ``history_fit`` baseline does on the cells).

    Parameters
    ----------
    window, steps : int
        Input epochs and forecast horizon of the samples (epochs).
    history : int
        Most past epochs fitted.
    acceleration_ridge : float, optional
        Fixed penalty; None chooses it in :meth:`fit`.
    """

    def __init__(self, window: int = 12, steps: int = 6, history: int = 150, acceleration_ridge: float | None = None):
        self.window = window
        self.steps = steps
        self.history = history
        self.acceleration_ridge = acceleration_ridge

    def _coef(self, values, days, last, ridge):
        first = max(0, last + 1 - max(self.window, int(self.history)))
        block = np.asarray(values[:, first : last + 1], np.float64).T[:, :, None]  # (t, n_mp, 1)
        return history_fit(block, days[first : last + 1], days[last], ridge)[:, :, 0]  # (5, n_mp)

    def _predict(self, values, days, starts, ridge, target_days=None, with_level=False):
        starts = np.asarray(starts, int).reshape(-1)
        tdays = _target_days(days, starts, self.window, self.steps, target_days)
        n_mp = values.shape[0]
        out = np.empty((len(starts), self.steps, n_mp), np.float32)
        levels = np.empty((len(starts), n_mp), np.float32)
        recent = np.empty_like(levels)
        seasonal = np.empty_like(out)
        for i, s in enumerate(starts):
            last = s + self.window - 1
            coef = self._coef(values, days, last, ridge)
            out[i] = history_eval(coef[:, :, None], tdays[i], days[last])[:, :, 0]
            if with_level:
                first = max(0, last + 1 - RECENT_EPOCHS)
                fitted = history_eval(coef[:, :, None], days[first : last + 1], days[last])[:, :, 0]  # (m, n_mp)
                levels[i] = fitted[-1]
                with warnings.catch_warnings():  # an MP (or cube cell) with no valid recent epoch: NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    recent[i] = np.nanmean(values[:, first : last + 1].T - fitted, axis=0)
                # The annual terms' part of the extrapolated change (the rest is trend + acceleration).
                design = harmonic_design(np.r_[days[last], tdays[i]], days[last])[:, 3:]
                annual = design @ coef[3:]
                seasonal[i] = annual[1:] - annual[:1]
        return (out, levels, recent, seasonal) if with_level else out

    def fit(self, values: np.ndarray, days: np.ndarray, starts, use=None) -> "MPHistoryFit":
        """Choose the acceleration penalty on the samples ``starts`` (their targets must
        lie in ``values``); ``use`` (bool per MP) limits the MPs that count."""
        values = np.asarray(values, np.float32)
        starts = np.asarray(starts, int).reshape(-1)
        if self.acceleration_ridge is not None:
            self.acceleration_ridge_ = float(self.acceleration_ridge)
            return self
        target = values[:, starts[:, None] + self.window + np.arange(self.steps)].transpose(1, 2, 0)
        mask = np.ones(values.shape[0], bool) if use is None else np.asarray(use, bool)
        errors = {}
        for ridge in ACCELERATION_RIDGES:
            err = (self._predict(values, days, starts, ridge) - target)[:, :, mask]
            errors[ridge] = float(np.sqrt(np.nanmean(err**2))) if np.isfinite(err).any() else np.inf
        self.acceleration_ridge_ = min(errors, key=lambda r: (errors[r], r))
        return self

    def predict(self, values, days, starts, target_days=None) -> np.ndarray:
        """Forecasts (n, steps, n_mp) mm of the samples ``starts``; ``target_days``
        (n, steps) for targets past the end of ``values``."""
        return self._predict(np.asarray(values, np.float32), days, starts, self.acceleration_ridge_, target_days)


def _convex_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares weights ``w >= 0``, ``sum(w) = 1`` of the columns of ``x`` for ``y``."""
    from scipy.optimize import nnls

    m = x.shape[1]
    gram, rhs = x.T @ x, x.T @ y
    # The sum constraint as a heavily weighted extra row of a non-negative least squares
    # problem, on the normal equations (Cholesky factor), so its size is (m + 1, m).
    scale = np.sqrt(np.trace(gram) / m) * 1e3
    chol = np.linalg.cholesky(gram + 1e-9 * np.trace(gram) * np.eye(m))
    w, _ = nnls(np.vstack([chol.T, scale * np.ones((1, m))]), np.r_[np.linalg.solve(chol, rhs), scale])
    return w / w.sum() if w.sum() > 0 else np.eye(m)[1]


class PointForecaster:
    """Each MP's own history plus the cube's forecast, combined with weights learned on
    validation samples.

    The point forecast is a convex combination (weights >= 0 that sum to 1, one set per
    forecast step) of :data:`MEMBERS`, forecasts built from the MP's own series and the
    grid forecast's change at the MP (see the module docstring). Convex weights cannot
    amplify a trend that held on the validation epochs (a free linear combination did,
    and lost to persistence on scenes whose rates switch), and both per-MP baselines
    are members, so on the samples it learns from the combination is at least as good
    as either.

    verde style: ``__init__`` stores the parameters, :meth:`fit` learns ``weights_``
    (steps, members) and ``history_fit_``, :meth:`predict` forecasts.

    Parameters
    ----------
    window, steps : int
        Input epochs and horizon of the samples (epochs), as in the grid model's split.
    history : int
        Most past epochs of each MP's history fit.
    acceleration_ridge : float, optional
        History fit's acceleration penalty; None chooses it in :meth:`fit`.
    """

    def __init__(self, window: int = 12, steps: int = 6, history: int = 150, acceleration_ridge: float | None = None):
        self.window = window
        self.steps = steps
        self.history = history
        self.acceleration_ridge = acceleration_ridge

    def _members(self, values, days, starts, cell_change, target_days=None, grid_series=None):
        """Member forecasts (n, steps, n_mp, members) mm."""
        hf = self.history_fit_
        pred, level, recent, annual = hf._predict(
            values, days, starts, hf.acceleration_ridge_, target_days, with_level=True
        )
        last = values[:, np.asarray(starts) + self.window - 1].T  # (n, n_mp)
        n, steps, n_mp = pred.shape
        cell = np.asarray(cell_change, np.float32)
        if cell.shape != (n, steps, n_mp):
            raise ValueError(f"cell_change has shape {cell.shape}, expected {(n, steps, n_mp)}")
        recent_level = (level + np.where(np.isfinite(recent), recent, 0.0))[:, None]
        out = np.empty((n, steps, n_mp, len(MEMBERS)), np.float32)
        out[..., 0] = last[:, None]
        out[..., 1] = pred
        out[..., 2] = recent_level
        out[..., 3] = recent_level + pred - level[:, None]
        # No grid forecast at the MP: the member falls back to the MP's recent level.
        out[..., 4] = recent_level + np.where(np.isfinite(cell), cell, 0.0)
        # The trend + acceleration of the history fit of the cube's series at the MP
        # (many MPs' average: a steadier trend than one MP's) with the MP's own annual
        # term; without it (or where the cube is masked), the MP's own history change.
        own = out[..., 3]
        if grid_series is None:
            out[..., 5] = own
        else:
            gpred, glevel, _, gannual = hf._predict(
                np.asarray(grid_series, np.float32), days, starts, hf.acceleration_ridge_, target_days, with_level=True
            )
            member = recent_level + (gpred - glevel[:, None] - gannual) + annual
            out[..., 5] = np.where(np.isfinite(member), member, own)
        return out

    def fit(
        self,
        values: np.ndarray,
        days: np.ndarray,
        starts,
        cell_change: np.ndarray,
        use=None,
        grid_series: np.ndarray | None = None,
    ) -> "PointForecaster":
        """Learn the weights on samples whose targets are observed.

        Parameters
        ----------
        values : ndarray (n_mp, n_times)
            MP displacement (mm) on the cube's dates.
        days : ndarray (n_times,)
            Dates (float days).
        starts : array of int
            Sample starts (validation samples of the grid model's split); their
            targets ``[s + window, s + window + steps)`` are the training targets.
        cell_change : ndarray (n, steps, n_mp)
            The grid forecast's change at the MPs (:func:`cell_change_at_points`).
        use : ndarray of bool (n_mp,), optional
            MPs that may be training targets (a spatial hold-out leaves the others out).
        grid_series : ndarray (n_mp, n_times), optional
            The cube's observed series sampled at each MP (:func:`sample_grid`), for the
            last member; without it that member is the MP's own history change.
        """
        values = np.asarray(values, np.float32)
        days = np.asarray(days, np.float64)
        starts = np.asarray(starts, int).reshape(-1)
        if len(starts) == 0:
            raise ValueError("no sample to learn the point forecast's weights from")
        if starts.max() + self.window + self.steps > values.shape[1]:
            raise ValueError("the targets of every fitting sample must be observed")
        use = np.ones(values.shape[0], bool) if use is None else np.asarray(use, bool)
        self.history_fit_ = MPHistoryFit(self.window, self.steps, self.history, self.acceleration_ridge).fit(
            values, days, starts, use
        )
        members = self._members(values, days, starts, cell_change, grid_series=grid_series)
        target = values[:, starts[:, None] + self.window + np.arange(self.steps)].transpose(1, 2, 0)
        history_only = np.eye(len(MEMBERS))[1]
        # Two folds in time (early / late fitting samples): how far to trust the learned
        # weights over the MP's own history fit, chosen where each fold's weights are
        # scored on the other fold.
        half = np.arange(len(starts)) < len(starts) // 2
        weights = np.tile(history_only, (self.steps, 1))
        shrink = np.ones(self.steps)
        for k in range(self.steps):
            x = members[:, k][:, use].astype(np.float64)  # (n, n_use, M)
            y = target[:, k][:, use].astype(np.float64)
            ok = np.isfinite(x).all(axis=-1) & np.isfinite(y)
            if ok.sum() < 2 * len(MEMBERS):
                continue  # too little to learn from: the MP's history fit
            weights[k] = _convex_weights(x[ok], y[ok])
            if half.any() and (~half).any():
                errors = {lam: 0.0 for lam in SHRINKS}
                for fold in (half, ~half):
                    a_ok, b_ok = ok & fold[:, None], ok & ~fold[:, None]
                    if a_ok.sum() < 2 * len(MEMBERS) or not b_ok.any():
                        continue
                    w_fold = _convex_weights(x[a_ok], y[a_ok])
                    for lam in SHRINKS:
                        wk = (1 - lam) * w_fold + lam * history_only
                        errors[lam] += float(np.sum((x[b_ok] @ wk - y[b_ok]) ** 2))
                shrink[k] = min(errors, key=lambda lam: (errors[lam], -lam))
                weights[k] = (1 - shrink[k]) * weights[k] + shrink[k] * history_only
        self.shrink_ = shrink
        self.weights_ = weights
        self.n_fit_pairs_ = int(use.sum()) * len(starts)
        return self

    def predict(self, values, days, starts, cell_change, target_days=None, grid_series=None) -> np.ndarray:
        """Point forecasts (n, steps, n_mp) mm of the samples ``starts``.

        ``target_days`` (n, steps) gives the target dates when they lie past the end of
        ``values`` (a forecast of the future)."""
        if not hasattr(self, "weights_"):
            raise RuntimeError("PointForecaster is not fitted; call fit first")
        values = np.asarray(values, np.float32)
        members = self._members(
            values,
            np.asarray(days, np.float64),
            np.asarray(starts, int).reshape(-1),
            cell_change,
            target_days,
            grid_series,
        )
        return np.einsum("nkpm,km->nkp", members, self.weights_).astype(np.float32)

    def details(self) -> dict:
        """Fitted weights per step (JSON-ready)."""
        return {
            "members": list(MEMBERS),
            "weights": np.round(self.weights_, 4).tolist(),
            "shrink_to_history_fit": self.shrink_.tolist(),
            "acceleration_ridge": self.history_fit_.acceleration_ridge_,
            "fit_pairs": self.n_fit_pairs_,
        }


def mp_noise_level(values: np.ndarray, epochs: int = 30) -> np.ndarray:
    """Each MP's noise level (mm): robust standard deviation of its last ``epochs``
    epoch-to-epoch changes, divided by sqrt(2) (white noise appears twice in a change);
    at least 0.1 mm."""
    diff = np.diff(np.asarray(values, np.float64)[:, -(epochs + 1) :], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mad = np.nanmedian(np.abs(diff - np.nanmedian(diff, axis=1, keepdims=True)), axis=1)
    return np.maximum(np.nan_to_num(1.4826 * mad / np.sqrt(2), nan=1.0), 0.1)


def _conformal(scores: np.ndarray, level: float) -> float:
    """The split-conformal quantile of ``scores`` at ``level`` (finite-sample corrected)."""
    scores = np.sort(scores[np.isfinite(scores)])
    if scores.size == 0:
        return float("nan")
    rank = min(scores.size, int(np.ceil((scores.size + 1) * level)))
    return float(scores[rank - 1])


def calibration_starts(n_times: int, window: int, steps: int, n_samples: int = 12) -> np.ndarray:
    """The last ``n_samples`` sample starts whose targets all lie in the cube."""
    last = n_times - window - steps
    if last < 0:
        raise ValueError(f"{n_times} epochs is fewer than window + steps = {window + steps}")
    return np.arange(max(0, last - n_samples + 1), last + 1)


def forecast_points(
    forecaster,
    cube: xr.Dataset,
    points: xr.Dataset,
    forecast: xr.Dataset,
    n_calibration: int = 12,
    progress: bool = False,
    name=None,
    interval: float | None = None,
) -> xr.Dataset:
    """Point forecasts of the epochs of ``forecast`` (the cube's grid forecast) at the MPs.

    Parameters
    ----------
    forecaster
        The grid model that made ``forecast`` (``window``, ``steps``,
        ``predict_windows(cube, starts)``).
    cube : xarray.Dataset
        The cube the forecast continues.
    points : xarray.Dataset
        The MPs (points layout), e.g. those the cube was gridded from.
    forecast : xarray.Dataset
        ``forecaster.forecast(cube)``: (time, y, x) displacement after the cube's end.
    n_calibration : int
        The last samples of the cube whose targets are observed: the weights are learned
        on them (the grid model forecasts them with :meth:`predict_windows`).
    interval : float, optional
        Also give a ``interval`` % interval per MP and date (``forecast_lower``,
        ``forecast_upper``): split-conformal quantiles, per step, of the point
        forecast's absolute errors on the calibration samples divided by each MP's noise
        level (:func:`mp_noise_level`), times that level. The calibration samples are
        those the weights were learned on (a few weights: little optimism).

    Returns
    -------
    xarray.Dataset
        Dims (point, time): ``forecast`` (mm, same reference as the MPs' input),
        ``mean_velocity`` (mm/yr: the input's, else a line through each MP's series),
        coordinates ``pid``, ``x``, ``y`` in the cube's CRS; attrs with the weights.
    """
    from insar_raster.io.cube import CUBE_VARIABLE

    mps = points_on_cube(points, cube, name)
    values = mps["values"]
    days = times_in_days(cube)
    window = int(forecaster.window)
    steps = int(forecast.sizes["time"])
    grid = np.asarray(cube[CUBE_VARIABLE].values, np.float32)
    starts = calibration_starts(cube.sizes["time"], window, steps, n_calibration)
    cal = np.asarray(forecaster.predict_windows(cube, starts), np.float32)[:, :steps]
    change = cell_change_at_points(cal, grid[starts + window - 1], mps["rows"], mps["cols"])
    series = sample_grid(grid, mps["rows"], mps["cols"]).T  # the cube at each MP, (n_mp, time)
    model = PointForecaster(window, steps).fit(values, days, starts, change, grid_series=series)
    origin = np.array([cube.sizes["time"] - window])
    future = np.asarray(forecast[CUBE_VARIABLE].values, np.float32)[None]
    future_change = cell_change_at_points(future, grid[-1:], mps["rows"], mps["cols"])
    target_days = times_in_days(forecast)[None]
    pred = model.predict(values, days, origin, future_change, target_days, series)[0].T  # (n_mp, steps)
    bounds = None
    if interval is not None:
        if not 50 <= float(interval) <= 99:
            raise ValueError(f"interval must be between 50 and 99 percent, got {interval}")
        fitted = model.predict(values, days, starts, change, grid_series=series)  # (n_cal, steps, n_mp)
        observed = values[:, starts[:, None] + window + np.arange(steps)].transpose(1, 2, 0)
        sigma_cal = np.stack([mp_noise_level(values[:, : s + window]) for s in starts])  # (n_cal, n_mp)
        scores = np.abs(observed - fitted) / sigma_cal[:, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.array([_conformal(scores[:, k], float(interval) / 100) for k in range(steps)])
        half = q[None, :] * mp_noise_level(values)[:, None]
        bounds = (pred - half, pred + half)
    velocity = mps["mean_velocity"]
    if velocity is None:
        years = (days - days[0]) / 365.25
        velocity = (
            np.polyfit(years, values.T.astype(np.float64), 1)[0].astype(np.float32)
            if len(years) > 1
            else np.zeros(len(values), np.float32)
        )
    ds = xr.Dataset(
        {
            "forecast": (("point", "time"), pred.astype(np.float32)),
            "mean_velocity": ("point", np.asarray(velocity, np.float32)),
        },
        coords={
            "pid": ("point", mps["pid"]),
            "x": ("point", mps["x"]),
            "y": ("point", mps["y"]),
            "time": forecast["time"].values,
        },
        attrs={
            "source": str(cube.attrs.get("source", "")),
            "method": "point forecast: MP history fit + grid "
            "forecast change, weights learned on the cube's last observed samples",
            "members": ", ".join(MEMBERS),
        },
    )
    ds["forecast"].attrs.update(units="mm", long_name="forecast displacement relative to each MP's first epoch")
    if bounds is not None:
        for var, bound in zip(("forecast_lower", "forecast_upper"), bounds):
            ds[var] = (("point", "time"), bound.astype(np.float32))
            ds[var].attrs.update(units="mm", long_name=f"{var.split('_')[1]} bound of the {interval:g} % interval")
        ds.attrs["interval"] = float(interval)
    ds["mean_velocity"].attrs["units"] = "mm/yr"
    ds.attrs["point_model"] = model.details()
    if cube.rio.crs is not None:
        ds = ds.rio.write_crs(cube.rio.crs)
    return ds
