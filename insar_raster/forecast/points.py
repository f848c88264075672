"""Forecasts at the measurement points (MPs): a grid forecast sampled at the MPs, per-MP
baselines, and the point forecast that combines each MP's own history with the cube's.

Why a point forecast
--------------------
A grid forecast says what the *cell* will do. An MP (a roof, a bridge pier) is not its
cell: it has its own offset from the cell mean (EGMS references every series to its own
first epoch), its own seasonal amplitude (thermal dilation) and its own noise. Sampled
at an MP and scored against the MP's own future, a grid forecast carries all of these
as error; the MP's own persistence and a per-MP history fit do not, but they know
nothing of space (the neighbours' motion, the atmosphere shared with them), and one
MP's 2-4 mm noise makes its own fitted level and rate noisy.

:class:`PointForecaster` combines both, per MP (one ``w``, ``a`` for every forecast step):

    w * (MP's history fit) + (1 - w) * (grid forecast at the MP + MP's deviation)
    + a * (the cube's last residual at the MP)

where the *deviation* is the MP's own departure from the cube at its position (offset,
relative rate, own seasonal amplitude), fitted on the MP's series minus the cube's (the
grid member's scene-wide departure from the MPs' own fits, the median over the MPs, is
removed: the cube speaks for each MP's place, not for the whole scene), and
the *residual* is the cube's departure from its own history fit at the last input
epoch (shared atmosphere or motion that persists for a few epochs). ``w`` in [0, 1]
and ``a`` are least squares over the (sample, step, MP) pairs: learned on epochs the
grid model did not train on, never on the epochs that are scored. The per-MP history
fit is the case ``w = 1, a = 0``; whether the combination beats it on later
epochs is what ``evaluate`` measures (``evaluate --points``). Intervals at the MPs are
each MP's own error scaled by its noise level plus the scene-wide error per date, the
latter also from an older past (:func:`rolling_point_forecast`).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import xarray as xr

from insar_raster.errors import InputError
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import (
    ACCELERATION_RIDGES,
    HISTORY_RIDGE,
    harmonic_design,
    history_eval,
    history_fit,
    times_in_days,
)

log = logging.getLogger("insar_raster")

#: Residuals averaged into the ``recent`` level of :class:`MPHistoryFit` (epochs).
RECENT_EPOCHS = 4
#: The forecasts the point forecast combines with convex weights: the MP's own
#: history fit, and the grid forecast at the MP plus the MP's deviation from the cube.
MEMBERS = ("mp_history_fit", "cell_forecast_plus_mp_deviation")
#: Terms added with a free coefficient: the cube's departure at the MP from its
#: history fit at the last input epoch.
TERMS = ("cube_last_residual",)
#: Bounds of the terms' coefficients (a carried residual neither grows nor flips by more
#: than its own size).
CARRY_BOUNDS = (-1.0, 1.0)
#: Fewer (sample, MP) pairs than this per parameter, and a step keeps the MP's history fit.
MIN_PAIRS_PER_PARAMETER = 10
#: Latest observed samples the point forecast learns its weights and interval quantiles
#: from at each forecast origin (:func:`rolling_point_forecast`, :func:`forecast_points`).
RECENT_SAMPLES = 12
#: Origins back over which the intervals gather scene-wide (common-mode) errors (days):
#: three annual cycles, so that errors the latest samples never showed (a season's
#: swing after a flat phase, a rare scene-wide atmosphere) are in the calibration. The
#: cells' intervals read the history prior's over the same span
#: (:func:`~insar_raster.forecast.intervals.scene_wide_widening`).
COMMON_MODE_DAYS = 3 * 365.25
#: Share of the scene-wide errors' weight given to those older samples; the samples the
#: weights are learned from keep the rest (they follow a change of the error level).
COMMON_MODE_SHARE = 0.25
#: History (days) an older sample needs before its per-MP history fit's errors count:
#: one annual cycle, so that the fit's annual terms are determined.
MIN_HISTORY_DAYS = 365.25
#: Largest share of an MP's epochs that may be empty (NaN) for the points path to keep it
#: (``read_points(max_missing=...)`` for ``forecast --points`` and ``evaluate --points``):
#: the per-MP fits skip empty epochs, persistence is the last valid value, an MP with no
#: valid input epoch in a sample's window gets no forecast (NaN) there, and scores use only
#: the observed held-out values.
MAX_EMPTY_SHARE = 0.5
#: Noise levels at which the intervals' half-width is solved, then interpolated per MP.
SIGMA_NODES = 24


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
        Points of another geometry than the cube's
        (:func:`insar_raster.io.egms.check_points_on_cube`), a cube date missing from the
        points, or no MP on the grid.
    """
    from pyproj import CRS, Transformer

    from insar_raster.io.cube import cube_date_index

    name = name or points.attrs.get("source") or "points"
    from insar_raster.io.egms import check_points_on_cube, points_geometry

    check_points_on_cube(points_geometry(points), cube.attrs, name)  # same quantity, before dates
    index = cube_date_index(cube, points, "points", name, "use the points the cube was gridded from")
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
    """Per-MP persistence: each MP's last valid input value for every step, (n, steps,
    n_mp) mm; NaN for an MP whose ``window`` input epochs of a sample are all empty."""
    values = np.asarray(values, np.float32)
    starts = np.asarray(starts, int).reshape(-1)
    last = values[:, starts + window - 1].T  # (n, n_mp)
    gap = ~np.isfinite(last)
    if gap.any():  # an empty last epoch: the latest valid value within the window
        for i in np.flatnonzero(gap.any(axis=1)):
            block = values[gap[i]][:, starts[i] : starts[i] + window]
            finite = np.isfinite(block)
            latest = window - 1 - np.argmax(finite[:, ::-1], axis=1)
            last[i, gap[i]] = np.where(finite.any(axis=1), block[np.arange(len(block)), latest], np.nan)
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

    Attributes
    ----------
    acceleration_ridge_ : float
        The penalty used: ``acceleration_ridge`` when given, else the one with the lowest
        RMSE (mm) on the samples given to :meth:`fit`.
    """

    def __init__(
        self,
        window: int = TrainConfig.window,
        steps: int = TrainConfig.steps,
        history: int = TrainConfig.history_epochs,
        acceleration_ridge: float | None = None,
    ):
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
            # An MP (or cell) with no valid input epoch in the window is not extrapolated
            # from its older past: no forecast.
            out[i][:, ~np.isfinite(values[:, s : last + 1]).any(axis=1)] = np.nan
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


def _deviation_forecast(deviation, days, starts, window, steps, history, target_days=None) -> np.ndarray:
    """Each MP's departure from the cube at its position, fitted and extrapolated.

    Per MP and sample, ridge least squares of ``deviation`` (MP minus the cube sampled at
    the MP, (n_mp, time) mm, NaN where either is missing) over at most ``history``
    epochs up to the last input epoch, on [1, t, sin, cos of the annual phase]: the
    MP's own offset from its cell, own rate relative to it (a building settling on its
    fill) and own seasonal amplitude (thermal dilation). No acceleration: a curvature of
    one MP's difference series is noise. Returns (n, steps, n_mp) mm, NaN for MPs with
    fewer than 3 valid epochs.
    """
    starts = np.asarray(starts, int).reshape(-1)
    tdays = _target_days(days, starts, window, steps, target_days)
    n_mp = deviation.shape[0]
    out = np.full((len(starts), steps, n_mp), np.nan, np.float32)
    penalty = np.diag([0.0, 1.0, 1.0, 1.0]) * HISTORY_RIDGE
    for i, s in enumerate(starts):
        last = s + window - 1
        first = max(0, last + 1 - max(window, int(history)))
        x = harmonic_design(days[first : last + 1], days[last], acceleration=False)  # (m, 4)
        y = np.asarray(deviation[:, first : last + 1], np.float64).T  # (m, n_mp)
        valid = np.isfinite(y)
        coef = np.full((4, n_mp), np.nan)
        full = valid.all(axis=0)
        if full.any():
            coef[:, full] = np.linalg.solve(x.T @ x + penalty, x.T @ y[:, full])
        partial = ~full & (valid.sum(axis=0) >= 3)
        if partial.any():
            wgt = valid[:, partial].astype(np.float64)
            lhs = np.einsum("tp,ti,tj->pij", wgt, x, x) + penalty[None]
            rhs = np.einsum("ti,tp->pi", x, np.where(valid[:, partial], y[:, partial], 0.0))
            coef[:, partial] = np.linalg.solve(lhs, rhs[..., None])[..., 0].T
        out[i] = harmonic_design(tdays[i], days[last], acceleration=False) @ coef
    return out


def _combination_weights(members: np.ndarray, terms: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares ``y ~ members @ w + terms @ a`` with ``w >= 0``, ``sum(w) = 1`` and
    ``a`` in :data:`CARRY_BOUNDS`; returns ``[w..., a...]``.

    Solved on the normal equations (Cholesky factor, size of the parameters), the sum
    constraint as a heavily weighted extra row of a bounded least squares problem.
    """
    from scipy.optimize import lsq_linear

    x = np.concatenate([members, terms], axis=1)
    m, p = members.shape[1], x.shape[1]
    gram, rhs = x.T @ x, x.T @ y
    chol = np.linalg.cholesky(gram + 1e-9 * np.trace(gram) * np.eye(p))
    scale = np.sqrt(np.trace(gram) / p) * 1e3
    a = np.vstack([chol.T, scale * np.r_[np.ones(m), np.zeros(p - m)][None]])
    b = np.r_[np.linalg.solve(chol, rhs), scale]
    lower = np.r_[np.zeros(m), np.full(p - m, CARRY_BOUNDS[0])]
    upper = np.r_[np.full(m, np.inf), np.full(p - m, CARRY_BOUNDS[1])]
    w = lsq_linear(a, b, bounds=(lower, upper)).x
    w[:m] = np.maximum(w[:m], 0.0)
    w[:m] = w[:m] / w[:m].sum() if w[:m].sum() > 0 else np.eye(m)[0]
    return w


def _targets(values, starts, window, steps) -> np.ndarray:
    """The observed targets (n, steps, n_mp) of the samples ``starts``."""
    return values[:, np.asarray(starts)[:, None] + window + np.arange(steps)].transpose(1, 2, 0)


def _learn_weights(members, terms, target, use) -> tuple[np.ndarray, np.ndarray]:
    """The members' convex weights (members,) and the terms' coefficients (terms,), one
    set for every forecast step, by :func:`_combination_weights` over the (sample, step,
    MP) pairs of the MPs ``use``; too few finite pairs keep the MP's own history fit.

    ``members`` (..., n_mp, members), ``terms`` (..., n_mp, terms) and ``target`` (...,
    n_mp) are the pairs of any samples and steps (their leading dimensions flattened).
    One set for all steps, not one per step: the weights at neighbouring steps differ
    by far less than what a dozen dates per step can resolve (learned per step they
    jumped between members from one step to the next wherever the members are about as
    good), and pooling the steps adds the dates of the other steps' targets.
    """
    n_members, n_terms = members.shape[-1], terms.shape[-1]
    weights, carry = np.eye(n_members)[0], np.zeros(n_terms)
    x = members[..., use, :].reshape(-1, n_members).astype(np.float64)
    z = terms[..., use, :].reshape(x.shape[0], n_terms).astype(np.float64)
    y = target[..., use].reshape(-1).astype(np.float64)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(z).all(axis=1) & np.isfinite(y)
    if ok.sum() < MIN_PAIRS_PER_PARAMETER * (n_members + n_terms):
        return weights, carry  # too little to learn from: the MP's own history fit
    w = _combination_weights(x[ok], z[ok], y[ok])
    return w[:n_members], w[n_members:]


def _predictive_scale(weight, level: float) -> float:
    """Factor on the scene-wide errors of a calibration for a *new* date's error.

    The scene-wide error takes one value per date, and the calibration holds a few dozen
    dates at most (``weight`` per date; effective number ``n = 1 / sum(w^2)`` of the
    normalised weights). The quantile of a new draw from a distribution known only from
    ``n`` draws is wider than their empirical quantile: for a normal distribution the
    predictive is Student's t with ``n - 1`` degrees of freedom scaled by
    ``sqrt(1 + 1/n)``. The factor is that predictive's ``level`` quantile over the
    normal one (1.06 at ``n = 21``, 80 %; 1 as ``n`` grows).
    """
    from scipy.stats import norm, t

    weight = np.asarray(weight, np.float64)
    weight = weight[np.isfinite(weight) & (weight > 0)]
    if not len(weight):
        return 1.0
    n = 1.0 / np.sum((weight / weight.sum()) ** 2)
    if n <= 2:
        n = 2.0
    q = 0.5 + float(level) / 200.0
    return float(np.sqrt(1 + 1 / n) * t.ppf(q, n - 1) / norm.ppf(q))


def _common_mode(errors, use=None) -> np.ndarray:
    """Scene-wide error per sample: the median over the MPs ``use`` of ``errors``
    (n, n_mp) mm, NaN ignored; (n,) mm."""
    errors = np.asarray(errors, np.float64)
    if use is not None:
        errors = errors[:, np.asarray(use, bool)]
    with warnings.catch_warnings():  # a sample with no finite error: NaN, dropped later
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(errors, axis=1)


def _mixture_half_width(common, own, sigma, level: float, weight=None) -> np.ndarray:
    """Half-widths (n_mp,) mm of intervals at ``level`` percent for an error made of a
    scene-wide part and an MP's own part.

    The error of an MP with noise level ``sigma`` is modelled as ``c + sigma * z``, ``c``
    drawn from the scene-wide errors ``common`` (one per calibration date, mm) and ``z``
    from the MPs' own normalised errors ``own`` (their departures from their date's
    scene-wide error divided by their noise level), independently; the half-width is the
    ``level`` quantile of ``|c + sigma * z|`` over all pairs, each date weighted by
    ``weight`` (default equal). Solved by bisection at :data:`SIGMA_NODES` noise levels
    spanning ``sigma``, interpolated between them (the quantile is smooth and increasing
    in ``sigma``).
    """
    common = np.asarray(common, np.float64)
    weight = np.ones_like(common) if weight is None else np.asarray(weight, np.float64)
    weight = weight[np.isfinite(common)]
    common = common[np.isfinite(common)]
    z = np.sort(np.asarray(own, np.float64)[np.isfinite(own)])
    sigma = np.asarray(sigma, np.float64)
    if not len(z):
        return np.full(sigma.shape, np.nan)
    if not len(common):
        common, weight = np.zeros(1), np.ones(1)
    weight = weight / weight.sum()
    p = level / 100.0
    lo, hi = float(sigma.min()), float(sigma.max())
    nodes = np.geomspace(lo, hi, SIGMA_NODES) if hi > lo else np.array([lo])

    def share_inside(q):  # (nodes,) share of pairs with |c + s z| <= q
        s = nodes[:, None]
        upper = np.searchsorted(z, (q[:, None] - common[None]) / s, side="right")
        lower = np.searchsorted(z, (-q[:, None] - common[None]) / s, side="left")
        return (upper - lower) @ weight / len(z)

    a = np.zeros_like(nodes)
    b = np.abs(common).max() + nodes * np.abs(z).max() + 1e-6
    for _ in range(40):
        mid = 0.5 * (a + b)
        inside = share_inside(mid) >= p
        a, b = np.where(inside, a, mid), np.where(inside, mid, b)
    if len(nodes) == 1:
        return np.full(sigma.shape, b[0])
    return np.interp(np.log(sigma), np.log(nodes), b)


def _combine(members, terms, weights, carry) -> np.ndarray:
    return (np.einsum("nkpm,km->nkp", members, weights) + np.einsum("nkpt,kt->nkp", terms, carry)).astype(np.float32)


class PointForecaster:
    """Each MP's own history plus the cube's forecast, combined with weights learned on
    validation samples.

    Per MP, sample and forecast step ``k`` the point forecast is

        w_k * own + (1 - w_k) * (cell + deviation) + a_k * residual

    - ``own``: the MP's history fit (:class:`MPHistoryFit`), the per-MP baseline;
    - ``cell + deviation``: the grid forecast sampled at the MP (:func:`sample_grid`)
      plus the MP's own departure from the cube (offset, relative rate, own seasonal
      amplitude: :func:`_deviation_forecast`, fitted on the MP's series minus the cube
      sampled at the MP). The cube averages many MPs, so its motion (and whatever the
      grid model predicts from space: a front, a switch) is far less noisy than one
      MP's; the deviation keeps what is the MP's own. Its departure from the MPs' own
      history fits common to the scene (the median over the MPs, per sample and step)
      is removed: learned on a dozen dates, that scene-level part cannot be validated
      (a grid model's prior fitted to one season extrapolates the whole scene wrongly
      in the next), while the MPs' own fits already average to the scene's motion;
    - ``residual``: the cube's departure at the MP from its own history fit at the
      last input epoch, carried forward with weight ``a_k`` (atmosphere and recent
      motion shared by the neighbours persist for a few epochs when they are
      correlated in time, AR(1)-like; ``a_k`` near 0 where they are not).

    ``w_k`` in [0, 1] and ``a_k`` in :data:`CARRY_BOUNDS` are least squares over the
    (sample, step, MP) pairs of the fitting samples, one set for every step
    (:func:`_learn_weights`): three numbers from tens of thousands of pairs, learned on
    epochs the grid model did not train on and never on the epochs that are scored
    (``weights_`` and ``carry_`` keep one row per step, all equal). The per-MP history
    fit is the special case ``w_k = 1, a_k = 0``. Where the cube has no value at an MP, the MP's own history
    fit stands in for ``cell + deviation`` and the residual is 0.

    verde style: ``__init__`` stores the parameters, :meth:`fit` learns ``weights_``
    (steps, members), ``carry_`` (steps, terms) and ``history_fit_``; :meth:`predict`
    forecasts. Intervals are made where the weights are learned at each forecast origin
    (:func:`rolling_point_forecast`, which :func:`forecast_points` and ``evaluate``
    use), not by this class.

    Parameters
    ----------
    window, steps : int
        Input epochs and horizon of the samples (epochs), as in the grid model's split.
    history : int
        Most past epochs of each MP's history fit and deviation fit.
    acceleration_ridge : float, optional
        History fit's acceleration penalty; None chooses it in :meth:`fit`.

    Attributes
    ----------
    history_fit_ : MPHistoryFit
        The per-MP history fit (the ``own`` member), fitted on the same samples.
    weights_ : ndarray (steps, 2)
        Weights of the members ``own`` and ``cell + deviation`` per step (each row sums
        to 1; all rows equal: one set for every step).
    carry_ : ndarray (steps, terms)
        Weight ``a_k`` of the carried cube residual per step (all rows equal).
    n_fit_pairs_ : int
        (sample, MP) pairs the weights were learned from.
    """

    def __init__(
        self,
        window: int = TrainConfig.window,
        steps: int = TrainConfig.steps,
        history: int = TrainConfig.history_epochs,
        acceleration_ridge: float | None = None,
    ):
        self.window = window
        self.steps = steps
        self.history = history
        self.acceleration_ridge = acceleration_ridge

    def _design(self, values, days, starts, cell_forecast, grid_series, target_days=None):
        """Members (n, steps, n_mp, members) and terms (n, steps, n_mp, terms), mm."""
        hf = self.history_fit_
        starts = np.asarray(starts, int).reshape(-1)
        own = hf._predict(values, days, starts, hf.acceleration_ridge_, target_days)
        n, steps, n_mp = own.shape
        cell = np.asarray(cell_forecast, np.float32)
        if cell.shape != (n, steps, n_mp):
            raise ValueError(f"cell_forecast has shape {cell.shape}, expected {(n, steps, n_mp)}")
        series = np.asarray(grid_series, np.float32)
        if series.shape != values.shape:
            raise ValueError(f"grid_series has shape {series.shape}, expected {values.shape}")
        deviation = _deviation_forecast(values - series, days, starts, self.window, steps, self.history, target_days)
        joint = cell + deviation
        on_cube = np.isfinite(joint)
        # What the grid member adds is what it says about each MP's place (a front, the
        # neighbours' motion, less noise than one MP's fit), not about the whole scene:
        # its departure from the MPs' own fits common to the scene (the median over the
        # MPs, per sample and step) is removed. The weights are learned on a dozen dates,
        # i.e. a dozen values of that scene-wide part; a grid model whose scene-level
        # extrapolation held there and then fails (a prior fitted to one season) would
        # otherwise carry its error to every MP.
        with warnings.catch_warnings():  # a sample with no MP: nothing to remove
            warnings.simplefilter("ignore", RuntimeWarning)
            scene = np.nanmedian(joint - own, axis=2, keepdims=True)
        # Where the cube has no value at an MP, its own history fit stands in.
        joint = np.where(on_cube, joint - np.nan_to_num(scene), own)
        members = np.stack([own, joint], axis=-1)
        return members, self._terms(series, days, starts, steps, target_days)

    def _terms(self, grid_series, days, starts, steps, target_days=None) -> np.ndarray:
        """Terms (n, steps, n_mp, terms) mm: the cube's departure at each MP from its
        history fit at each sample's last input epoch (0 where the cube has no value)."""
        hf = self.history_fit_
        series = np.asarray(grid_series, np.float32)
        starts = np.asarray(starts, int).reshape(-1)
        _, level, _, _ = hf._predict(series, days, starts, hf.acceleration_ridge_, target_days, with_level=True)
        residual = series[:, starts + self.window - 1].T - level  # (n, n_mp)
        residual = np.where(np.isfinite(residual), residual, 0.0).astype(np.float32)
        return np.broadcast_to(residual[:, None, :, None], (len(starts), steps, series.shape[0], len(TERMS)))

    def fit(self, values, days, starts, cell_forecast, grid_series, use=None) -> "PointForecaster":
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
        cell_forecast : ndarray (n, steps, n_mp)
            The grid model's forecasts of these samples sampled at the MPs (mm).
        grid_series : ndarray (n_mp, n_times)
            The cube sampled at each MP (:func:`sample_grid`), mm.
        use : ndarray of bool (n_mp,), optional
            MPs that may be training targets (a spatial hold-out leaves the others out).
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
        members, terms = self._design(values, days, starts, cell_forecast, grid_series)
        target = _targets(values, starts, self.window, self.steps)
        w, a = _learn_weights(members, terms, target, use)
        self.weights_, self.carry_ = np.tile(w, (self.steps, 1)), np.tile(a, (self.steps, 1))
        self.n_fit_pairs_ = int(use.sum()) * len(starts)
        return self

    def predict(self, values, days, starts, cell_forecast, grid_series, target_days=None) -> np.ndarray:
        """Point forecasts (n, steps, n_mp) mm of the samples ``starts``.

        ``target_days`` (n, steps) gives the target dates when they lie past the end of
        ``values`` (a forecast of the future)."""
        if not hasattr(self, "weights_"):
            raise RuntimeError("PointForecaster is not fitted; call fit first")
        members, terms = self._design(
            np.asarray(values, np.float32),
            np.asarray(days, np.float64),
            starts,
            cell_forecast,
            grid_series,
            target_days,
        )
        return _combine(members, terms, self.weights_, self.carry_)

    def noise_at(self, values, starts) -> np.ndarray:
        """Each MP's noise level (mm) from its past up to each sample's last input epoch, (n, n_mp)."""
        values = np.asarray(values, np.float32)
        return np.stack([mp_noise_level(values[:, : s + self.window]) for s in np.asarray(starts, int).reshape(-1)])

    def details(self) -> dict:
        """Fitted weights per step (JSON-ready)."""
        return {
            "members": list(MEMBERS),
            "weights": np.round(self.weights_, 4).tolist(),
            "terms": list(TERMS),
            "carry": np.round(self.carry_, 4).tolist(),
            "acceleration_ridge": self.history_fit_.acceleration_ridge_,
            "fit_pairs": self.n_fit_pairs_,
        }


def origin_fit_starts(pool, start: int, step: int, n_recent: int = RECENT_SAMPLES) -> np.ndarray:
    """The ``n_recent`` latest samples of ``pool`` whose target at forecast step ``step``
    (1-based) is observed at the origin of sample ``start``: that target, epoch
    ``p + window + step - 1``, lies at or before the origin's last input epoch
    ``start + window - 1``, i.e. ``p <= start - step``."""
    pool = np.sort(np.asarray(pool, int).reshape(-1))
    return pool[pool <= int(start) - int(step)][-int(n_recent) :]


def rolling_point_forecast(
    values,
    days,
    starts,
    cell_forecast,
    pool,
    pool_cell_forecast,
    grid_series,
    window: int = TrainConfig.window,
    steps: int = TrainConfig.steps,
    history: int = TrainConfig.history_epochs,
    n_recent: int = RECENT_SAMPLES,
    acceleration_ridge: float | None = None,
    use=None,
    interval: float | None = None,
    target_days=None,
    common_mode_days: float = COMMON_MODE_DAYS,
    common_mode_share: float = COMMON_MODE_SHARE,
) -> dict:
    """Point forecasts of the samples ``starts``, each from weights (and interval
    quantiles) learned at its own forecast origin on the latest samples observed by then.

    What :func:`forecast_points` does at the end of the cube (weights learned on its
    last observed samples), done at every origin of ``starts``: for a sample whose last
    input epoch is ``e``, one set of weights for every step is learned on the pairs of
    all steps, step ``k``'s pairs from the ``n_recent`` latest samples of ``pool`` whose
    ``k``-th target lies at or before ``e`` (:func:`origin_fit_starts`: step 1 learns
    from samples up to the one just before, step ``k`` lags ``k`` epochs). Nothing after ``e`` is used for the forecast
    from ``e``. Where the grid model's skill changes (it validated well, then fails; a
    process starts), the weights follow within a few epochs and the intervals widen
    with the recent errors, instead of keeping what held on the validation epochs.

    Intervals split each error into a scene-wide part (the median error over the MPs
    of one date) and the MP's own part (its departure from that, divided by its noise
    level, :func:`mp_noise_level`). The own part comes from the samples the weights are
    learned on; the scene-wide part from those (weight ``1 - common_mode_share``) and
    from the older samples whose origins lie up to ``common_mode_days`` before ``e``
    (weight ``common_mode_share``), each with at least :data:`MIN_HISTORY_DAYS` of
    history: there, the errors of the MP's own history fit plus the carried cube
    residual, which need no grid forecast, so samples the grid model trained on count
    without its fit to them. The scene-wide errors are one per date, a few dozen in
    all: they are widened to the predictive spread of a new date's error
    (:func:`_predictive_scale`, Student's t on their effective number; without it the
    empirical quantile of a few dates covers a new date less often than stated). The
    half-width of an MP is the level quantile of the scene-wide plus its own error
    (:func:`_mixture_half_width`). A scene-wide error the
    latest samples never showed (a season's swing after a flat phase, a rare
    atmosphere) widens the interval of every MP, noisy or quiet.

    Parameters
    ----------
    values : ndarray (n_mp, n_times)
        MP displacement (mm) on the cube's dates.
    days : ndarray (n_times,)
        Dates (float days).
    starts : array of int
        Samples to forecast (e.g. the test samples).
    cell_forecast : ndarray (n, steps, n_mp)
        The grid model's forecasts of ``starts`` sampled at the MPs (mm).
    pool : array of int
        Samples the weights may be learned on: samples whose targets the grid model
        never trained on (validation samples and later ones).
    pool_cell_forecast : ndarray (len(pool), steps, n_mp)
        The grid model's forecasts of ``pool`` sampled at the MPs (mm).
    grid_series : ndarray (n_mp, n_times)
        The cube sampled at each MP (:func:`sample_grid`), mm.
    window, steps, history : int
        As in :class:`PointForecaster`.
    n_recent : int
        Latest observed samples learned from per origin and step.
    acceleration_ridge : float, optional
        The MP history fit's acceleration penalty; None chooses it on the samples the
        first origin's last step learns from.
    use : ndarray of bool (n_mp,), optional
        MPs that may be training targets.
    interval : float, optional
        Level (percent) of the intervals.
    target_days : ndarray (n, steps), optional
        Target dates of ``starts`` when they lie past the end of ``values`` (a forecast
        of the future).
    common_mode_days : float
        Days of origins before each origin whose scene-wide errors the intervals use.
    common_mode_share : float
        Weight of those older scene-wide errors (0: only the samples learned from).

    Returns
    -------
    dict
        ``forecast`` (n, steps, n_mp) mm; ``lower``, ``upper`` (same shape, or None
        without ``interval``); ``weights`` (n, steps, members) and ``carry`` (n, steps,
        terms) per origin; ``fit_starts`` (per origin, per step, the samples learned
        from); ``model``: the :class:`PointForecaster` fitted at the first origin on the
        samples its last step learns from (all of whose targets are observed there).

    Raises
    ------
    ValueError
        A sample of ``starts`` with no sample of ``pool`` observed at its origin.
    """
    values = np.asarray(values, np.float32)
    days = np.asarray(days, np.float64)
    starts = np.asarray(starts, int).reshape(-1)
    pool = np.asarray(pool, int).reshape(-1)
    order = np.argsort(pool)
    pool, pool_cell = pool[order], np.asarray(pool_cell_forecast, np.float32)[order]
    use = np.ones(values.shape[0], bool) if use is None else np.asarray(use, bool)
    fits = [[origin_fit_starts(pool, s, k + 1, n_recent) for k in range(steps)] for s in starts]
    empty = [int(s) for s, f in zip(starts, fits) if not len(f[-1])]
    if empty:
        raise ValueError(f"no fitting sample is observed at the origin of samples {empty}")
    first = PointForecaster(window, steps, history, acceleration_ridge)
    first.fit(values, days, fits[0][-1], pool_cell[np.searchsorted(pool, fits[0][-1])], grid_series, use)
    needed = np.unique(np.concatenate([f for per_step in fits for f in per_step]))
    members, terms = first._design(values, days, needed, pool_cell[np.searchsorted(pool, needed)], grid_series)
    # A target past the end of the record is never learned from (p <= start - step).
    epochs = needed[:, None] + window + np.arange(steps)
    target = values[:, np.minimum(epochs, values.shape[1] - 1)].transpose(1, 2, 0)
    sigma_fit = first.noise_at(values, needed)
    out_members, out_terms = first._design(values, days, starts, cell_forecast, grid_series, target_days)
    n, n_mp = len(starts), values.shape[0]
    forecast = np.empty((n, steps, n_mp), np.float32)
    lower = upper = None
    if interval is not None:
        if not 50 <= float(interval) <= 99:
            raise ValueError(f"interval must be between 50 and 99 percent, got {interval}")
        sigma_out = first.noise_at(values, starts)
        lower, upper = np.empty_like(forecast), np.empty_like(forecast)
        # Scene-wide errors of the longer past (common_mode_days of origins, each with at
        # least MIN_HISTORY_DAYS of history): those of the MP's own history fit plus the
        # carried cube residual, which need no grid forecast, so they exist for samples
        # the grid model trained on too without using its fit to them.
        first_long = int(np.searchsorted(days, days[starts.min() + window - 1] - common_mode_days)) - window + 1
        first_long = max(first_long, int(np.searchsorted(days, days[0] + MIN_HISTORY_DAYS)) - window + 1, 0)
        long_starts = np.arange(first_long, max(first_long, starts.max()))
        hf = first.history_fit_
        long_own = hf._predict(values, days, long_starts, hf.acceleration_ridge_)
        long_terms = first._terms(grid_series, days, long_starts, steps)
        long_epochs = long_starts[:, None] + window + np.arange(steps)
        long_target = values[:, np.minimum(long_epochs, values.shape[1] - 1)].transpose(1, 2, 0)
        long_origin_days = days[long_starts + window - 1]
    weights = np.empty((n, steps, len(MEMBERS)))
    carry = np.empty((n, steps, len(TERMS)))
    for i, per_step in enumerate(fits):
        # One set of weights per origin, from the pairs of every step (each step's own
        # samples: its target observed at the origin).
        step_rows = [np.searchsorted(needed, fit) for fit in per_step]
        w, a = _learn_weights(
            np.concatenate([members[rows, k] for k, rows in enumerate(step_rows)]),
            np.concatenate([terms[rows, k] for k, rows in enumerate(step_rows)]),
            np.concatenate([target[rows, k] for k, rows in enumerate(step_rows)]),
            use,
        )
        w, a = w[None], a[None]
        for k, fit in enumerate(per_step):
            rows = step_rows[k]
            one = slice(k, k + 1)
            weights[i, k], carry[i, k] = w[0], a[0]
            forecast[i, k] = _combine(out_members[i : i + 1, one], out_terms[i : i + 1, one], w, a)[0, 0]
            if interval is not None:
                # The samples learned from: the point forecast's own errors, split into
                # the scene's error per date and each MP's departure from it (per noise level).
                errors = (target[rows, one] - _combine(members[rows, one], terms[rows, one], w, a))[:, 0]
                recent = _common_mode(errors, use)
                own_z = ((errors - recent[:, None]) / sigma_fit[rows])[:, use]
                # Older samples (k-th target observed at the origin), scene-wide errors only.
                since = days[starts[i] + window - 1] - common_mode_days
                older = (long_starts <= starts[i] - (k + 1)) & (long_origin_days >= since) & ~np.isin(long_starts, fit)
                proxy = long_target[older, k] - long_own[older, k] - long_terms[older, k] @ a[0]
                older_c = _common_mode(proxy, use)
                share = float(common_mode_share) if len(older_c) else 0.0
                weight = np.r_[
                    np.full(len(recent), (1 - share) / len(recent)), np.full(len(older_c), share / max(1, len(older_c)))
                ]
                common = np.r_[recent, older_c]
                # A new date's scene-wide error: the predictive spread, not the empirical one.
                common = common * _predictive_scale(weight[np.isfinite(common)], float(interval))
                half = _mixture_half_width(common, own_z, sigma_out[i], float(interval), weight)
                lower[i, k], upper[i, k] = forecast[i, k] - half, forecast[i, k] + half
    return {
        "forecast": forecast,
        "lower": lower,
        "upper": upper,
        "weights": weights,
        "carry": carry,
        "fit_starts": [[f.tolist() for f in per_step] for per_step in fits],
        "model": first,
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


def _line_rates(years, values) -> np.ndarray:
    """Slope (mm/yr) of a least-squares line through each MP's valid epochs, (n_mp,)
    float32; NaN with fewer than 2 valid epochs, 0 for a single date."""
    years = np.asarray(years, np.float64)
    y = np.asarray(values, np.float64)
    if len(years) < 2:
        return np.zeros(len(y), np.float32)
    valid = np.isfinite(y)
    n = valid.sum(axis=1)
    t = np.where(valid, years[None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm = t.sum(axis=1) / n
        ym = np.where(valid, y, 0.0).sum(axis=1) / n
        dt = np.where(valid, years[None] - tm[:, None], 0.0)
        slope = (dt * np.where(valid, y - ym[:, None], 0.0)).sum(axis=1) / (dt**2).sum(axis=1)
    return np.where(n >= 2, slope, np.nan).astype(np.float32)


def forecast_points(
    forecaster,
    cube: xr.Dataset,
    points: xr.Dataset,
    forecast: xr.Dataset,
    n_calibration: int = RECENT_SAMPLES,
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
        Per forecast step ``k``, the weights are learned on the last ``n_calibration``
        samples of the cube whose ``k``-th target is observed (the grid model forecasts
        them with :meth:`predict_windows`): :func:`rolling_point_forecast` at one
        origin, the cube's end, the procedure ``evaluate`` scores at every test origin.
    interval : float, optional
        Also give a ``interval`` % interval per MP and date (``forecast_lower``,
        ``forecast_upper``): per step, the point forecast's errors on those samples
        split into a scene-wide part per date and each MP's own part per noise level,
        the scene-wide part also from up to three years of older dates
        (:func:`rolling_point_forecast`); the level quantile of their sum, per MP.

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
    origin = cube.sizes["time"] - window
    # Step k learns from the n_calibration latest samples whose k-th target is observed.
    starts = np.arange(max(0, origin - steps - int(n_calibration) + 1), origin)
    if not len(starts) or starts[0] > origin - steps:
        raise ValueError(f"{cube.sizes['time']} epochs is fewer than window + steps = {window + steps}")
    rows, cols = mps["rows"], mps["cols"]
    cal = sample_grid(np.asarray(forecaster.predict_windows(cube, starts), np.float32)[:, :steps], rows, cols)
    series = sample_grid(grid, rows, cols).T  # the cube at each MP, (n_mp, time)
    if interval is not None and not 50 <= float(interval) <= 99:
        raise ValueError(f"interval must be between 50 and 99 percent, got {interval}")
    future = sample_grid(np.asarray(forecast[CUBE_VARIABLE].values, np.float32)[None], rows, cols)
    rolled = rolling_point_forecast(
        values,
        days,
        [origin],
        future,
        starts,
        cal,
        series,
        window,
        steps,
        n_recent=int(n_calibration),
        interval=interval,
        target_days=times_in_days(forecast)[None],
    )
    model, pred = rolled["model"], rolled["forecast"]  # (1, steps, n_mp)
    bounds = None if interval is None else (rolled["lower"][0].T, rolled["upper"][0].T)
    pred = pred[0].T  # (n_mp, steps)
    velocity = mps["mean_velocity"]
    if velocity is None:
        years = (days - days[0]) / 365.25
        velocity = _line_rates(years, values)
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
            "method": "point forecast: MP history fit combined with the grid forecast at the MP plus the MP's "
            "deviation from the cube, weights learned on the cube's last observed samples",
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
