"""From a cube to network tensors: normalisation, input channels, patches.

Channels per input epoch (``N_CHANNELS``)
-----------------------------------------
0. displacement relative to the last input epoch, divided by the normalisation scale
   (0 where masked);
1. validity (1 = observed, 0 = masked or padding), so that 0 is not read as "no motion";
2. time position of the epoch relative to the last input epoch, in acquisition steps
   (0 for the last, -1, -2... on a regular cube; irregular gaps show as non-integers);
3. - 4. sine and cosine of the day of year (seasonal phase);
5. residual of the epoch from the per-pixel *history fit* (below), divided by the scale
   (mostly atmosphere and noise; 0 when the model uses no prior).

History prior
-------------
A 12-epoch window (132 days at a 12-day revisit) cannot tell a seasonal cycle from a
trend, but the whole past of each pixel can. For every sample, a per-pixel least-squares
fit of ``c0 + v t + a t^2 + s sin(2 pi t) + c cos(2 pi t)`` (t in years) over all epochs
up to the last input epoch (at most ``history_epochs``; never a later epoch) is
extrapolated to the target dates; its change from the last observed epoch is given to
the decoder (``prior``) and the network learns a correction to it (mainly spatial
denoising, which no per-pixel fit can do). A small ridge penalty on ``a, s, c`` keeps
short histories (the first training samples) from extrapolating wildly. A further
penalty on the acceleration ``a`` is chosen on the validation epochs from
:data:`ACCELERATION_RIDGES`: where nothing accelerates, the quadratic term only adds
noise to the extrapolation (its leverage at the last epoch is the largest).
The network learns the correction to this prior; the per-pixel fit is also a strong
baseline in its own right (the evaluation compares against it).

Learned linear prior
--------------------
Motion that is not a quadratic + annual curve per pixel (a consolidation whose rate
decays, a front's trough arriving, a rate that switched) makes the fit's extrapolation
wrong in the same way in every pixel it happens to. A linear map from a pixel's long past
to its next ``steps`` changes, learned once from every training pixel (DLinear's linear
layer; the fit's own extrapolation is one such map, so it can only do as well or
better on the training rows), captures how such curves continue. Its inputs are
:func:`lag_features` (the displacement ``j`` acquisition steps before the last epoch,
interpolated in time, minus the last epoch's, ``j = 1..lookback``). Training fits it in
its *residual* form (:class:`LinearPrior`): the history fit's change plus a map of the
lags and of that change, so that the ridge shrinks the weights toward the history fit,
not toward no motion, and a map learned where the fit is nearly right can only move
it a little (prior alone against the truth on the issue-12 scenes: at or below the map of
the lags alone on 9 of the 11 scene/seed pairs that keep one, at most 0.2 % above it on
the other two; benchmarks/README.md). It learns only from samples whose history fit read
all its epochs, as a forecast's does, else it is the lags-only map (see
``train._fit_lag_prior``). It fits the weights in closed form (ridge) and keeps
them only when they beat the best history fit on the validation patches by
:data:`LAG_PRIOR_MARGIN` (``TrainConfig.lag_prior``, ``TrainConfig.lag_prior_fit``);
model files written before hold the lags-only form, which still forecasts as it did.
Pixels whose lookback has a masked epoch, and samples whose target epochs are not the
regular ``1..steps`` acquisition steps ahead (after a cadence change), keep the history
fit.

The residual form has a *centred* variant, fitted beside it; validation keeps whichever
scores better. Part of the history fit's error is shared by every cell at a date (a
scene-wide atmosphere, a dry year's seasonal swing), and one cell's lags predict it
badly; a map fitted to the whole error learns that part too, at the cost of the cells'
own curves. The centred map is fitted to features and residual targets minus their
grid mean at the same forecast origin and applied as ``fit + W (f - grid mean of f)``:
its correction has zero grid mean, leaving the shared part to the history fit. The
grid means come from a fixed strided sample of the cells (:class:`FeatureMeans`,
:meth:`CubeReader.strided_cells`), so training patches, validation, calibration and
every forecast tile subtract the same means.

Targets are the changes from the last input epoch, divided by the same scale; the loss
ignores target cells that are masked (masked MSE).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from insar_raster.io.cube import CUBE_VARIABLE, grid_transform
from insar_raster.units import DAY_NS, DAYS_PER_YEAR

N_CHANNELS = 6
#: Ridge penalty (absolute, mm^2 scale of the normal equations) on the quadratic and
#: seasonal terms of the history fit: negligible for a year of history or more, strong
#: enough to keep a few months of history from extrapolating a spurious curvature.
HISTORY_RIDGE = 0.1
#: Candidate penalties on the acceleration term, relative (times the number of fitted
#: epochs, as the evaluation's trend baselines count them); training and the
#: ``history_fit`` baseline pick one on the validation epochs. 0 = free acceleration.
ACCELERATION_RIDGES = (0.0, 0.3, 1.0, 3.0, 10.0, 100.0)
#: Candidate history lengths (epochs, at most ``history_epochs``) of the prior, chosen on
#: validation with the acceleration penalty: a pumping rate that changed, a front that
#: arrived or a settlement that began makes a fit over the whole past wrong at its end,
#: and the shorter, more recent fit (a local trend) right; where the motion keeps one
#: form, the longest history wins.
PRIOR_HISTORIES = (150, 72, 48, 36, 24)
#: Candidate ridges of the learned linear prior, relative to the mean variance of its
#: inputs; chosen on validation.
LAG_PRIOR_RIDGES = (1e-3, 1e-2, 1e-1)
#: The learned linear prior must lower the best history fit's validation MSE by this
#: share to replace it (a choice made on a few validation dates must not be noise).
LAG_PRIOR_MARGIN = 0.02
#: Cubes up to this size (bytes of float32 displacement) are loaded into memory once;
#: larger ones are read window by window (only the (time, y, x) blocks a patch needs).
#: A full EGMS L3 tile (1000 x 700 cells, 300 epochs: 840 MB) fits: a patch read from a
#: compressed .nc decompresses every (16-epoch) chunk it touches, ~0.1 s per patch, which
#: made training on such a tile mostly decompression.
IN_MEMORY_BYTES = 2 * 1024**3
#: Bytes of float64 per chunk-wise pass when computing statistics of a lazy cube.
_STATS_BLOCK_BYTES = 64 * 1024**2
#: Cells sampled (evenly strided, :func:`cell_stride`) for grid-wide statistics: the
#: intervals' scene-wide errors (a median over the cells) and the centred linear prior's
#: grid means need a few thousand, not a whole tile.
SAMPLED_CELLS = 16_384


def cell_stride(height: int, width: int) -> int:
    """Stride (cells, along y and x) of the grid sample of about :data:`SAMPLED_CELLS` cells."""
    return max(1, int(np.ceil(np.sqrt(height * width / SAMPLED_CELLS))))


def grid_of(cube: xr.Dataset) -> dict:
    """JSON-safe description of a cube's grid: CRS (WKT), transform, shape, resolution."""
    crs = cube.rio.crs
    transform = grid_transform(cube)
    return {
        "crs_wkt": crs.to_wkt() if crs is not None else None,
        "transform": [float(v) for v in list(transform)[:6]],
        "shape": [int(cube.sizes["y"]), int(cube.sizes["x"])],
        "resolution": [abs(float(transform.a)), abs(float(transform.e))],
    }


def times_in_days(cube: xr.Dataset) -> np.ndarray:
    """Acquisition times as float days since 1970-01-01."""
    t = np.asarray(cube["time"].values, dtype="datetime64[ns]").astype(np.int64)
    return t / DAY_NS


#: Gaps between the last epochs whose median is the acquisition step of the future.
RECENT_GAPS = 20


def acquisition_step_days(cube: xr.Dataset) -> float:
    """The cube's current acquisition step: the median of its last :data:`RECENT_GAPS`
    gaps between epochs, in days; the dates of a forecast follow it.

    Recent, not whole-record: EGMS 2020_2024 series are 6-day until Sentinel-1B's loss
    (December 2021) and 12-day after, with more 6-day gaps in all, so the whole record's
    median (6 days) would date every forecast epoch where no acquisition comes.
    """
    days = times_in_days(cube)
    if len(days) < 2:
        return 1.0
    return float(np.median(np.diff(days)[-RECENT_GAPS:]))


def target_days(days: np.ndarray, starts, window: int, steps: int, step_days: float) -> np.ndarray:
    """Dates (float days) of the target epochs of the samples starting at ``starts``.

    Sample ``s`` targets epochs ``[s + window, s + window + steps)``; those past the
    last epoch of ``days`` follow it at ``step_days`` (the acquisition step).

    Returns
    -------
    ndarray (n, steps) float64
    """
    n_times = len(days)
    epochs = np.asarray(starts, dtype=int).reshape(-1)[:, None] + window + np.arange(steps)[None, :]
    beyond = days[-1] + (epochs - n_times + 1) * step_days
    return np.where(epochs < n_times, days[np.minimum(epochs, n_times - 1)], beyond)


@dataclass(frozen=True)
class Normalisation:
    """Statistics of the training epochs, stored in the model file.

    Attributes
    ----------
    scale_mm : float
        Root mean square of the ``steps``-epoch displacement change over the training
        epochs (mm): the unit of the network's inputs and outputs.
    step_days : float
        Median acquisition step of the training epochs (days): the unit of time
        positions and leads.
    """

    scale_mm: float
    step_days: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_training_epochs(cls, cube: xr.Dataset, train_end: int, lag: int) -> "Normalisation":
        """Compute from epochs ``[0, train_end)`` only (no leakage from later epochs).

        Large cubes are subsampled spatially (every k-th row/column) and read in row
        bands, so this stays one cheap pass that never holds the whole cube in memory.
        """
        da = cube[CUBE_VARIABLE].isel(time=slice(0, train_end))
        stride = max(1, int(np.sqrt(da.sizes["y"] * da.sizes["x"] / 250_000)))
        da = da.isel(y=slice(None, None, stride), x=slice(None, None, stride))
        n_epochs, n_rows, n_cols = (int(n) for n in da.shape)
        lag = max(1, min(lag, n_epochs - 1))
        # Row bands, so that a lazy (dask / on-disk) cube is never loaded whole.
        rows_per_band = max(1, _STATS_BLOCK_BYTES // max(1, n_epochs * n_cols * 8))
        sum_sq, count = 0.0, 0
        for y0 in range(0, n_rows, rows_per_band):
            values = np.asarray(da.isel(y=slice(y0, y0 + rows_per_band)).values, dtype=np.float64)
            change = values[lag:] - values[:-lag]
            change = change[np.isfinite(change)]
            sum_sq += float(np.sum(change**2))
            count += change.size
        scale = float(np.sqrt(sum_sq / count)) if count else 1.0
        if not np.isfinite(scale) or scale <= 1e-6:
            scale = 1.0  # a static scene: keep mm as the unit
        days = times_in_days(cube)[:train_end]
        step = float(np.median(np.diff(days))) if len(days) > 1 else 1.0
        return cls(scale_mm=scale, step_days=step if step > 0 else 1.0)


class CubeReader:
    """Random access to (time, y, x) blocks of the displacement, in memory or lazily.

    Cubes larger than ``in_memory_bytes`` (e.g. opened lazily from a .zarr or .nc with
    :func:`insar_raster.io.cube.open_cube`, with or without dask chunks) are read block
    by block with ``isel``, so training and tiled prediction never load the whole cube;
    smaller ones are loaded once (much faster random access). Both give the same values.

    Parameters
    ----------
    cube : xarray.Dataset
    in_memory_bytes : int, optional
        Size limit (bytes of float32 displacement) for loading the cube into memory;
        default :data:`IN_MEMORY_BYTES`.
    """

    def __init__(self, cube: xr.Dataset, in_memory_bytes: int | None = None):
        da = cube[CUBE_VARIABLE]
        self.shape = tuple(int(n) for n in da.shape)
        self.days = times_in_days(cube)
        limit = IN_MEMORY_BYTES if in_memory_bytes is None else int(in_memory_bytes)
        nbytes = int(np.prod(self.shape)) * 4
        self._array = np.asarray(da.values, dtype=np.float32) if nbytes <= limit else None
        self._da = da
        self._strided = None

    @property
    def lazy(self) -> bool:
        """Whether blocks are read from the (lazy) cube rather than from memory."""
        return self._array is None

    def read(self, t0: int, t1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Displacement block [t0:t1, y0:y1, x0:x1] as float32 (mm, NaN masked)."""
        if self._array is not None:
            return self._array[t0:t1, y0:y1, x0:x1]
        block = self._da.isel(time=slice(t0, t1), y=slice(y0, y1), x=slice(x0, x1))
        return np.asarray(block.values, dtype=np.float32)

    def strided_cells(self) -> np.ndarray:
        """Every epoch of an evenly strided sample of the grid's cells (:func:`cell_stride`),
        (n_times, n_cells) float32 mm, without the cells never observed; read once."""
        if self._strided is None:
            stride = cell_stride(*self.shape[1:])
            if self._array is not None:
                values = self._array[:, ::stride, ::stride]
            else:
                values = np.asarray(self._da.isel(y=slice(None, None, stride), x=slice(None, None, stride)).values)
            values = np.asarray(values, np.float32).reshape(self.shape[0], -1)
            self._strided = values[:, np.isfinite(values).any(axis=0)]
        return self._strided

    def read_targets(self, starts, window: int, steps: int) -> np.ndarray:
        """The whole grid at the ``steps`` target epochs of each sample: (n, steps, H, W) mm."""
        _, height, width = self.shape
        targets = np.asarray(starts, dtype=int)[:, None] + window + np.arange(steps)[None, :]
        return np.stack([self.read_epochs(t, 0, height, 0, width) for t in targets])

    def read_epochs(self, epochs: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Block of the given (consecutive or not) epoch indices."""
        epochs = np.asarray(epochs)
        if len(epochs) and np.all(np.diff(epochs) == 1):
            return self.read(int(epochs[0]), int(epochs[-1]) + 1, y0, y1, x0, x1)
        if self._array is not None:
            return self._array[epochs, y0:y1, x0:x1]
        return np.asarray(self._da.isel(time=epochs, y=slice(y0, y1), x=slice(x0, x1)).values, dtype=np.float32)


def build_inputs(block: np.ndarray, input_days: np.ndarray, norm: Normalisation) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs for windows of displacement.

    Parameters
    ----------
    block : ndarray (n, window, h, w)
        Displacement (mm), NaN masked.
    input_days : ndarray (n, window)
        Acquisition times of the input epochs (days).
    norm : Normalisation

    Returns
    -------
    inputs : ndarray (n, window, N_CHANNELS, h, w) float32
    reference : ndarray (n, h, w) float32
        Displacement of the last input epoch (mm, NaN where masked): forecasts are this
        plus the predicted change, hence NaN exactly where it is masked.
    """
    n, window, h, w = block.shape
    reference = block[:, -1]
    relative = (block - reference[:, None]) / np.float32(norm.scale_mm)
    valid = np.isfinite(relative)
    x = np.zeros((n, window, N_CHANNELS, h, w), dtype=np.float32)
    x[:, :, 0] = np.where(valid, relative, 0.0)
    x[:, :, 1] = valid
    position = (input_days - input_days[:, -1:]) / norm.step_days
    x[:, :, 2] = position[:, :, None, None]
    phase = 2 * np.pi * (input_days / DAYS_PER_YEAR)
    x[:, :, 3] = np.sin(phase)[:, :, None, None]
    x[:, :, 4] = np.cos(phase)[:, :, None, None]
    return x, reference


def build_targets(block: np.ndarray, reference: np.ndarray, norm: Normalisation) -> tuple[np.ndarray, np.ndarray]:
    """Normalised change targets (n, steps, h, w) and their validity mask."""
    change = (block - reference[:, None]) / np.float32(norm.scale_mm)
    valid = np.isfinite(change)
    return np.where(valid, change, 0.0).astype(np.float32), valid


def leads_in_steps(target_days: np.ndarray, last_input_days: np.ndarray, norm: Normalisation) -> np.ndarray:
    """Time from the last input epoch to each target epoch, in acquisition steps."""
    return ((target_days - last_input_days[:, None]) / norm.step_days).astype(np.float32)


def harmonic_design(days, reference_days, seasonal: bool = True, acceleration: bool = True) -> np.ndarray:
    """Columns [1, t, (t²), (sin, cos of the annual phase)], t in years from the reference date.

    Shared by the history-fit prior and the evaluation's trend baselines so that both fit
    the same model. ``days`` (..., m) and ``reference_days`` broadcastable against
    ``days[..., :1]`` -> (..., m, p).
    """
    days = np.asarray(days, dtype=np.float64)
    t = (days - np.asarray(reference_days, dtype=np.float64)[..., None]) / DAYS_PER_YEAR
    cols = [np.ones_like(t), t]
    if acceleration:
        cols.append(t**2)
    if seasonal:
        phase = 2 * np.pi * days / DAYS_PER_YEAR
        cols += [np.sin(phase), np.cos(phase)]
    return np.stack(cols, axis=-1)


def history_fit(values: np.ndarray, days: np.ndarray, ref_days: float, acceleration_ridge: float = 0.0) -> np.ndarray:
    """Per-pixel ridge least squares of trend + acceleration + annual cycle.

    Parameters
    ----------
    values : ndarray (n_epochs, h, w)
        Displacement (mm), NaN masked; epochs may be irregular.
    days : ndarray (n_epochs,)
        Their dates (days).
    ref_days : float
        Time origin of the polynomial terms (the last input epoch).
    acceleration_ridge : float
        Extra penalty on the acceleration, times the pixel's number of valid epochs
        (see :data:`ACCELERATION_RIDGES`).

    Returns
    -------
    ndarray (5, h, w) float64
        Coefficients; NaN for pixels with fewer than 3 valid epochs.
    """
    n, h, w = values.shape
    design = harmonic_design(days, ref_days)
    penalty = np.diag([0.0, 0.0, 1.0, 1.0, 1.0]) * HISTORY_RIDGE
    per_epoch = np.zeros((5, 5))
    per_epoch[2, 2] = float(acceleration_ridge)
    y = values.reshape(n, -1).astype(np.float64)
    valid = np.isfinite(y)
    coef = np.full((5, h * w), np.nan)
    full = valid.all(axis=0)
    if full.any():  # common case (static mask): one shared solve
        lhs = design.T @ design + penalty + n * per_epoch
        coef[:, full] = np.linalg.solve(lhs, design.T @ y[:, full])
    partial = ~full & (valid.sum(axis=0) >= 3)
    if partial.any():  # gaps: per-pixel normal equations
        wgt = valid[:, partial].astype(np.float64)
        yp = np.where(valid[:, partial], y[:, partial], 0.0)
        lhs = (
            np.einsum("tp,ti,tj->pij", wgt, design, design)
            + penalty[None]
            + wgt.sum(axis=0)[:, None, None] * per_epoch[None]
        )
        rhs = np.einsum("tp,ti,tp->pi", wgt, design, yp)
        coef[:, partial] = np.linalg.solve(lhs, rhs[..., None])[..., 0].T
    return coef.reshape(5, h, w)


def history_eval(coef: np.ndarray, days: np.ndarray, ref_days: float) -> np.ndarray:
    """Evaluate :func:`history_fit` coefficients at ``days`` -> (len(days), h, w) mm."""
    design = harmonic_design(days, ref_days)
    return np.tensordot(design, coef, axes=(1, 0))


def lag_features(history: np.ndarray, days: np.ndarray, lookback: int, step_days: float) -> np.ndarray:
    """Inputs of the learned linear prior: the past relative to the last epoch.

    Parameters
    ----------
    history : ndarray (m, h, w)
        Displacement (mm), NaN masked, ending with the last input epoch.
    days : ndarray (m,)
        Its dates (days), increasing; irregular gaps are interpolated linearly.
    lookback : int
        Number of lags.
    step_days : float
        Lag spacing (days): the training cube's acquisition step.

    Returns
    -------
    ndarray (lookback, h, w) float64
        Displacement at ``days[-1] - j * step_days`` minus that of the last epoch (mm),
        ``j = 1..lookback``; NaN where an epoch it needs is masked or before ``days[0]``.
    """
    days = np.asarray(days, dtype=np.float64)
    at = days[-1] - float(step_days) * np.arange(1, int(lookback) + 1)
    tol = 1e-3 * float(step_days)
    hi = np.clip(np.searchsorted(days, at - tol, side="left"), 0, len(days) - 1)
    lo = np.maximum(hi - 1, 0)
    span = days[hi] - days[lo]
    w_hi = np.where(span > 0, (at - days[lo]) / np.where(span > 0, span, 1.0), 1.0)
    exact = np.abs(days[hi] - at) <= tol  # on an epoch: its value alone (a masked neighbour does not matter)
    w = np.where(exact, 1.0, np.clip(w_hi, 0.0, 1.0))[:, None, None]
    values = history.astype(np.float64)
    out = np.where(w >= 1.0, values[hi], (1.0 - w) * values[lo] + w * values[hi])
    out[at < days[0] - tol] = np.nan
    return out - values[-1][None]


def regular_leads(leads: np.ndarray) -> bool:
    """Whether target leads (acquisition steps) are ``1..steps``, as the linear prior learned them."""
    return bool(np.all(np.abs(np.asarray(leads) - np.arange(1, len(leads) + 1)) < 0.25))


@dataclass(frozen=True)
class LinearPrior:
    """Weights of the learned linear prior (see the module docstring).

    Parameters
    ----------
    lags : ndarray (steps, lookback)
        Weights of :func:`lag_features` (mm per mm).
    fit : ndarray (steps, steps) or None
        Residual form: weights of the history fit's own changes to the ``steps`` target
        epochs, the prior being that change plus both maps (zero weights: the history
        fit). None: the lags-only form (model files written before the residual form).
    """

    lags: np.ndarray
    fit: np.ndarray | None = None
    centred: bool = False

    @property
    def lookback(self) -> int:
        """Acquisition steps back the prior reads."""
        return int(self.lags.shape[1])

    def change(
        self,
        history: np.ndarray,
        days: np.ndarray,
        leads,
        step_days: float,
        fit_change: np.ndarray,
        feature_mean: np.ndarray | None = None,
        lags: np.ndarray | None = None,
    ):
        """The prior's change from the last epoch (steps, h, w) mm, NaN where a lag (or,
        in the residual form, the history fit's change) is not known; None when
        ``leads`` (acquisition steps) are not the regular ``1..steps`` it learned.

        ``history``/``days`` as in :func:`lag_features`; ``fit_change`` (steps, h, w) mm,
        the history fit's change from the last epoch to the target epochs;
        ``feature_mean`` (lookback + steps,) mm, the centred form's grid mean of the
        lags and of the fit's changes at this forecast (:class:`FeatureMeans`); ``lags``,
        :func:`lag_features` of ``history`` when the caller has them already.
        """
        if not regular_leads(leads):
            return None
        if lags is None:
            lags = lag_features(history, days, self.lookback, step_days)
        change = np.einsum("kj,jhw->khw", self.lags, lags)
        if self.fit is not None:
            change = change + fit_change + np.einsum("kj,jhw->khw", self.fit, fit_change)
        if self.centred:
            if feature_mean is None:
                raise ValueError("the centred linear prior needs the grid mean of its features")
            change = change - (np.hstack([self.lags, self.fit]) @ np.asarray(feature_mean, np.float64))[:, None, None]
        return change


def known_feature_mean(lags: np.ndarray, fit_change: np.ndarray) -> np.ndarray:
    """Mean (lookback + steps,) mm of the learned prior's features, the lags (lookback, h,
    w) and the history fit's changes (steps, h, w), over the cells where all are known;
    zeros (no centring) where none is."""
    known = np.isfinite(lags).all(axis=0) & np.isfinite(fit_change).all(axis=0)
    if not known.any():
        return np.zeros(lags.shape[0] + fit_change.shape[0])
    return np.concatenate([lags[:, known], fit_change[:, known]]).mean(axis=1)


class FeatureMeans:
    """Grid means of the learned linear prior's features at each forecast origin, from a
    fixed sample of the grid's cells (:meth:`CubeReader.strided_cells`).

    The centred form of :class:`LinearPrior` corrects only each cell's departure from
    the scene: it is applied to the features minus their grid mean at the same
    forecast, so training patches, validation, calibration and tiled forecasts all
    subtract the same mean whatever part of the grid they read.

    Parameters
    ----------
    values : ndarray (n_times, n_cells)
        Displacement (mm) of the sampled cells, NaN masked.
    days : ndarray (n_times,)
    lookback, read_history, fit_epochs : int
        The prior's lags, the epochs read per sample (``TrainConfig.read_history``,
        at least the window) and the history fit's length.
    acceleration_ridge, step_days : float
        The history fit's penalty and the lag spacing (days).
    """

    def __init__(self, values, days, lookback, read_history, fit_epochs, acceleration_ridge, step_days):
        self.values = np.asarray(values, np.float32)
        self.days = np.asarray(days, np.float64)
        self.lookback, self.read_history, self.fit_epochs = int(lookback), int(read_history), int(fit_epochs)
        self.acceleration_ridge, self.step_days = float(acceleration_ridge), float(step_days)
        self._cache = {}

    def _features(self, last: int, target_days: np.ndarray):
        first = max(0, last + 1 - self.read_history)
        past, past_days = self.values[first : last + 1, :, None], self.days[first : last + 1]
        lags = lag_features(past, past_days, self.lookback, self.step_days)
        fit_from = max(0, len(past_days) - self.fit_epochs)
        coef = history_fit(past[fit_from:], past_days[fit_from:], past_days[-1], self.acceleration_ridge)
        return lags, history_eval(coef, target_days, past_days[-1]) - past[-1][None]

    def _mean(self, last: int, target_days: np.ndarray):
        """:meth:`at`'s mean, and the features (None when it was cached)."""
        key = (last, target_days.tobytes())
        if key in self._cache:
            return self._cache[key], None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            features = self._features(last, target_days)
            self._cache[key] = known_feature_mean(*features)
        return self._cache[key], features

    def at(self, last: int, target_days) -> np.ndarray:
        """Grid mean (lookback + steps,) mm of the features of the forecast from epoch
        ``last`` to ``target_days`` (zeros where no sampled cell knows them all)."""
        return self._mean(int(last), np.asarray(target_days, np.float64))[0]

    def at_samples(self, lasts, target_days) -> list:
        """:meth:`at` for each sample of a batch: its last input epoch and target days."""
        return [self.at(last, days) for last, days in zip(lasts, target_days)]

    def training_means(self, last: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """For a training sample from epoch ``last`` to the next ``steps`` epochs: the
        features' grid mean (:meth:`at`) and that (steps,) mm of the observed changes
        minus the history fit's, over the sampled cells whose features and targets are
        known (training's centred targets; zeros where none is)."""
        last = int(last)
        target_days = self.days[last + 1 : last + 1 + steps]
        mean, features = self._mean(last, target_days)
        if features is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                features = self._features(last, target_days)
        lags, fit_change = features
        change = (self.values[last + 1 : last + 1 + steps] - self.values[last][None])[:, :, None]
        seen = np.isfinite(lags).all(0) & np.isfinite(fit_change).all(0) & np.isfinite(change).all(0)
        if len(target_days) < steps or not seen.any():
            return mean, np.zeros(steps)
        return mean, (change - fit_change)[:, seen].mean(axis=1)


def grid_feature_means(reader: CubeReader, config, step_days: float) -> FeatureMeans | None:
    """The :class:`FeatureMeans` of ``reader``'s grid for ``config``'s (a ``TrainConfig``)
    centred linear prior, None when it has none."""
    prior = config.linear_prior
    if prior is None or not prior.centred:
        return None
    return FeatureMeans(
        reader.strided_cells(),
        reader.days,
        prior.lookback,
        max(config.read_history, config.window),
        config.fit_history,
        config.acceleration_ridge or 0.0,
        step_days,
    )


def prepare_batch(
    histories,
    history_days,
    window: int,
    target_days: np.ndarray,
    norm: Normalisation,
    use_prior: bool,
    acceleration_ridge: float = 0.0,
    lag_prior: LinearPrior | None = None,
    fit_epochs: int | None = None,
    feature_means: list | None = None,
):
    """Network inputs for a batch of samples.

    Parameters
    ----------
    histories : list of ndarray (n_hist_i, h, w)
        Displacement (mm) of each sample's past, ending with its last input epoch;
        the last ``window`` epochs are the input window.
    history_days : list of ndarray (n_hist_i,)
        Their dates (days).
    window : int
    target_days : ndarray (n, steps)
        Dates of the epochs to forecast.
    norm : Normalisation
    use_prior : bool
        Compute the history prior (see module docstring).
    acceleration_ridge : float
        Penalty on the prior's acceleration (:func:`history_fit`).
    lag_prior : LinearPrior or None
        The learned linear prior (see module docstring): where its inputs are observed
        and the leads are regular, it replaces the history fit's change.
    fit_epochs : int or None
        The history fit reads only this many last epochs of each history (None: all);
        the learned linear prior's lags may reach further back.
    feature_means : list of ndarray (lookback + steps,), optional
        The centred linear prior's grid means of its features at each sample's forecast
        (:meth:`FeatureMeans.at`); needed with a centred ``lag_prior``.

    Returns
    -------
    x : (n, window, N_CHANNELS, h, w) float32
    leads : (n, steps) float32
    prior : (n, steps, h, w) float32
        Normalised change from the last epoch predicted by the history fit (0 if none).
    level : (n, 1, h, w) float32
        Last input epoch divided by the scale (0 where masked): ``level + prior`` is the
        history fit's forecast, which the network filters spatially.
    reference : (n, h, w) float32
        Last input epoch (mm, NaN where masked).
    """
    block = np.stack([hist[-window:] for hist in histories]).astype(np.float32)
    in_days = np.stack([d[-window:] for d in history_days])
    x, reference = build_inputs(block, in_days, norm)
    n, steps = target_days.shape
    prior = np.zeros((n, steps, *block.shape[2:]), dtype=np.float32)
    scale = np.float32(norm.scale_mm)
    leads = leads_in_steps(target_days, in_days[:, -1], norm)
    if use_prior:
        for i, (hist, days) in enumerate(zip(histories, history_days)):
            fit_from = 0 if fit_epochs is None else max(0, len(days) - int(fit_epochs))
            coef = history_fit(hist[fit_from:], days[fit_from:], days[-1], acceleration_ridge)
            fitted_in = history_eval(coef, days[-window:], days[-1])
            fitted_out = history_eval(coef, target_days[i], days[-1])
            resid = (block[i] - fitted_in) / scale
            x[i, :, 5] = np.where(np.isfinite(resid), resid, 0.0)
            change = fitted_out - reference[i][None]
            learned = None
            if lag_prior is not None:
                mean = None if feature_means is None else feature_means[i]
                learned = lag_prior.change(hist, days, leads[i], norm.step_days, change, mean)
            if learned is not None:
                change = np.where(np.isfinite(learned), learned, change)
            change = change / scale
            prior[i] = np.where(np.isfinite(change), change, 0.0)
    level = np.where(np.isfinite(reference), reference / scale, 0.0).astype(np.float32)[:, None]
    return x, leads, prior, level, reference


def advection_input(
    histories, history_days, window: int, target_days: np.ndarray, norm: Normalisation, steps: int, max_shift: int
) -> np.ndarray:
    """The advected recent motion of a batch (decoder input of models with ``advection``).

    Same arguments as :func:`prepare_batch` (``steps`` is the model's horizon, which sets
    the matched span; ``max_shift`` the search radius, cells). Reads only the input
    windows. See :mod:`insar_raster.forecast.advection`.

    Returns
    -------
    ndarray (n, steps, h, w) float32
        Forecast change from the last input epoch, divided by the scale (0 where masked).
    """
    from insar_raster.forecast.advection import advected_change

    block = np.stack([hist[-window:] for hist in histories]).astype(np.float32)
    in_days = np.stack([d[-window:] for d in history_days])
    change, _ = advected_change(block, in_days, target_days, norm.step_days, steps, max_shift)
    return (change / np.float32(norm.scale_mm)).astype(np.float32)
