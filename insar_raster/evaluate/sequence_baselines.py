"""Per-pixel sequence baselines the field now expects: DLinear and a causal TCN.

The reference paper's authors later found that on native EGMS L3 cells DLinear
(1.33 mm) and a causal TCN (1.39 mm) beat persistence (1.63 mm) and LASSO (1.42 mm) at a
12-day horizon. Both read one pixel's *long* past (``lookback`` epochs up to the last
input epoch, at most ``history`` like ``history_fit``), relative to its last value, and
forecast the change at each of the ``steps`` target epochs at once (direct multi-step).

- :class:`DLinear` (Zeng et al., AAAI 2023): the lookback series is split into a trend
  (moving average, kernel 25, replicated ends) and a remainder, and one linear layer per
  component maps the ``lookback`` values to the ``steps`` outputs. The model is linear in
  its inputs, so it is fitted in closed form (ridge least squares on the two
  components, the optimum that DLinear's SGD on the MSE approaches); the ridge is chosen
  on the validation rows.
- :class:`CausalTCN` (Bai et al., 2018): residual blocks of two dilated causal 1-D
  convolutions (kernel 3, dilations 1, 2, 4, 8: receptive field 61 epochs), a linear
  head on the last epoch's features. Inputs: the change relative to the last value
  (divided by the training RMS of the targets) and each epoch's time position (in
  acquisition steps, so irregular gaps show). Adam on random training rows, early
  stopping on validation rows; one CPU thread (its convolutions are too small for more).

Training rows are random (training sample, valid pixel) pairs whose whole lookback and
targets are observed, at most ``max_rows``. Pixels with a gap in their lookback get no
forecast (NaN), like LASSO and LightGBM.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from insar_raster.evaluate.baselines import WindowBaseline, cube_values
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import acquisition_step_days, times_in_days
from insar_raster.forecast.windows import lookback_epochs

log = logging.getLogger("insar_raster")


def _lag_block(values: np.ndarray, last: int, lookback: int) -> np.ndarray:
    """Epochs ``(last - lookback, last]`` of ``values`` (T, P), first epoch repeated before the start."""
    idx = np.clip(np.arange(last + 1 - lookback, last + 1), 0, None)
    return values[idx]


class _SequenceBaseline(WindowBaseline):
    """Rows of (lookback change, time positions) -> change at each target step.

    Parameters
    ----------
    window, steps : int
        As :class:`~insar_raster.evaluate.baselines.WindowBaseline`.
    history : int
        Longest lookback (epochs) a row reads; :meth:`fit` shortens it to what the split
        allows (``lookback_``).
    max_rows : int
        Training rows (sample x pixel) drawn at most.
    seed : int
        Seed of the row draw (and of the network's initial weights).

    Attributes
    ----------
    lookback_ : int
        Epochs each row reads.
    step_days_ : float
        The cube's acquisition step (days) that time positions are counted in.
    n_train_rows_ : int
        Training rows fitted on.
    """

    val_rows = 20_000

    def __init__(
        self, window: int, steps: int, history: int = TrainConfig.history_epochs, max_rows: int = 100_000, seed: int = 0
    ):
        super().__init__(window, steps)
        self.history = history
        self.max_rows = max_rows
        self.seed = seed

    def _rows(self, values2d, days, starts, n_rows, rng):
        lb, w, h = self.lookback_, self.window, self.steps
        starts = starts[starts + w >= lb] if np.any(starts + w >= lb) else starts[-1:]
        n_pix = values2d.shape[1]
        per = max(1, int(1.6 * n_rows) // max(1, len(starts)))
        xs, ys, ts = [], [], []
        for s in starts:
            last = s + w - 1
            pix = rng.choice(n_pix, size=min(per, n_pix), replace=False)
            lags = _lag_block(values2d[:, pix], last, lb).T  # (n, lb)
            target = values2d[last + 1 : last + 1 + h, pix].T  # (n, h)
            ok = np.isfinite(lags).all(axis=1) & np.isfinite(target).all(axis=1)
            ref = lags[ok, -1:]
            xs.append(lags[ok] - ref)
            ys.append(target[ok] - ref)
            ts.append(
                np.repeat(self._positions(days, last, target_days=days[last + 1 : last + 1 + h])[None], ok.sum(), 0)
            )
        x, y, t = np.concatenate(xs), np.concatenate(ys), np.concatenate(ts)
        if len(x) > n_rows:
            keep = rng.choice(len(x), n_rows, replace=False)
            x, y, t = x[keep], y[keep], t[keep]
        return x.astype(np.float32), y.astype(np.float32), t.astype(np.float32)

    def _positions(self, days, last, target_days):
        """Time positions of the lookback epochs (acquisition steps from the last, <= 0)."""
        idx = np.clip(np.arange(last + 1 - self.lookback_, last + 1), 0, None)
        return ((days[idx] - days[last]) / self.step_days_).astype(np.float32)

    def fit(self, cube, split):
        self._check_split(split)
        values = cube_values(cube)
        v2 = values.reshape(values.shape[0], -1)
        days = times_in_days(cube)
        self.step_days_ = acquisition_step_days(cube)
        self.lookback_ = lookback_epochs(split, self.window, self.history)
        rng = np.random.default_rng(self.seed)
        train = self._rows(v2, days, split.train, self.max_rows, rng)
        if len(train[0]) == 0:
            raise ValueError(f"{self.name}: no training pixel has its {self.lookback_} lags and targets observed")
        val = self._rows(v2, days, split.val, self.val_rows, rng) if len(split.val) else None
        self.n_train_rows_ = len(train[0])
        self._fit_rows(train, val if val is not None and len(val[0]) else None)
        return self

    def details(self) -> dict:
        """What a report shows about the fitted model (JSON-ready)."""
        out = {
            "lookback_epochs": int(getattr(self, "lookback_", 0)),
            "train_rows": int(getattr(self, "n_train_rows_", 0)),
        }
        if hasattr(self, "lookback_"):
            out["parameters"] = self.n_parameters
        return out

    def intrinsic_importance(self) -> dict | None:
        """No importance of its own (the permutation test applies)."""
        return None

    def predict_windows(self, cube, starts):
        if not hasattr(self, "lookback_"):
            raise RuntimeError(f"{self.name} is not fitted; call fit(cube, split) first")
        starts = self._starts(cube, starts)
        values = cube_values(cube)
        days = times_in_days(cube)
        n_times, height, width = values.shape
        v2 = values.reshape(n_times, -1)
        out = np.full((len(starts), self.steps, height * width), np.nan, dtype=np.float32)
        for i, s in enumerate(starts):
            last = s + self.window - 1
            lags = _lag_block(v2, last, self.lookback_).T
            ok = np.isfinite(lags).all(axis=1)
            if not ok.any():
                continue
            ref = lags[ok, -1:]
            pos = np.repeat(self._positions(days, last, None)[None], ok.sum(), 0)
            out[i][:, ok] = (self._predict_rows(lags[ok] - ref, pos) + ref).T
        return out.reshape(len(starts), self.steps, height, width)


def _moving_average(x: np.ndarray, kernel: int) -> np.ndarray:
    """Centred moving average along the last axis, ends replicated (DLinear's series_decomp)."""
    k = max(1, min(int(kernel), x.shape[-1]))
    front, back = (k - 1) // 2, k // 2
    padded = np.concatenate([np.repeat(x[..., :1], front, -1), x, np.repeat(x[..., -1:], back, -1)], axis=-1)
    c = np.cumsum(np.pad(padded, [(0, 0)] * (x.ndim - 1) + [(1, 0)]), axis=-1, dtype=np.float64)
    return ((c[..., k:] - c[..., :-k]) / k).astype(np.float32)


class DLinear(_SequenceBaseline):
    """Trend/remainder decomposition + one linear layer per component (see the module docstring).

    Fitted attributes: those of :class:`_SequenceBaseline`, ``alpha_`` (ridge), ``coef_``
    (2 lookback + 1, steps).
    """

    name = "dlinear"
    KERNEL = 25
    ALPHA_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)

    def _design(self, x):
        trend = _moving_average(x, self.KERNEL)
        return np.hstack([trend, x - trend, np.ones((len(x), 1), np.float32)]).astype(np.float64)

    def _solve(self, a, alpha):
        xtx, xty = a
        reg = alpha * np.trace(xtx) / len(xtx) * np.eye(len(xtx))
        reg[-1, -1] = 0.0  # no penalty on the bias
        return np.linalg.solve(xtx + reg, xty)

    def _fit_rows(self, train, val):
        x, y, _ = train
        d = self._design(x)
        normal = (d.T @ d, d.T @ y.astype(np.float64))
        errors = {}
        for alpha in self.ALPHA_GRID:
            coef = self._solve(normal, alpha)
            if val is None:
                errors[alpha] = 0.0
                break
            errors[alpha] = float(np.mean((self._design(val[0]) @ coef - val[1]) ** 2))
        self.alpha_ = float(min(errors, key=errors.get))
        self.coef_ = self._solve(normal, self.alpha_)
        log.debug("dlinear: lookback %d, alpha %g (validation MSE %s)", self.lookback_, self.alpha_, errors)

    def _predict_rows(self, x, positions):
        return (self._design(x) @ self.coef_).astype(np.float32)

    @property
    def n_parameters(self) -> int:
        return int(self.coef_.size)


class CausalTCN(_SequenceBaseline):
    """Small causal temporal convolutional network per pixel (see the module docstring).

    Parameters: those of :class:`_SequenceBaseline`, and the network's ``channels``,
    ``dilations`` (one residual block each), training ``iterations`` (at most: early
    stopping on validation), ``batch_size`` and ``lr`` (Adam).

    Fitted attributes: those of :class:`_SequenceBaseline`, ``scale_`` (mm), ``network_``
    (torch module), ``iterations_`` (iterations run).
    """

    name = "tcn"
    val_rows = 4000

    def __init__(
        self,
        window,
        steps,
        history=64,
        max_rows=100_000,
        seed=0,
        channels: int = 16,
        dilations=(1, 2, 4, 8),
        iterations: int = 400,
        batch_size: int = 256,
        lr: float = 2e-3,
    ):
        super().__init__(window, steps, history, max_rows, seed)
        self.channels = channels
        self.dilations = dilations
        self.iterations = iterations
        self.batch_size = batch_size
        self.lr = lr

    def _tensor(self, x, positions):
        import torch

        return torch.from_numpy(
            np.stack([x / self.scale_, positions / max(1, self.lookback_)], axis=1).astype(np.float32)
        )

    def _fit_rows(self, train, val):
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny convolutions: threads cost more than they save
        try:
            self._train_network(train, val)
        finally:
            torch.set_num_threads(threads)

    def _train_network(self, train, val):
        import torch

        from insar_raster.models.tcn import TCN

        torch.manual_seed(self.seed)
        x, y, t = train
        self.scale_ = float(np.sqrt(np.mean(y.astype(np.float64) ** 2))) or 1.0
        net = TCN(2, self.steps, self.channels, self.dilations)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        xt, yt = self._tensor(x, t), torch.from_numpy(y / self.scale_)
        vx = vy = None
        if val is not None:
            vx, vy = self._tensor(val[0], val[2]), torch.from_numpy(val[1] / self.scale_)
        rng = np.random.default_rng(self.seed)
        best, best_state, stale = math.inf, None, 0
        for it in range(1, self.iterations + 1):
            net.train()
            idx = torch.from_numpy(rng.integers(0, len(xt), self.batch_size))
            loss = ((net(xt[idx]) - yt[idx]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if vx is not None and (it % 50 == 0 or it == self.iterations):
                net.eval()
                with torch.no_grad():
                    v = float(((net(vx) - vy) ** 2).mean())
                if v < best:
                    best, best_state, stale = v, {k: p.clone() for k, p in net.state_dict().items()}, 0
                else:
                    stale += 1
                    if stale >= 4:
                        break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.network_ = net
        self.iterations_ = it

    def _predict_rows(self, x, positions):
        import torch

        out = []
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                for i in range(0, len(x), 8192):
                    out.append(self.network_(self._tensor(x[i : i + 8192], positions[i : i + 8192])).numpy())
        finally:
            torch.set_num_threads(threads)
        return np.concatenate(out) * np.float32(self.scale_)

    @property
    def n_parameters(self) -> int:
        return int(sum(p.numel() for p in self.network_.parameters()))
