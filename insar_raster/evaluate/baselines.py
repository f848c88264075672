"""Baseline forecasters, fitted and scored on the same windows as the deep models.

Every baseline follows the estimator protocol of :mod:`insar_raster.forecast.estimator`,
like :class:`insar_raster.forecast.forecaster.Forecaster`: ``__init__`` stores its
parameters, ``fit(cube, split)`` learns what it needs from the *training* samples of a
:class:`~insar_raster.forecast.windows.ChronoSplit` (hyper-parameters from its
validation samples), sets attributes ending in ``_`` and returns ``self``;
``predict_windows(cube, starts)`` returns ``(n, steps, H, W)`` float32 mm, NaN where a
forecast is not possible.

Information available to each baseline
--------------------------------------
All baselines see only the ``window`` input epochs of a sample when forecasting it,
exactly like the deep models: the per-pixel trend and trend + seasonal fits are
least-squares fits to those ``window`` epochs only (not to the whole history before
the forecast date). This keeps the comparison about *how* each model uses the same
information. With short windows an annual sinusoid is barely constrained, so the
seasonal terms are ridge-penalised, with the penalty chosen on the validation samples.

The default deep models (``convlstm``, ``cnn``) additionally read each pixel's *past*
before the window (up to ``history_epochs`` epochs, through a per-pixel harmonic fit
given to the network as a prior). ``history_fit`` is that prior on its own: the same
function (:func:`insar_raster.forecast.data.history_fit`, trend + acceleration + annual
cycle over all past epochs up to the last input epoch), its acceleration penalty chosen
on the validation samples from the same candidates, extrapolated. The gap between it
and the deep models is what their learned parts add beyond the per-pixel fit.

Multi-step forecasting
----------------------
LASSO and LightGBM are *direct* multi-step models: one regressor per forecast step
``k`` maps the pixel's lag features to its value at step ``k`` (no recursion, so errors
do not feed back). Their training rows are a random subsample of (training sample,
valid pixel) pairs, bounded by ``max_rows`` so memory and time do not grow with the
grid.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import xarray as xr

from insar_raster.evaluate.config import EvaluateConfig
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import (
    ACCELERATION_RIDGES,
    acquisition_step_days,
    harmonic_design,
    history_eval,
    history_fit,
    target_days,
    times_in_days,
)
from insar_raster.io.cube import CUBE_VARIABLE
from insar_raster.units import DAYS_PER_YEAR

log = logging.getLogger("insar_raster")


def cube_values(cube: xr.Dataset) -> np.ndarray:
    """Displacement (time, y, x) as float32 mm, NaN masked, in memory."""
    return np.asarray(cube[CUBE_VARIABLE].values, dtype=np.float32)


class WindowBaseline:
    """Common plumbing: window/steps bookkeeping and argument checks.

    Every baseline follows the estimator protocol (:mod:`insar_raster.forecast.estimator`):
    ``__init__`` stores its parameters, :meth:`fit` learns from a ``ChronoSplit`` and
    returns ``self``, attributes it learns end in ``_``.

    Parameters
    ----------
    window : int
        Input epochs per sample, L.
    steps : int
        Epochs forecast at once, H.
    """

    name = "baseline"

    def __init__(self, window: int, steps: int):
        self.window = window
        self.steps = steps

    def __repr__(self) -> str:
        return f"{type(self).__name__}(window={self.window}, steps={self.steps})"

    def fit(self, cube: xr.Dataset, split) -> "WindowBaseline":
        """Nothing to learn (overridden by learned baselines)."""
        self._check_split(split)
        return self

    def details(self) -> dict:
        """What a report shows about the fitted baseline (its chosen hyper-parameters)."""
        return {}

    def intrinsic_importance(self) -> dict | None:
        """The baseline's own importance of its lags (None: it has none)."""
        return None

    def _check_split(self, split) -> None:
        if split.window != self.window or split.steps != self.steps:
            raise ValueError(
                f"split is for window={split.window}, steps={split.steps}; "
                f"{self} needs window={self.window}, steps={self.steps}"
            )

    def _starts(self, cube: xr.Dataset, starts) -> np.ndarray:
        starts = np.asarray(starts, dtype=int).reshape(-1)
        n_times = cube.sizes["time"]
        if len(starts) and (starts.min() < 0 or starts.max() + self.window > n_times):
            raise ValueError(f"window starts must lie in [0, {n_times - self.window}]")
        return starts

    def predict_windows(self, cube: xr.Dataset, starts) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class Persistence(WindowBaseline):
    """Every future epoch equals the last observed (input) epoch."""

    name = "persistence"

    def predict_windows(self, cube, starts):
        starts = self._starts(cube, starts)
        values = cube_values(cube)
        last = values[starts + self.window - 1]
        return np.repeat(last[:, None], self.steps, axis=1)


def _choose_on_validation(model: WindowBaseline, cube: xr.Dataset, split, attribute: str, candidates) -> None:
    """Set the fitted ``model.<attribute>`` to the candidate with the lowest validation RMSE
    (training samples when there is no validation part; ties go to the smaller value)."""
    from insar_raster.evaluate.metrics import rmse

    part = "val" if len(split.val) else "train"
    observed = cube_values(cube)[split.target_indices(part)]
    errors = {}
    for value in candidates:
        setattr(model, attribute, value)
        errors[value] = rmse(model.predict_windows(cube, getattr(split, part)), observed)
    setattr(model, attribute, min(errors, key=lambda v: (np.nan_to_num(errors[v], nan=np.inf), v)))
    log.debug("%s: %s %s (validation RMSE %s)", model.name, attribute, getattr(model, attribute), errors)


class PixelTrend(WindowBaseline):
    """Per-pixel least-squares line (or line + annual sinusoid) through the window's epochs.

    Parameters
    ----------
    window, steps : int
    seasonal : bool
        Add an annual sine/cosine pair to the linear trend.
    seasonal_ridge : float or None
        Ridge penalty on the seasonal terms, in units of "equivalent epochs": the
        penalty is ``seasonal_ridge * n_valid * |coef|²``. ``None`` chooses it from
        :attr:`RIDGE_GRID` by validation RMSE in :meth:`fit`.

    Attributes
    ----------
    seasonal_ridge_ : float
        The penalty used (0 without seasonal terms).
    """

    RIDGE_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)

    def __init__(self, window: int, steps: int, seasonal: bool = False, seasonal_ridge: float | None = None):
        super().__init__(window, steps)
        self.seasonal = seasonal
        self.seasonal_ridge = seasonal_ridge

    @property
    def name(self) -> str:
        return "trend_seasonal" if self.seasonal else "trend"

    def fit(self, cube, split):
        """Choose ``seasonal_ridge_`` (the given penalty, else by validation RMSE; 0 without seasonal terms)."""
        self._check_split(split)
        if self.seasonal_ridge is not None:
            self.seasonal_ridge_ = self.seasonal_ridge
        elif self.seasonal:
            _choose_on_validation(self, cube, split, "seasonal_ridge_", self.RIDGE_GRID)
        else:
            self.seasonal_ridge_ = 0.0
        return self

    def details(self) -> dict:
        return {"seasonal_ridge": self.seasonal_ridge_}

    def predict_windows(self, cube, starts):
        starts = self._starts(cube, starts)
        values = cube_values(cube)
        days = times_in_days(cube)
        n_times, height, width = values.shape
        targets = target_days(days, starts, self.window, self.steps, acquisition_step_days(cube))
        out = np.full((len(starts), self.steps, height, width), np.nan, dtype=np.float32)
        # Nothing to learn without seasonal terms: an unfitted trend predicts too.
        ridge = float(vars(self).get("seasonal_ridge_", self.seasonal_ridge) or 0.0)
        for i, s in enumerate(starts):
            last = s + self.window - 1
            epochs = np.arange(s, last + 1)
            reference = days[last : last + 1]
            x_in = harmonic_design(days[epochs][None], reference, bool(self.seasonal), acceleration=False)[0]  # (m, p)
            x_out = harmonic_design(targets[i][None], reference, bool(self.seasonal), acceleration=False)[0]  # (H, p)
            p = x_in.shape[-1]
            y = values[epochs].reshape(len(epochs), -1).astype(np.float64)  # (m, P)
            w = np.isfinite(y)
            y0 = np.where(w, y, 0.0)
            wf = w.astype(np.float64)
            # Normal equations per pixel, weighted by validity: A (P, p, p), b (P, p).
            a = np.einsum("lp,lq,lc->cpq", x_in, x_in, wf)
            b = np.einsum("lp,lc->cp", x_in, y0)
            n_valid = wf.sum(axis=0)
            if ridge > 0:
                for k in range(2, p):  # the seasonal terms
                    a[:, k, k] += ridge * n_valid
            # Too few epochs for the parameters: no forecast for that pixel.
            solvable = n_valid >= p
            a[~solvable] = np.eye(p)
            coef = np.linalg.solve(a, b[..., None])[..., 0]  # (P, p)
            pred = x_out @ coef.T  # (H, P)
            pred[:, ~solvable] = np.nan
            out[i] = pred.reshape(self.steps, height, width)
        return out


class HistoryFit(WindowBaseline):
    """The default deep models' history prior on its own, extrapolated.

    Per pixel, :func:`~insar_raster.forecast.data.history_fit` over the
    ``history_epochs`` epochs (at least ``window``) up to the last input epoch; the
    acceleration penalty ``acceleration_ridge_`` is the given one, else picked from
    :data:`~insar_raster.forecast.data.ACCELERATION_RIDGES` by validation RMSE in
    :meth:`fit`.

    Parameters
    ----------
    window, steps : int
    history_epochs : int
        Epochs of past the fit reads (at least ``window``).
    acceleration_ridge : float or None
        Penalty on the fit's acceleration; ``None`` chooses it on validation.

    Attributes
    ----------
    acceleration_ridge_ : float
        The penalty used.
    """

    name = "history_fit"

    def __init__(
        self,
        window: int,
        steps: int,
        history_epochs: int = TrainConfig.history_epochs,
        acceleration_ridge: float | None = None,
    ):
        super().__init__(window, steps)
        self.history_epochs = history_epochs
        self.acceleration_ridge = acceleration_ridge

    @property
    def _history(self) -> int:
        return max(self.window, int(self.history_epochs))

    def fit(self, cube, split):
        self._check_split(split)
        if self.acceleration_ridge is None:
            _choose_on_validation(self, cube, split, "acceleration_ridge_", ACCELERATION_RIDGES)
        else:
            self.acceleration_ridge_ = self.acceleration_ridge
        return self

    def details(self) -> dict:
        details = {"acceleration_ridge": self.acceleration_ridge_}
        if self._history > self.window:
            details["history_epochs"] = self._history
        return details

    def predict_windows(self, cube, starts):
        starts = self._starts(cube, starts)
        values = cube_values(cube)
        days = times_in_days(cube)
        targets = target_days(days, starts, self.window, self.steps, acquisition_step_days(cube))
        ridge = vars(self).get("acceleration_ridge_", self.acceleration_ridge) or 0.0
        out = np.empty((len(starts), self.steps, *values.shape[1:]), dtype=np.float32)
        for i, s in enumerate(starts):
            last = s + self.window - 1
            first = max(0, last + 1 - self._history)
            coef = history_fit(values[first : last + 1], days[first : last + 1], days[last], ridge)
            out[i] = history_eval(coef, targets[i], days[last])
        return out


def _lag_rows(
    values2d: np.ndarray, starts: np.ndarray, window: int, steps: int, max_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random (sample, pixel) rows: lags (n, window) and targets (n, steps), all finite.

    ``values2d`` is (time, pixels). Rows are drawn uniformly over all (start, pixel)
    pairs; pairs with a masked lag or target are discarded.
    """
    n_pixels = values2d.shape[1]
    total = len(starts) * n_pixels
    if total == 0:
        return np.zeros((0, window), np.float32), np.zeros((0, steps), np.float32)
    # Oversample so that masked pairs can be dropped and still fill max_rows.
    draw = min(total, int(max_rows * 1.6) + 100)
    flat = rng.choice(total, size=draw, replace=False) if draw < total else np.arange(total)
    s = starts[flat // n_pixels]
    pix = flat % n_pixels
    x = values2d[s[:, None] + np.arange(window)[None, :], pix[:, None]]
    y = values2d[s[:, None] + window + np.arange(steps)[None, :], pix[:, None]]
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1)
    return x[ok][:max_rows], y[ok][:max_rows]


class _PixelRegressor(WindowBaseline):
    """Direct multi-step per-pixel regression on the pixel's own lag values.

    Parameters
    ----------
    window, steps : int
    max_rows : int
        Training rows (sample x pixel) drawn at most.
    seed : int
        Seed of the row draw.

    Attributes
    ----------
    models_ : list
        One fitted regressor per step.
    n_train_rows_ : int
        Training rows the regressors were fitted on.
    """

    def __init__(self, window: int, steps: int, max_rows: int = EvaluateConfig.max_rows, seed: int = 0):
        super().__init__(window, steps)
        self.max_rows = max_rows
        self.seed = seed

    def _features(self, lags: np.ndarray, last_days: np.ndarray) -> np.ndarray:
        return lags

    def _target(self, lags, targets):
        return targets

    def _untarget(self, lags, predicted):
        return predicted

    def _rows(self, cube, split, part, max_rows, rng):
        values = cube_values(cube)
        days = times_in_days(cube)
        starts = getattr(split, part)
        # Keep the sample index with each row so day-of-year features can be attached.
        n_pixels = values.shape[1] * values.shape[2]
        v2 = values.reshape(values.shape[0], n_pixels)
        x, y, d = [], [], []
        per_start = max(1, max_rows // max(1, len(starts)))
        for s in starts:
            xs, ys = _lag_rows(v2, np.array([s]), self.window, self.steps, per_start, rng)
            x.append(xs)
            y.append(ys)
            d.append(np.full(len(xs), days[s + self.window - 1]))
        if not x:
            return np.zeros((0, self.window), np.float32), np.zeros((0, self.steps), np.float32), np.zeros(0)
        return np.concatenate(x), np.concatenate(y), np.concatenate(d)

    def fit(self, cube, split):
        """Fit one regressor per step (``models_``) on ``n_train_rows_`` training rows."""
        self._check_split(split)
        rng = np.random.default_rng(int(self.seed))
        x, y, d = self._rows(cube, split, "train", int(self.max_rows), rng)
        if len(x) == 0:
            raise ValueError(
                f"{self.name}: no training pixel has all {self.window} lags and {self.steps} targets observed"
            )
        self.n_train_rows_ = len(x)
        xv, yv, dv = (
            self._rows(cube, split, "val", max(1000, int(self.max_rows) // 4), rng)
            if len(split.val)
            else (None, None, None)
        )
        features = self._features(x, d)
        targets = self._target(x, y)
        val = None
        if xv is not None and len(xv):
            val = (self._features(xv, dv), self._target(xv, yv))
        self._fit_steps(features, targets, val)
        return self

    def details(self) -> dict:
        return {"train_rows": int(self.n_train_rows_)}

    def predict_windows(self, cube, starts):
        if "models_" not in vars(self):
            raise RuntimeError(f"{self.name} is not fitted; call fit(cube, split) first")
        starts = self._starts(cube, starts)
        values = cube_values(cube)
        days = times_in_days(cube)
        n_times, height, width = values.shape
        out = np.full((len(starts), self.steps, height * width), np.nan, dtype=np.float32)
        for i, s in enumerate(starts):
            lags = values[s : s + self.window].reshape(self.window, -1).T  # (P, L)
            ok = np.isfinite(lags).all(axis=1)
            if not ok.any():
                continue
            features = self._features(lags[ok], np.full(int(ok.sum()), days[s + self.window - 1]))
            pred = np.stack([m.predict(features) for m in self.models_], axis=1)
            out[i][:, ok] = self._untarget(lags[ok], pred).T
        return out.reshape(len(starts), self.steps, height, width)


class PixelLasso(_PixelRegressor):
    """LASSO on a pixel's last ``window`` values (mm), as in the paper.

    Features are the raw lag values and the target is the raw value at each step
    (one model per step), so the coefficients read directly as weights on the lags:
    persistence is the coefficient 1 on the most recent epoch. The L1 penalty
    ``alpha_`` is ``alpha`` if given, else chosen from a small grid by RMSE on the
    validation samples.

    Parameters
    ----------
    window, steps, max_rows, seed
        As :class:`_PixelRegressor`.
    alpha : float or None
        L1 penalty; ``None`` chooses it from :attr:`ALPHA_GRID` on validation.

    Attributes
    ----------
    alpha_ : float
        The penalty used.
    models_, n_train_rows_
        As :class:`_PixelRegressor`.
    """

    name = "lasso"
    ALPHA_GRID = (1e-3, 1e-2, 1e-1, 1.0)

    def __init__(self, window, steps, max_rows=EvaluateConfig.max_rows, seed=0, alpha: float | None = None):
        super().__init__(window, steps, max_rows, seed)
        self.alpha = alpha

    def _fit_steps(self, features, targets, val):
        from sklearn.linear_model import LassoLars

        def fit_one(alpha, k):
            # LARS solves the LASSO exactly along its path: the raw lags of cumulative
            # displacement are nearly collinear, where coordinate descent converges slowly.
            return LassoLars(alpha=alpha, max_iter=500, random_state=int(self.seed)).fit(features, targets[:, k])

        alphas = [self.alpha] if self.alpha is not None else list(self.ALPHA_GRID)
        if len(alphas) > 1 and val is not None:
            xv, yv = val
            # Pick alpha on step 1 (cheap, and the choice is stable across steps).
            errors = {a: float(np.sqrt(np.mean((fit_one(a, 0).predict(xv) - yv[:, 0]) ** 2))) for a in alphas}
            self.alpha_ = min(errors, key=errors.get)
            log.debug("lasso: alpha %g (validation RMSE %s)", self.alpha_, errors)
        else:
            self.alpha_ = alphas[0]
        self.models_ = [fit_one(self.alpha_, k) for k in range(self.steps)]

    def details(self) -> dict:
        return {"alpha": self.alpha_, **super().details()}

    def intrinsic_importance(self) -> dict:
        from insar_raster.evaluate.importance import shares

        coef = self.lag_importance()
        return {
            "abs_coefficient": coef.tolist(),
            "share": shares(coef).tolist(),
            "signed_coefficient": np.stack([m.coef_ for m in self.models_]).tolist(),
        }

    def lag_importance(self) -> np.ndarray:
        """|coefficient| per (step, lag), lags oldest to most recent (mm per mm)."""
        return np.abs(np.stack([m.coef_ for m in self.models_]))


class PixelLightGBM(_PixelRegressor):
    """LightGBM on a pixel's last ``window`` values, one model per step.

    A tree ensemble cannot extrapolate beyond the values it saw, and cumulative
    displacement in the test epochs lies beyond the training range wherever the
    ground keeps moving. So this baseline predicts the *change* from the last input
    epoch, from the same ``window`` values expressed as: the lag values relative to
    the last epoch (``window - 1`` features) plus the last epoch's value itself
    (its level), and the day of year of the last epoch (sine, cosine) for seasonal
    motion. Boosting stops early on the validation samples.

    Parameters
    ----------
    window, steps, max_rows, seed
        As :class:`_PixelRegressor`.
    n_estimators, learning_rate, num_leaves : int, float, int
        LightGBM's boosting rounds (at most: early stopping), shrinkage and leaves per tree.
    n_jobs : int or None
        LightGBM threads (``None``: one).

    Attributes
    ----------
    models_, n_train_rows_
        As :class:`_PixelRegressor`.
    """

    name = "lightgbm"

    def __init__(
        self,
        window,
        steps,
        max_rows=EvaluateConfig.max_rows,
        seed=0,
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        n_jobs: int | None = None,
    ):
        super().__init__(window, steps, max_rows, seed)
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.n_jobs = n_jobs

    def _features(self, lags, last_days):
        last = lags[:, -1:]
        phase = 2 * np.pi * np.asarray(last_days, dtype=np.float64)[:, None] / DAYS_PER_YEAR
        return np.hstack([lags[:, :-1] - last, last, np.sin(phase), np.cos(phase)]).astype(np.float32)

    def _target(self, lags, targets):
        return targets - lags[:, -1:]

    def _untarget(self, lags, predicted):
        return predicted + lags[:, -1:]

    def _fit_steps(self, features, targets, val):
        import lightgbm as lgb

        # One thread by default: with ~1e5 rows, OpenMP threads cost more than they save
        # (and fight with torch's threads when deep models run in the same process).

        self.models_ = []
        for k in range(self.steps):
            model = lgb.LGBMRegressor(
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                num_leaves=self.num_leaves,
                min_child_samples=50,
                subsample=0.8,
                subsample_freq=1,
                colsample_bytree=1.0,
                random_state=int(self.seed) + k,
                deterministic=True,
                force_col_wise=True,
                n_jobs=self.n_jobs or 1,
                verbose=-1,
            )
            kwargs = {}
            if val is not None:
                kwargs = {
                    "eval_set": [(val[0], np.ascontiguousarray(val[1][:, k]))],
                    "callbacks": [lgb.early_stopping(30, verbose=False)],
                }
            with warnings.catch_warnings():
                # eval_set -> eval_X/eval_y rename in recent LightGBM; eval_set works in all 4.x.
                warnings.simplefilter("ignore", category=FutureWarning)
                warnings.filterwarnings("ignore", message=".*eval_set.*")
                self.models_.append(model.fit(features, np.ascontiguousarray(targets[:, k]), **kwargs))

    def details(self) -> dict:
        return {**super().details(), "trees_per_step": [int(m.best_iteration_ or m.n_estimators) for m in self.models_]}

    def intrinsic_importance(self) -> dict:
        from insar_raster.evaluate.importance import shares

        gain = self.lag_importance()
        return {"gain": gain.tolist(), "share": shares(gain).tolist()}

    def lag_importance(self) -> np.ndarray:
        """Total split gain per (step, lag), lags oldest to most recent.

        Feature ``j < window - 1`` is lag ``j`` relative to the last epoch; feature
        ``window - 1`` is the last epoch's level. The two day-of-year features are
        not lags and are left out.
        """
        gains = [m.booster_.feature_importance(importance_type="gain")[: self.window] for m in self.models_]
        return np.asarray(gains, dtype=np.float64)


BASELINES = {
    "persistence": lambda window, steps, **kw: Persistence(window, steps),
    "trend": lambda window, steps, **kw: PixelTrend(window, steps, seasonal=False),
    "trend_seasonal": lambda window, steps, **kw: PixelTrend(window, steps, seasonal=True),
    "history_fit": lambda window, steps, history_epochs=TrainConfig.history_epochs, **kw: HistoryFit(
        window, steps, history_epochs
    ),
    "lasso": lambda window, steps, seed=0, max_rows=EvaluateConfig.max_rows, **kw: PixelLasso(
        window, steps, max_rows, seed
    ),
    "lightgbm": lambda window, steps, seed=0, max_rows=EvaluateConfig.max_rows, **kw: PixelLightGBM(
        window, steps, max_rows, seed
    ),
}


def make_baseline(name: str, window: int, steps: int, **kwargs) -> WindowBaseline:
    """Instantiate a baseline by name (see :data:`BASELINES`)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    return BASELINES[name](window, steps, **kwargs)
