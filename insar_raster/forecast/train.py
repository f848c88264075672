"""Training: random spatio-temporal patches, masked MSE, Adam, early stopping.

- Samples are the windows of :func:`insar_raster.forecast.windows.chronological_split`:
  training draws only ``split.train`` samples (all their targets are training epochs),
  early stopping reads only ``split.val``; ``split.test`` is never touched.
- Normalisation (:class:`~insar_raster.forecast.data.Normalisation`) is computed from
  the training epochs ``[0, split.train_end)`` only and stored with the model.
- Each training step reads ``batch_size`` random (sample, patch) pairs, so the cost per
  epoch does not depend on the grid size and a fully convolutional model learns local
  dynamics that transfer to any grid. Random flips augment the patches (ground motion
  has no preferred map orientation).
- Deterministic on CPU for a given ``seed``: seeded ``numpy.random.Generator`` for
  patches, ``torch.manual_seed`` and deterministic algorithms for the network.
- Lazy cubes: a cube larger than ``in_memory_bytes`` (default
  :data:`insar_raster.forecast.data.IN_MEMORY_BYTES`) is never loaded whole; each patch
  reads only its (time, y, x) window from the .zarr/.nc (dask or xarray lazy arrays).
  The history fit is per patch and the normalisation is computed in row bands, so the
  result is the same as on the in-memory path.
- Multi-GPU / multi-process: launched by ``torchrun`` (``WORLD_SIZE`` > 1), training
  uses ``torch.nn.parallel.DistributedDataParallel`` (NCCL on CUDA, gloo on CPU). Every
  rank draws the same global random batch from the shared seed and prepares only its
  share (``batch[rank::world_size]``, like a ``DistributedSampler``); gradients,
  validation and training losses are summed over ranks, so all ranks take the same
  early-stopping decisions and end with the same weights. Only rank 0 logs and shows
  progress; writing the model file is the caller's job (see :func:`is_main_process`).
  See docs/training.md.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import xarray as xr

from insar_raster import __version__
from insar_raster.errors import InputError
from insar_raster.forecast.cadence import CADENCE_SHARE, cadence_view
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import (
    ACCELERATION_RIDGES,
    LAG_PRIOR_MARGIN,
    LAG_PRIOR_RIDGES,
    N_CHANNELS,
    PRIOR_HISTORIES,
    CubeReader,
    FeatureMeans,
    Normalisation,
    advection_input,
    build_targets,
    grid_feature_means,
    grid_of,
    history_eval,
    history_fit,
    lag_features,
    prepare_batch,
    regular_leads,
)
from insar_raster.forecast.windows import ChronoSplit, chronological_split, lookback_epochs
from insar_raster.io.layout import is_geographic
from insar_raster.models import build_model

log = logging.getLogger("insar_raster")


@dataclass(frozen=True)
class _World:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    owns_group: bool = False  # this call initialised the process group (and ends it)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, draw: tuple) -> tuple:
        """This rank's share of a globally drawn batch (every ``world_size``-th patch)."""
        if not self.distributed:
            return draw
        return tuple(None if a is None else a[self.rank :: self.world_size] for a in draw)


def is_main_process() -> bool:
    """False on the ranks > 0 of a ``torchrun`` job: only rank 0 should write outputs."""
    return int(os.environ.get("RANK", "0")) == 0


def _world_from_env() -> _World:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _World()
    return _World(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))),
    )


def _start_distributed(world: _World, device):
    """Join the ``torchrun`` process group (NCCL on CUDA, gloo on CPU); pick this rank's GPU."""
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    if dist.get_world_size() != world.world_size:
        raise RuntimeError(f"process group has {dist.get_world_size()} ranks, WORLD_SIZE says {world.world_size}")
    return replace(world, rank=dist.get_rank(), owns_group=owns), device


def _all_sum(world: _World, values, device) -> list[float]:
    """Sum floats over all ranks (identity when not distributed)."""
    if not world.distributed:
        return [float(v) for v in values]
    import torch
    import torch.distributed as dist

    buffer = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return buffer.cpu().tolist()


def _average_gradients(params, world: _World) -> None:
    """Average gradients over all ranks (what DDP does for the parameters it wraps)."""
    import torch.distributed as dist

    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world.world_size


#: The prior filter (stage 1) has a handful of parameters on a convex loss: it takes a
#: larger step than the network.
FILTER_LR_FACTOR = 10.0
#: (Sample, patch) reads and about how many (sample, pixel) rows of them the learned
#: linear prior is fitted on (:func:`_lag_prior_rows`): the rows of 64 patches made the
#: map depend on the draw (`urban` seed 3, the prior alone against the truth on the test
#: epochs: 1.55-1.61 mm over three draws; 1.48-1.52 with 1024 reads of ~100 cells each,
#: see benchmarks/README.md, the learned linear prior). A lazy cube reads 1024 windows.
LAG_PRIOR_PATCHES = 1024
LAG_PRIOR_ROWS = 100_000
#: Relative validation-MSE gain a shorter prior history needs over the longest one.
PRIOR_HISTORY_MARGIN = 0.05


def resolve_device(device: str):
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an input error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError(
            None, "CUDA requested but no CUDA device is available", "use device='cpu' or device='auto'", param="device"
        )
    if device not in ("cpu", "cuda"):
        raise InputError(None, f"unknown device {device!r}", "use auto, cpu or cuda", param="device")
    return torch.device(device)


def limit_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads to ``threads`` or the cores available (at most 8)."""
    import torch

    if threads is None:
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            available = os.cpu_count() or 1
        threads = min(available, 8)
    torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()


def _model_hparams(
    config: TrainConfig, grid_shape: tuple[int, int], resolution_m: float = 0.0, step_days: float = 0.0
) -> dict:
    if config.arch == "paper":
        size = [max(8, min(config.paper_input_size, n) // 8 * 8) for n in grid_shape]
        return {
            "in_channels": N_CHANNELS,
            "steps": config.steps,
            "window": config.window,
            "input_size": size,
            "lstm_hidden": config.paper_lstm_hidden,
        }
    hparams = {
        "in_channels": N_CHANNELS,
        "steps": config.steps,
        "window": config.window,
        "hidden": config.hidden,
        "features": config.features,
    }
    if config.advection:
        from insar_raster.forecast.advection import shift_cells

        hparams["advection"] = shift_cells(resolution_m, step_days, config.steps, config.window)
    return hparams


class _Batch(NamedTuple):
    """Network inputs (``x``, ``leads``, ``prior``, ``level``) and targets of a batch."""

    x: np.ndarray
    leads: np.ndarray
    prior: np.ndarray
    level: np.ndarray
    y: np.ndarray
    valid: np.ndarray
    advect: np.ndarray | None = None  # models with ``advection`` only

    @property
    def inputs(self) -> tuple:
        base = (self.x, self.leads, self.prior, self.level)
        return base if self.advect is None else (*base, self.advect)


#: Share of valid cells a training or validation patch needs.
MIN_VALID_SHARE = 0.1


def _origins_with_data(valid: np.ndarray, patch) -> np.ndarray | None:
    """Flat indices (row * n_cols + col) of the patch origins whose patch has at least
    :data:`MIN_VALID_SHARE` valid cells; None when every origin has (the plain draw)."""
    height, width = valid.shape
    ph, pw = (min(p, n) for p, n in zip(patch, (height, width)))
    integral = np.pad(np.cumsum(np.cumsum(valid, axis=0, dtype=np.int64), axis=1), ((1, 0), (1, 0)))
    count = integral[ph:, pw:] - integral[:-ph, pw:] - integral[ph:, :-pw] + integral[:-ph, :-pw]
    ok = count >= MIN_VALID_SHARE * ph * pw
    if ok.all() or not ok.any():
        return None
    return np.flatnonzero(ok)


class _MotionWeights:
    """Where and when the recent motion changes: the (sample, patch) pairs training favours.

    A front reaches few cells at a time and a pumping rate switches on few dates, so
    uniformly drawn patches show the network mostly quiet, curve-like motion that its
    history prior already forecasts. For every training sample (last input epoch
    ``t0``) and patch origin (on a lattice of ``stride`` cells) the weight is the mean
    over the patch of the squared change of rate over the *input* epochs,
    ``(d(t0) - d(t0 - k)) - (d(t0 - k) - d(t0 - 2k))`` with ``k = steps``: large where a
    front passes or a rate switched, at the noise level elsewhere. The weights read
    inputs only (never a target), so the network's optimum for each input is unchanged
    (weighting by the inputs alone does not move a conditional mean); the validation
    patches stay uniform, so early stopping and the "network kept" decision still
    score every cell alike.

    Attributes
    ----------
    p : ndarray or None
        Probabilities of the (sample, origin row, origin column) lattice, flattened
        (None: no weight anywhere, e.g. a static cube).
    share : float
        Share of the training patches drawn from ``p``.
    """

    def __init__(
        self,
        reader: CubeReader,
        starts: np.ndarray,
        window: int,
        steps: int,
        patch,
        share: float,
        origins: np.ndarray | None = None,
    ):
        from scipy.ndimage import uniform_filter

        n_times, height, width = reader.shape
        ph, pw = (min(p, n) for p, n in zip(patch, (height, width)))
        self.share = float(share)
        self.starts = np.asarray(starts, dtype=int)
        self.stride = max(1, min(ph, pw) // 8)
        self.origin_rows = np.arange(0, max(1, height - ph + 1), self.stride)
        self.origin_cols = np.arange(0, max(1, width - pw + 1), self.stride)
        self.limits = (max(1, height - ph + 1), max(1, width - pw + 1))
        centre_rows = np.minimum(self.origin_rows + ph // 2, height - 1)
        centre_cols = np.minimum(self.origin_cols + pw // 2, width - 1)
        frames: dict[int, np.ndarray] = {}

        def frame(t):
            if t not in frames:
                frames[t] = reader.read(t, t + 1, 0, height, 0, width)[0].astype(np.float64)
            return frames[t]

        weights = np.zeros((len(self.starts), len(self.origin_rows), len(self.origin_cols)))
        for i, s in enumerate(self.starts):
            t0 = int(s) + window - 1
            if t0 - 2 * steps < 0:
                continue
            change = frame(t0) - 2 * frame(t0 - steps) + frame(t0 - 2 * steps)
            energy = uniform_filter(np.where(np.isfinite(change), change, 0.0) ** 2, (ph, pw), mode="constant")
            weights[i] = energy[np.ix_(centre_rows, centre_cols)]
            for t in [t for t in frames if t < t0 - 2 * steps]:
                del frames[t]  # starts are increasing: older frames are not needed again
        if origins is not None:  # only origins whose patch has data (see _origins_with_data)
            ok = np.zeros(self.limits, dtype=bool).ravel()
            ok[origins] = True
            weights *= ok.reshape(self.limits)[np.ix_(self.origin_rows, self.origin_cols)][None]
        total = weights.sum()
        self.shape = weights.shape
        self.p = (weights / total).ravel() if total > 0 and np.isfinite(total) else None

    def draw(self, rng: np.random.Generator, k: int):
        """``k`` (starts, rows, cols) drawn from the weights, jittered within the lattice."""
        idx = rng.choice(self.p.size, size=k, p=self.p)
        si, iy, ix = np.unravel_index(idx, self.shape)
        rows = np.minimum(self.origin_rows[iy] + rng.integers(0, self.stride, k), self.limits[0] - 1)
        cols = np.minimum(self.origin_cols[ix] + rng.integers(0, self.stride, k), self.limits[1] - 1)
        return self.starts[si], rows, cols


class _PatchSampler:
    """Draws (sample, patch) batches from a cube, as network tensors."""

    def __init__(
        self,
        reader: CubeReader,
        norm: Normalisation,
        config: TrainConfig,
        patch: tuple[int, int],
        advection: int = 0,
        valid: np.ndarray | None = None,
    ):
        self.reader, self.norm, self.config = reader, norm, config
        self.advection = int(advection)
        self.window, self.steps = config.window, config.steps
        self.patch = patch
        # Patch origins with at least MIN_VALID_SHARE valid cells (None: all of them), so
        # that sparse grids (an EGMS tile is ~19 % valid, in clusters) do not train on
        # empty patches.
        self.origins = None if valid is None else _origins_with_data(valid, patch)
        self._feature_means = {}  # the centred linear prior's, per prior form

    def batch(self, starts, rows, cols, flips=None):
        window, steps = self.window, self.steps
        ph, pw = self.patch
        history = self.config.read_history
        hists, hist_days, targets = [], [], []
        for i, (s, y0, x0) in enumerate(zip(starts, rows, cols)):
            s, y0, x0 = int(s), int(y0), int(x0)
            first = max(0, s + window - max(history, window))
            block = self.reader.read(first, s + window + steps, y0, y0 + ph, x0, x0 + pw)
            if block.shape[1:] != (ph, pw):  # grid smaller than the patch: pad as masked
                block = np.pad(
                    block, ((0, 0), (0, ph - block.shape[1]), (0, pw - block.shape[2])), constant_values=np.nan
                )
            if flips is not None:
                block = block[:, ::-1] if flips[i, 0] else block
                block = block[:, :, ::-1] if flips[i, 1] else block
            hists.append(block[:-steps])
            targets.append(block[-steps:])
            hist_days.append(self.reader.days[first : s + window])
        target_days = self.reader.days[np.asarray(starts)[:, None] + window + np.arange(steps)[None, :]]
        x, leads, prior, level, ref = prepare_batch(
            hists,
            hist_days,
            window,
            target_days,
            self.norm,
            self.config.use_prior,
            self.config.acceleration_ridge or 0.0,
            self.config.linear_prior,
            self.config.fit_history,
            self.feature_means(starts, target_days),
        )
        y, valid = build_targets(np.stack(targets), ref, self.norm)
        advect = None
        if self.advection:
            advect = advection_input(hists, hist_days, window, target_days, self.norm, steps, self.advection)
        return _Batch(x, leads, prior, level, y, valid, advect)

    def grid_means(self) -> FeatureMeans | None:
        """The grid's :class:`~insar_raster.forecast.data.FeatureMeans` for the current
        config's centred linear prior (None: it has none)."""
        config, prior = self.config, self.config.linear_prior
        if prior is None or not prior.centred:
            return None
        key = (config.read_history, config.fit_history, config.acceleration_ridge, config.window, prior.lookback)
        if key not in self._feature_means:
            self._feature_means[key] = grid_feature_means(self.reader, config, self.norm.step_days)
        return self._feature_means[key]

    def feature_means(self, starts, target_days) -> list | None:
        """The centred linear prior's grid means at the samples ``starts`` (None: no such prior)."""
        means = self.grid_means()
        if means is None:
            return None
        return means.at_samples(np.asarray(starts, int) + self.window - 1, target_days)

    def draw_indices(
        self, rng: np.random.Generator, starts_pool: np.ndarray, n: int, flip: bool, weights: "_MotionWeights" = None
    ):
        """Random (starts, rows, cols, flips) of ``n`` patches; reads nothing.

        Uniform over samples and patch origins; with ``weights``, the share
        ``weights.share`` of the patches is redrawn from them instead (the uniform draws
        come first, so the uniform part is the same random stream either way).
        """
        _, height, width = self.reader.shape
        ph, pw = self.patch
        starts = rng.choice(starts_pool, size=n)
        if self.origins is None:
            rows = rng.integers(0, max(1, height - ph + 1), size=n)
            cols = rng.integers(0, max(1, width - pw + 1), size=n)
        else:
            rows, cols = np.divmod(rng.choice(self.origins, size=n), max(1, width - pw + 1))
        flips = rng.integers(0, 2, size=(n, 2)).astype(bool) if flip else None
        if weights is not None and weights.p is not None:
            pick = rng.random(n) < weights.share
            k = int(pick.sum())
            if k:
                starts, rows, cols = starts.copy(), rows.copy(), cols.copy()
                starts[pick], rows[pick], cols[pick] = weights.draw(rng, k)
        return starts, rows, cols, flips

    def draw(self, rng: np.random.Generator, starts_pool: np.ndarray, n: int, flip: bool):
        return self.batch(*self.draw_indices(rng, starts_pool, n, flip))


def _prior_sse(batch: _Batch) -> tuple[float, float]:
    """Squared error of a batch's prior alone (normalised units) and its count of valid targets."""
    return float(((batch.prior - batch.y).astype(np.float64) ** 2 * batch.valid).sum()), float(batch.valid.sum())


def _choose_acceleration_ridge(
    sampler: _PatchSampler, val_draw: tuple, world: _World, device
) -> tuple[TrainConfig, _Batch]:
    """The config with the history length and acceleration ridge whose prior alone scores
    best on validation, and the validation batch built with it.

    History lengths are :data:`~insar_raster.forecast.data.PRIOR_HISTORIES` up to
    ``history_epochs`` (only the configured ``prior_history`` when it is set). Sets the
    config on ``sampler`` too. Under torchrun the losses are summed over the ranks'
    shares, so every rank picks the same value.
    """
    config = sampler.config
    if config.prior_history is not None:
        histories = [min(int(config.prior_history), config.history_epochs)]
    else:
        histories = sorted(
            {min(h, config.history_epochs) for h in PRIOR_HISTORIES if h >= config.window} | {config.history_epochs},
            reverse=True,
        )
    candidates, batches, losses = [], [], []
    for history in histories:
        for ridge in ACCELERATION_RIDGES:
            sampler.config = replace(config, prior_history=history, acceleration_ridge=ridge)
            batch = sampler.batch(*val_draw)
            candidates.append(sampler.config)
            batches.append(batch)
            losses.append(_all_sum(world, _prior_sse(batch), device))
    # Ties go to the first candidate: the longest history, the lowest ridge. A shorter
    # history must beat the longest one's best by PRIOR_HISTORY_MARGIN: on validation a
    # shorter fit can chase a few dates' noise (seasonal scene: 48 epochs won by a hair on
    # the observations and lost a quarter of the skill against the truth), while after a
    # real change point it wins by far more (fronts, switching: 20-40 %).
    mse = np.array([sse / max(count, 1.0) for sse, count in losses])
    longest = np.array([c.prior_history == histories[0] for c in candidates])
    best = int(np.argmin(mse))
    reference = int(np.flatnonzero(longest)[np.argmin(mse[longest])])
    if mse[best] > (1.0 - PRIOR_HISTORY_MARGIN) * mse[reference]:
        best = reference
    log.debug(
        "history prior candidates (history, ridge, MSE): %s",
        [(c.prior_history, c.acceleration_ridge, round(float(v), 5)) for c, v in zip(candidates, mse)],
    )
    sampler.config = candidates[best]
    return sampler.config, batches[best]


def _lag_prior_rows(
    sampler: _PatchSampler,
    rng: np.random.Generator,
    starts: np.ndarray,
    lookback: int,
    fit_epochs: int,
    acceleration_ridge: float,
    origins: bool = False,
):
    """Training rows of the learned linear prior: ``(lags, fit_changes, changes, whole)``,
    (n, lookback) :func:`~insar_raster.forecast.data.lag_features`, (n, steps) changes of
    the history fit (over ``fit_epochs`` epochs up to the last input one, penalty
    ``acceleration_ridge``), (n, steps) observed changes (mm), and (n,) whether the
    sample had all ``fit_epochs`` epochs for its fit, as forecasts do (an early sample's
    fit reads fewer, and errs more). With ``origins``, a fifth (n,) array: each row's last
    input epoch (benchmarks' blocked cross-validation by time).

    About :data:`LAG_PRIOR_ROWS` (sample, pixel) rows whose lookback, fit and targets are
    known and whose leads are regular: the cells of :data:`LAG_PRIOR_PATCHES` random
    (sample, patch) reads, each cell kept with the same chance. The patch origins reach
    a patch side beyond the grid's top and left edges (the patches clipped to the grid),
    so that every cell is drawn equally often: patches inside the grid cover a central
    cell a patch side times more often than one in the middle of an edge, and a map
    fitted on them weighs the centre's motion (`urban` seed 3, the prior alone against
    the truth on the test epochs: 1.54 mm from 1024 such patches, 1.49-1.50 with every
    cell drawn alike; benchmarks/README.md, the learned linear prior).
    """
    window, steps, step_days = sampler.window, sampler.steps, sampler.norm.step_days
    ph, pw = sampler.patch
    _, height, width = sampler.reader.shape
    n = LAG_PRIOR_PATCHES
    draw_starts = rng.choice(starts, size=n)
    rows0 = rng.integers(1 - ph, height, size=n)
    cols0 = rng.integers(1 - pw, width, size=n)
    share = min(1.0, LAG_PRIOR_ROWS / (n * ph * pw))
    parts = [(np.zeros((0, lookback)), np.zeros((0, steps)), np.zeros((0, steps)), np.zeros(0, bool), np.zeros(0, int))]
    for s, r0, c0 in zip(draw_starts, rows0, cols0):
        last = int(s) + window - 1
        first = max(0, last - max(lookback, int(fit_epochs) - 1))
        days = sampler.reader.days[first : last + 1 + steps]
        if not regular_leads((days[-steps:] - days[-steps - 1]) / step_days):
            continue
        y0, y1, x0, x1 = max(0, int(r0)), min(height, int(r0) + ph), max(0, int(c0)), min(width, int(c0) + pw)
        pick = rng.random((y1 - y0) * (x1 - x0)) < share
        if not pick.any():
            continue
        block = sampler.reader.read(first, last + 1 + steps, y0, y1, x0, x1).reshape(len(days), -1)[:, pick]
        past, past_days = block[:-steps, :, None], days[:-steps]
        lags = lag_features(past, past_days, lookback, step_days)[..., 0].T
        fit_from = max(0, len(past_days) - int(fit_epochs))
        coef = history_fit(past[fit_from:], past_days[fit_from:], past_days[-1], acceleration_ridge)
        fit_change = (history_eval(coef, days[-steps:], past_days[-1])[..., 0] - block[-steps - 1]).T
        change = (block[-steps:] - block[-steps - 1]).T.astype(np.float64)
        rows = np.isfinite(lags).all(axis=1) & np.isfinite(fit_change).all(axis=1) & np.isfinite(change).all(axis=1)
        whole = np.full(int(rows.sum()), last + 1 >= int(fit_epochs))
        parts.append((lags[rows], fit_change[rows], change[rows], whole, np.full(len(whole), last)))
    return tuple(np.concatenate(p) for p in zip(*parts))[: 5 if origins else 4]


def _fit_lag_prior(lags: np.ndarray, fit_change: np.ndarray, change: np.ndarray, whole: np.ndarray) -> list:
    """Weights of the learned linear prior, one ``(lags, fit)`` pair ((steps, lookback),
    (steps, steps) or None) per ridge of :data:`~insar_raster.forecast.data.LAG_PRIOR_RIDGES`
    (empty: too few rows), by ridge least squares over the rows of :func:`_lag_prior_rows`
    (its four arrays).

    Residual form (``fit`` weights): what each pixel's next ``steps`` changes add to the
    history fit's, on its lags and the fit's changes; the ridge shrinks toward the
    history fit. It learns only from samples whose fit read all ``fit_epochs`` epochs,
    as forecasts' do: a map learned where the fit reads less learns to distrust it, and
    on a scene in the fit's own form (``mixed``, 100 epochs, whose fit reads them all)
    it was kept on validation and 28 % worse than the fit against the truth. Without
    enough such rows (a fit longer than the training years), the lags-only form: the
    next changes on the lags alone, over every row (``fit`` None).
    """
    lookback, steps = lags.shape[1], change.shape[1]
    residual = int(whole.sum()) >= 10 * (lookback + steps)
    if residual:
        f, t = np.hstack([lags[whole], fit_change[whole]]), change[whole] - fit_change[whole]
    elif len(lags) >= 10 * lookback:
        f, t = lags, change
    else:
        return []
    gram, cross = f.T @ f / len(f), f.T @ t / len(f)
    scale = np.trace(gram) / f.shape[1]
    weights = [np.linalg.solve(gram + r * scale * np.eye(f.shape[1]), cross).T for r in LAG_PRIOR_RIDGES]
    return [(w[:, :lookback], w[:, lookback:] if residual else None) for w in weights]


def _centred_rows(means: FeatureMeans, lags, fit_change, change, origin):
    """The rows of :func:`_lag_prior_rows` (lags, fit changes, changes, from the last
    input epochs ``origin``) for the centred linear prior: features minus their grid
    mean at the same origin, and changes such that ``change - fit_change`` is the
    residual target minus its grid mean (:class:`~insar_raster.forecast.data.FeatureMeans`)."""
    lookback, steps = lags.shape[1], change.shape[1]
    feature = np.zeros((len(lags), lookback + steps))
    residual = np.zeros((len(lags), steps))
    for last in np.unique(origin):
        rows = origin == last
        feature[rows], residual[rows] = means.training_means(int(last), steps)
    centred_fit = fit_change - feature[:, lookback:]
    return lags - feature[:, :lookback], centred_fit, change - fit_change - residual + centred_fit


def _joined_batch(parts) -> _Batch:
    """One batch from ``(sampler, draw)`` pairs (a ``(None, batch)`` pair is a batch
    already built); empty draws (a rank's share of a small draw) are skipped."""
    batches = [draw if sampler is None else sampler.batch(*draw) for sampler, draw in parts if len(draw[0])]
    if len(batches) == 1:
        return batches[0]
    return _Batch(*(None if a is None else np.concatenate(arrays) for a, arrays in zip(batches[0], zip(*batches))))


def _training_starts(split: ChronoSplit, config: TrainConfig) -> np.ndarray:
    """Training samples: all of ``split.train``, or with a prior those whose history is
    long enough (``config.min_history_fraction``; at least the last sample)."""
    if not config.use_prior:
        return split.train
    needed = config.min_history_fraction * min(split.train_end, config.fit_history)
    long_enough = split.train[split.train + config.window >= needed]
    return long_enough if len(long_enough) else split.train[-1:]


class _Score(NamedTuple):
    """Validation score: masked MSE over all patches, and per target date (NaN: no cell)."""

    loss: float
    per_date: np.ndarray


def _beats(candidate: _Score, incumbent: _Score, config: "TrainConfig") -> bool:
    """Whether new weights are kept: ``min_improvement`` lower loss, and a gain that holds
    across validation dates (mean gain > ``significance`` standard errors), not one that
    a few dates' noise produced. With fewer than 3 dates only the first test applies."""
    if not candidate.loss < incumbent.loss * (1.0 - config.min_improvement):
        return False
    both = np.isfinite(candidate.per_date) & np.isfinite(incumbent.per_date)
    gain = incumbent.per_date[both] - candidate.per_date[both]
    if config.significance <= 0 or len(gain) < 3:
        return True
    return bool(gain.mean() > config.significance * gain.std(ddof=1) / math.sqrt(len(gain)))


def _masked_mse(pred, target, valid, weight=None):
    valid = valid.to(pred.dtype)
    if weight is not None:
        valid = valid * weight
    return ((pred - target) ** 2 * valid).sum() / valid.sum().clamp_min(1.0)


#: Cap of the focus weights relative to their batch mean (see :func:`_focus_weights`).
FOCUS_CAP = 10.0


def _focus_weights(x, steps: int, focus: float):
    """Per-cell loss weights (batch, 1, H, W) from the input epochs alone (``TrainConfig.focus``).

    The change of rate over the window, ``d(t0) - 2 d(t0 - k) + d(t0 - 2k)`` with ``k =
    (window - 1) // 2`` (channel 0 is the displacement relative to the last epoch), is
    squared and max-pooled over ``2 steps + 1`` cells: large on and ahead of an
    advancing face (its neighbours started to sink) and where a rate switched, at the
    noise level elsewhere. ``1 + focus * e / mean(e)``, capped at ``1 + FOCUS_CAP focus``.
    """
    import torch.nn.functional as F

    window = x.shape[1]
    k = max(1, (window - 1) // 2)
    if window < 2 * k + 1:
        return None
    rel = x[:, :, 0]
    accel = rel[:, -1] - 2 * rel[:, -1 - k] + rel[:, -1 - 2 * k]
    energy = F.max_pool2d((accel**2)[:, None], 2 * steps + 1, stride=1, padding=steps)
    mean = energy.mean().clamp_min(1e-12)
    return 1.0 + focus * (energy / mean).clamp(max=FOCUS_CAP)


def fit_network(
    cube: xr.Dataset,
    config: TrainConfig,
    split: ChronoSplit | None = None,
    progress: bool = True,
    in_memory_bytes: int | None = None,
    cadence="auto",
) -> tuple:
    """Train the network of ``config`` on ``cube`` (what :meth:`Forecaster.fit` runs).

    ``cadence``: the record at the forecast step (:func:`~insar_raster.forecast.cadence.cadence_view`
    of ``cube`` and the split) when the caller has made it, None for none; ``"auto"`` makes it.

    Returns
    -------
    tuple
        ``(model, config, normalisation, grid, hparams, history, metadata)``, the
        arguments of :meth:`Forecaster.from_fitted`; ``config`` holds the choices made
        while fitting (the history prior's ``acceleration_ridge``).
    """
    config = config or TrainConfig()
    if config.arch == "ensemble":
        raise ValueError("an ensemble is trained member by member: use Forecaster(config).fit or train_model")
    n_times = cube.sizes["time"]
    if split is None:
        try:
            split = chronological_split(n_times, config.window, config.steps, config.val_fraction, config.test_fraction)
        except ValueError as exc:
            raise InputError(None, f"cannot split the cube for training: {exc}") from None
    if split.window != config.window or split.steps != config.steps:
        raise ValueError(
            f"split has window={split.window}, steps={split.steps}; config has {config.window}, {config.steps}"
        )
    if len(split.train) == 0:
        raise InputError(None, "no training sample in the split", "use more epochs or a shorter window or fewer steps")
    world = _world_from_env()
    val_starts = split.val if len(split.val) else split.train[-max(1, len(split.train) // 5) :]
    if not len(split.val) and world.main:
        log.warning("no validation samples: early stopping reads the last training samples")

    threads = config.threads
    if threads is None and world.distributed:  # share the cores between the local ranks
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:
            available = os.cpu_count() or 1
        threads = max(1, min(available // world.local_world_size, 8))
    threads = limit_threads(threads)
    device = resolve_device(config.device)
    if world.distributed:
        world, device = _start_distributed(world, device)
    # Subnormal floats (tiny activations and gradients late in training) take the slow
    # path of x86 CPUs: the paper model's epochs grew from 42 to ~120 CPU-s without this
    # (benchmarks/README.md, "Time and size"), with the same validation losses.
    import torch

    flushed = torch.set_flush_denormal(True)
    try:
        if isinstance(cadence, str):
            cadence = cadence_view(cube, split)
        if cadence is not None and world.main:
            log.info(
                "forecast step %g days, training epochs %g days apart: %d%% of the training patches and "
                "%d validation samples also at %g days (the record resampled)",
                cadence.step_days,
                cadence.native_step_days,
                round(100 * CADENCE_SHARE),
                len(cadence.split.val),
                cadence.step_days,
            )
        trainer = _Trainer(cube, config, split, val_starts, progress, in_memory_bytes, world, device, threads, cadence)
        return trainer.run()
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        if world.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


class _Trainer:
    """One training run of :func:`fit_network`, in named steps.

    Construction prepares everything the steps share (seeds, normalisation, the patch
    sampler, the model, the fixed validation patches); :meth:`run` then takes the steps
    in order: :meth:`fit_prior_filter` (stage 1, when the model has a history prior),
    :meth:`run_stage` for the network (stage 2), :meth:`summarise`. :meth:`validate`
    scores any forward pass on the validation patches; :meth:`run_stage` trains one set
    of parameters with early stopping on it. The random draws happen in this order
    (model init, validation patches, then one training draw per batch), so a ``seed``
    gives the same weights on every run.
    """

    def __init__(
        self, cube, config, split, val_starts, progress, in_memory_bytes, world, device, threads, cadence=None
    ):
        import torch

        self.config, self.split, self.world, self.device = config, split, world, device
        self.cadence = cadence  # CadenceView: the record also at the forecast step, or None
        self.progress, self.threads = progress, threads
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.norm = Normalisation.from_training_epochs(cube, split.train_end, config.steps)
        self.train_starts = _training_starts(split, config)
        self.cube, self.reader = cube, CubeReader(cube, in_memory_bytes)
        self._check_not_all_masked()
        _, height, width = self.reader.shape
        resolution = float(grid_of(cube)["resolution"][0])
        if config.advection and is_geographic(cube.rio.crs):  # its search radius is a front speed in m/yr
            raise InputError(
                None,
                f"the cube's CRS ({cube.rio.crs.to_string()}) is geographic (degrees); advection needs the cell size in"
                " metres (fronts up to 6 km/yr)",
                "grid the points again in a projected CRS (e.g. EPSG:3035, or the UTM zone), or reproject the cube",
                param="advection",
            )
        self.hparams = _model_hparams(config, (height, width), resolution, self.norm.step_days)
        self.model = build_model(config.arch, **self.hparams).to(device)
        if config.arch == "paper":
            patch = tuple(self.hparams["input_size"])
        else:
            patch = (min(config.patch_size, height), min(config.patch_size, width))
        last_train = split.train_end - 1  # which cells hold data: the last training epoch's mask
        valid = np.isfinite(self.reader.read(last_train, last_train + 1, 0, height, 0, width)[0])
        self.sampler = _PatchSampler(
            self.reader, self.norm, config, patch, self.hparams.get("advection", 0), valid=valid
        )
        self.cadence_sampler, self.cadence_starts = None, None
        if cadence is not None:
            # Same grid and normalisation (leads stay in training steps: 2, 4, ... at 12 days).
            self.cadence_sampler = _PatchSampler(
                CubeReader(cadence.cube, in_memory_bytes),
                self.norm,
                config,
                patch,
                self.hparams.get("advection", 0),
                valid=valid,
            )
            self.cadence_starts = _training_starts(cadence.split, config)
        self.lag_prior_stage = None  # set by _choose_lag_prior
        self._prepare_validation(val_starts)
        self.motion_weights = None
        if config.importance > 0:
            self.motion_weights = _MotionWeights(
                self.reader,
                np.sort(self.train_starts),
                config.window,
                config.steps,
                patch,
                config.importance,
                self.sampler.origins,
            )
        self.train_model = self.model  # what stage 2 calls: DDP-wrapped under torchrun
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=ids)
        self.n_batches = max(1, math.ceil(config.samples_per_epoch / config.batch_size))
        self.global_batch = max(config.batch_size, world.world_size)
        self._log_start()
        self._index_validation_dates()

    def _check_not_all_masked(self) -> None:
        n_times, height, width = self.reader.shape
        if (
            not np.isfinite(self.reader.read(0, 1, 0, height, 0, width)).any()
            and not np.isfinite(self.reader.read(n_times - 1, n_times, 0, height, 0, width)).any()
        ):
            raise InputError(None, "cube is entirely masked (NaN)")

    def _prepare_validation(self, val_starts) -> None:
        """Fixed validation patches (own generator: the same whatever the epoch count);
        under torchrun every rank draws the same patches and prepares its share. With a
        history prior and no ``acceleration_ridge`` given, chooses it (and the history
        length) here, updating ``self.config``."""
        config, world = self.config, self.world
        self.val_draw = self.sampler.draw_indices(
            np.random.default_rng([config.seed, 1]), val_starts, max(config.val_patches, world.world_size), flip=False
        )
        if config.use_prior and config.acceleration_ridge is None:
            self.config, self.val_batch = _choose_acceleration_ridge(
                self.sampler, world.shard(self.val_draw), world, self.device
            )
            if world.main:
                log.info(
                    "history prior: %d past epochs, acceleration ridge %g (lowest validation loss of "
                    "histories up to %d epochs x ridges %s)",
                    self.config.fit_history,
                    self.config.acceleration_ridge,
                    self.config.history_epochs,
                    ", ".join(f"{r:g}" for r in ACCELERATION_RIDGES),
                )
        else:
            self.val_batch = self.sampler.batch(*world.shard(self.val_draw))
        if self.config.learns_lag_prior and self.config.lag_prior is None:
            self._choose_lag_prior()
        self.cadence_val_draw = None
        if self.cadence is not None and len(self.cadence.split.val):
            self.cadence_sampler.config = self.config  # the history prior chosen above
            self.cadence_val_draw = self.cadence_sampler.draw_indices(
                np.random.default_rng([config.seed, 2]),
                self.cadence.split.val,
                max(config.val_patches, world.world_size),
                flip=False,
            )
            self.val_batch = _joined_batch(
                [(None, self.val_batch), (self.cadence_sampler, world.shard(self.cadence_val_draw))]
            )

    def _prior_mse(self, batch: _Batch) -> float:
        """Validation MSE of a batch's prior alone (normalised units, over every rank's share)."""
        sse, count = _all_sum(self.world, _prior_sse(batch), self.device)
        return sse / max(count, 1.0)

    def _choose_lag_prior(self) -> None:
        """Fit the learned linear prior on the training samples whose lookback is observed,
        in both forms (as fitted, and centred on the grid means of :func:`_centred_rows`),
        and keep the form and ridge scoring best on the validation patches, if it beats
        the history fit chosen before by :data:`~insar_raster.forecast.data.LAG_PRIOR_MARGIN`
        (updates ``self.config``, the samplers' and the validation batch).

        Why both: a map fitted to the whole error also learns the part every cell shares
        at a date (atmosphere, a scene-wide seasonal swing), which the lags of one cell
        predict badly; the centred map learns only each cell's departure from the scene
        and leaves the shared part to the history fit. Against the truth on the issue-12
        scenes (benchmarks/README.md, "The centred form in the library"): prior alone,
        the centred map 2-19 % better on 11 of 16 scene/seed pairs and up to 4 % worse on
        two; the whole default model with validation's pick, 9 of the 11 pairs it changes
        better (up to 16 %), `fronts` seed 1 11 % worse (its network, kept on top of the
        plain prior, gained less on top of the centred one).
        """
        config, world = self.config, self.world
        lookback = lookback_epochs(self.split, config.window, config.history_epochs - 1)
        starts = self.train_starts[self.train_starts + config.window >= lookback + 1]
        weights = []
        if len(starts):
            lags, fit, change, whole, origin = _lag_prior_rows(
                self.sampler,
                np.random.default_rng([config.seed, 3]),
                starts,
                lookback,
                config.fit_history,
                config.acceleration_ridge or 0.0,
                origins=True,
            )
            weights = [(w_lags, w_fit, False) for w_lags, w_fit in _fit_lag_prior(lags, fit, change, whole)]
            if weights and weights[0][1] is not None:
                self.sampler.config = replace(
                    config, lag_prior=weights[0][0], lag_prior_fit=weights[0][1], lag_prior_centred=True
                )
                centred = _centred_rows(self.sampler.grid_means(), lags, fit, change, origin)
                weights += [(w_lags, w_fit, True) for w_lags, w_fit in _fit_lag_prior(*centred, whole)]
        incumbent = self._prior_mse(self.val_batch)
        best = None
        for lags, fit, centred in weights:
            self.sampler.config = replace(config, lag_prior=lags, lag_prior_fit=fit, lag_prior_centred=centred)
            batch = self.sampler.batch(*world.shard(self.val_draw))
            mse = self._prior_mse(batch)
            if best is None or mse < best[0]:
                best = (mse, self.sampler.config, batch)
        kept = best is not None and best[0] < (1.0 - LAG_PRIOR_MARGIN) * incumbent
        if kept:
            _, self.config, self.val_batch = best
        self.sampler.config = self.config
        if best is None:
            return
        self.lag_prior_stage = {
            "lags": int(lookback),
            "form": "lags"
            if best[1].lag_prior_fit is None
            else ("residual, centred" if best[1].lag_prior_centred else "residual"),
            "val_rmse_mm": math.sqrt(best[0]) * self.norm.scale_mm,
            "val_history_fit_rmse_mm": math.sqrt(incumbent) * self.norm.scale_mm,
            "kept": bool(kept),
        }
        if world.main:
            log.info(
                "learned linear prior (%d lags, %s form): validation RMSE %.3f mm against the history fit's "
                "%.3f mm: %s",
                lookback,
                self.lag_prior_stage["form"],
                self.lag_prior_stage["val_rmse_mm"],
                self.lag_prior_stage["val_history_fit_rmse_mm"],
                "kept" if kept else "not kept",
            )

    def _log_start(self) -> None:
        if not self.world.main:
            return
        n_times, height, width = self.reader.shape
        log.info(
            "training %s on %d samples (%dx%d cells, %d epochs, %s), validating on %d; %d CPU threads, %s%s",
            self.config.arch,
            len(self.train_starts),
            height,
            width,
            n_times,
            "read lazily by patch" if self.reader.lazy else "in memory",
            len(self.split.val),
            self.threads,
            self.device,
            f", {self.world.world_size} DDP ranks" if self.world.distributed else "",
        )

    def _index_validation_dates(self) -> None:
        """Validation is scored date by date: each date's atmosphere is one draw of noise
        shared by all its cells, so the dates, not the cells, are the independent samples."""
        import torch

        leads = self.config.window + np.arange(self.config.steps)[None, :]
        parts = [(self.reader, self.val_draw)]
        if self.cadence_val_draw is not None:
            parts.append((self.cadence_sampler.reader, self.cadence_val_draw))
        every = np.concatenate([reader.days[draw[0][:, None] + leads] for reader, draw in parts])
        local = np.concatenate([reader.days[self.world.shard(draw)[0][:, None] + leads] for reader, draw in parts])
        self.val_dates = np.unique(every)  # days: the two views share the dates they both hold
        self.date_index = torch.from_numpy(np.searchsorted(self.val_dates, local)).to(self.device)
        self.val = self._to_tensors(self.val_batch)  # fixed: converted (and moved to the device) once

    def _to_tensors(self, batch: _Batch) -> _Batch:
        import torch

        return _Batch(
            *(None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in batch)
        )

    def validate(self, forward) -> _Score:
        """Masked MSE of ``forward`` on the validation patches, overall and per date
        (summed over the ranks' shares under torchrun)."""
        import torch

        self.model.eval()
        val, step = self.val, self.config.batch_size
        sse = torch.zeros(len(self.val_dates), dtype=torch.float64, device=self.device)
        count = torch.zeros_like(sse)
        with torch.no_grad():
            for i in range(0, len(val.x), step):
                sl = slice(i, i + step)
                pred = forward(*(a[sl] for a in val.inputs))
                v = val.valid[sl].to(pred.dtype)
                ids = self.date_index[sl].reshape(-1)
                sse.index_add_(0, ids, ((pred - val.y[sl]) ** 2 * v).sum(dim=(2, 3)).reshape(-1).double())
                count.index_add_(0, ids, v.sum(dim=(2, 3)).reshape(-1).double())
        sse, count = sse.cpu().numpy(), count.cpu().numpy()
        if self.world.distributed:
            both = _all_sum(self.world, np.concatenate([sse, count]), self.device)
            sse, count = np.asarray(both[: len(self.val_dates)]), np.asarray(both[len(self.val_dates) :])
        with np.errstate(invalid="ignore", divide="ignore"):
            per_date = sse / count
        return _Score(float(sse.sum() / max(count.sum(), 1.0)), per_date)

    def _train_epoch(self, forward, params, optimiser, sync_grads: bool) -> float:
        """One epoch of ``n_batches`` random batches; the mean training loss (over ranks)."""
        import torch

        world = self.world
        self.model.train()
        total = 0.0
        for _ in range(self.n_batches):
            # The same global draw on every rank (shared seed); each reads its share.
            n_cadence = 0 if self.cadence is None else int(round(self.global_batch * CADENCE_SHARE))
            draw = self.sampler.draw_indices(
                self.rng, self.train_starts, self.global_batch - n_cadence, flip=True, weights=self.motion_weights
            )
            parts = [(self.sampler, world.shard(draw))]
            if n_cadence:
                cadence_draw = self.cadence_sampler.draw_indices(self.rng, self.cadence_starts, n_cadence, flip=True)
                parts.append((self.cadence_sampler, world.shard(cadence_draw)))
            batch = self._to_tensors(_joined_batch(parts))
            optimiser.zero_grad(set_to_none=True)
            weight = None
            if self.config.focus and forward is self.train_model:  # the network stage only
                weight = _focus_weights(batch.x, self.config.steps, self.config.focus)
            loss = _masked_mse(forward(*batch.inputs), batch.y, batch.valid, weight)
            loss.backward()
            if sync_grads:
                _average_gradients(params, world)
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimiser.step()
            total += float(loss.detach())
        train_loss = total / self.n_batches
        if world.distributed:
            train_loss = _all_sum(world, (train_loss,), self.device)[0] / world.world_size
        return train_loss

    def run_stage(self, name, forward, params, lr, best, history=None, sync_grads=False):
        """Adam on ``params`` with early stopping; keeps the weights whose validation
        score beats ``best`` (the score to beat) by :func:`_beats`. ``sync_grads``
        averages gradients over ranks by hand (``forward`` not DDP-wrapped). Appends one
        row per epoch to ``history`` when given. Returns ``(best score, its epoch, epochs
        run)``; the best score is ``best`` itself when no new weights were kept."""
        import torch

        from insar_raster.progress import progress_bar

        config, model = self.config, self.model
        optimiser = torch.optim.Adam(params, lr=lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimiser, factor=0.5, patience=max(1, config.patience // 3)
        )
        best_state, stale, epochs_run, best_epoch = copy.deepcopy(model.state_dict()), 0, 0, 0
        show = self.progress and self.world.main
        bar = progress_bar(range(1, config.epochs + 1), desc=f"train {name}", unit="epoch", disable=not show)
        try:
            for epoch in bar:
                train_loss = self._train_epoch(forward, params, optimiser, sync_grads)
                score = self.validate(forward)
                scheduler.step(score.loss)
                epochs_run = epoch
                if history is not None:
                    history.append(self._history_row(epoch, train_loss, score.loss))
                bar.set_postfix(train=f"{train_loss:.4f}", val=f"{score.loss:.4f}")
                log.debug("%s epoch %d: train %.5f val %.5f", name, epoch, train_loss, score.loss)
                if _beats(score, best, config):
                    best, best_state, stale, best_epoch = score, copy.deepcopy(model.state_dict()), 0, epoch
                    continue
                stale += 1
                if stale >= config.patience:
                    if self.world.main:
                        log.info(
                            "%s: early stopping after epoch %d (no validation improvement for %d epochs)",
                            name,
                            epoch,
                            stale,
                        )
                    break
        finally:
            bar.close()
        model.load_state_dict(best_state)
        return best, best_epoch, epochs_run

    def _history_row(self, epoch: int, train_loss: float | None, val_loss: float) -> dict:
        val_rmse_mm = math.sqrt(val_loss) * self.norm.scale_mm
        return {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_rmse_mm": val_rmse_mm}

    def fit_prior_filter(self) -> dict | None:
        """Stage 1: the spatial filter of the history prior alone (a few parameters, no
        network pass: cheap); its summary for the metadata, or None when the model has
        no history prior. Under torchrun its gradients are averaged by hand, since this
        bypasses the DDP wrapper."""
        config, model = self.config, self.model
        if not (config.use_prior and hasattr(model, "filtered_prior")):
            return None

        def filtered(x, leads, prior, level, advect=None):
            return model.filtered_prior(x, prior, level)

        prior_score = self.validate(filtered)
        filter_score, _, filter_epochs = self.run_stage(
            f"{config.arch} prior filter",
            filtered,
            list(model.refine.parameters()),
            config.lr * FILTER_LR_FACTOR,
            prior_score,
            sync_grads=self.world.distributed,
        )
        return {
            "epochs": filter_epochs,
            "val_rmse_prior_mm": math.sqrt(prior_score.loss) * self.norm.scale_mm,
            "val_rmse_filtered_mm": math.sqrt(filter_score.loss) * self.norm.scale_mm,
            "kept": filter_score is not prior_score,  # run_stage returns a new score if kept
            "kernel": model.refine.kernel().detach().cpu().double().numpy().round(5).tolist(),
        }

    def fit_network(self) -> tuple[_Score, int, list[dict]]:
        """Stage 2: the whole network. Epoch 0 is the model before its network has
        learned (the history prior, filtered if stage 1 kept a filter; persistence with
        prior="none"; the paper model starts random); new weights must beat it on
        validation. Returns ``(best score, its epoch, history)``."""
        initial = self.validate(self.model)
        history = [self._history_row(0, None, initial.loss)]
        best, best_epoch, _ = self.run_stage(
            self.config.arch, self.train_model, list(self.model.parameters()), self.config.lr, initial, history
        )
        return best, best_epoch, history

    def run(self) -> tuple:
        """All steps; the arguments of :meth:`Forecaster.from_fitted` (see :func:`fit_network`)."""
        import torch

        was_deterministic = torch.are_deterministic_algorithms_enabled()
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        try:
            filter_stage = self.fit_prior_filter()
            best, best_epoch, history = self.fit_network()
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
        self.model.eval()
        metadata = self.summarise(best, best_epoch, filter_stage)
        grid = grid_of(self.cube)
        return self.model.cpu(), replace(self.config), self.norm, grid, self.hparams, history, metadata

    def _baseline_mse(self) -> tuple[float, float]:
        """Validation MSE of persistence and of the history prior alone (normalised units;
        summed over every rank's share of the validation patches under torchrun)."""
        target, valid = self.val_batch.y, self.val_batch.valid
        prior_sse, n_valid = _prior_sse(self.val_batch)
        pers_sse = float((target.astype(np.float64) ** 2 * valid).sum())
        pers_sse, prior_sse, n_valid = _all_sum(self.world, (pers_sse, prior_sse, n_valid), self.device)
        return pers_sse / max(n_valid, 1), prior_sse / max(n_valid, 1)

    def _history_fit_mse(self) -> float:
        """Validation MSE of the history fit alone (normalised units) on the validation
        patches every other score uses, for a model whose prior is the learned one. After a
        cadence change these include the resampled record's patches, which the learned
        prior's choice (:meth:`_choose_lag_prior`, native step only) did not see."""
        if self.cadence_val_draw is None:
            return (self.lag_prior_stage["val_history_fit_rmse_mm"] / self.norm.scale_mm) ** 2
        fit = replace(self.config, lag_prior=None, lag_prior_fit=None, lag_prior_centred=False)
        samplers = (self.sampler, self.cadence_sampler)
        saved = [sampler.config for sampler in samplers]
        try:
            for sampler in samplers:
                sampler.config = fit
            batch = _joined_batch(
                [
                    (None, self.sampler.batch(*self.world.shard(self.val_draw))),
                    (self.cadence_sampler, self.world.shard(self.cadence_val_draw)),
                ]
            )
        finally:
            for sampler, config in zip(samplers, saved):
                sampler.config = config
        return self._prior_mse(batch)

    def summarise(self, best: _Score, best_epoch: int, filter_stage: dict | None) -> dict:
        """The model file's training metadata: validation RMSE of the kept weights and of
        the baselines (mm), the prior filter stage, the samples and the split."""
        config, split, scale_mm = self.config, self.split, self.norm.scale_mm
        persistence_mse, prior_mse = self._baseline_mse()
        lag_prior_mse = None
        if self.lag_prior_stage and self.lag_prior_stage["kept"]:
            # The validation batch's prior is the learned one; the history fit is scored
            # on the same patches, so every number of the report compares like with like.
            lag_prior_mse, prior_mse = prior_mse, self._history_fit_mse()
        metadata = {
            "val_rmse_mm": math.sqrt(best.loss) * scale_mm,
            "val_lag_prior_rmse_mm": None if lag_prior_mse is None else math.sqrt(lag_prior_mse) * scale_mm,
            "prior_filter": filter_stage,
            "best_epoch": int(best_epoch),  # the kept weights' epoch (0: the network learned nothing kept)
            "val_persistence_rmse_mm": math.sqrt(persistence_mse) * scale_mm,
            "val_history_fit_rmse_mm": math.sqrt(prior_mse) * scale_mm if config.use_prior else None,
            "lag_prior": self.lag_prior_stage,
            "train_samples": int(len(self.train_starts)),
            "val_samples": int(len(split.val)),
            "split": {"train_end": int(split.train_end), "val_end": int(split.val_end), "n_times": int(split.n_times)},
            "trained_with": f"insar-raster {__version__}",
        }
        if self.cadence is not None:
            metadata["cadence"] = self.cadence.describe()
        if self.world.distributed:
            metadata["ddp_world_size"] = self.world.world_size
        return metadata
