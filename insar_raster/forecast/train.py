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
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import (
    ACCELERATION_RIDGES,
    N_CHANNELS,
    PRIOR_HISTORIES,
    CubeReader,
    Normalisation,
    build_targets,
    grid_of,
    prepare_batch,
)
from insar_raster.forecast.windows import ChronoSplit, chronological_split
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


def _model_hparams(config: TrainConfig, grid_shape: tuple[int, int]) -> dict:
    if config.arch == "paper":
        size = [max(8, min(config.paper_input_size, n) // 8 * 8) for n in grid_shape]
        return {
            "in_channels": N_CHANNELS,
            "steps": config.steps,
            "window": config.window,
            "input_size": size,
            "lstm_hidden": config.paper_lstm_hidden,
        }
    return {
        "in_channels": N_CHANNELS,
        "steps": config.steps,
        "window": config.window,
        "hidden": config.hidden,
        "features": config.features,
    }


class _Batch(NamedTuple):
    """Network inputs (``x``, ``leads``, ``prior``, ``level``) and targets of a batch."""

    x: np.ndarray
    leads: np.ndarray
    prior: np.ndarray
    level: np.ndarray
    y: np.ndarray
    valid: np.ndarray

    @property
    def inputs(self) -> tuple:
        return self.x, self.leads, self.prior, self.level


class _PatchSampler:
    """Draws (sample, patch) batches from a cube, as network tensors."""

    def __init__(self, reader: CubeReader, norm: Normalisation, config: TrainConfig, patch: tuple[int, int]):
        self.reader, self.norm, self.config = reader, norm, config
        self.window, self.steps = config.window, config.steps
        self.patch = patch

    def batch(self, starts, rows, cols, flips=None):
        window, steps = self.window, self.steps
        ph, pw = self.patch
        history = self.config.fit_history
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
        )
        y, valid = build_targets(np.stack(targets), ref, self.norm)
        return _Batch(x, leads, prior, level, y, valid)

    def draw_indices(self, rng: np.random.Generator, starts_pool: np.ndarray, n: int, flip: bool):
        """Random (starts, rows, cols, flips) of ``n`` patches; reads nothing."""
        _, height, width = self.reader.shape
        ph, pw = self.patch
        starts = rng.choice(starts_pool, size=n)
        rows = rng.integers(0, max(1, height - ph + 1), size=n)
        cols = rng.integers(0, max(1, width - pw + 1), size=n)
        flips = rng.integers(0, 2, size=(n, 2)).astype(bool) if flip else None
        return starts, rows, cols, flips

    def draw(self, rng: np.random.Generator, starts_pool: np.ndarray, n: int, flip: bool):
        return self.batch(*self.draw_indices(rng, starts_pool, n, flip))


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
            sse = float(((batch.prior - batch.y).astype(np.float64) ** 2 * batch.valid).sum())
            candidates.append(sampler.config)
            batches.append(batch)
            losses.append(_all_sum(world, (sse, float(batch.valid.sum())), device))
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


def _masked_mse(pred, target, valid):
    valid = valid.to(pred.dtype)
    return ((pred - target) ** 2 * valid).sum() / valid.sum().clamp_min(1.0)


def fit_network(
    cube: xr.Dataset,
    config: TrainConfig,
    split: ChronoSplit | None = None,
    progress: bool = True,
    in_memory_bytes: int | None = None,
) -> tuple:
    """Train the network of ``config`` on ``cube`` (what :meth:`Forecaster.fit` runs).

    Returns
    -------
    tuple
        ``(model, config, normalisation, grid, hparams, history, metadata)``, the
        arguments of :meth:`Forecaster.from_fitted`; ``config`` holds the choices made
        while fitting (the history prior's ``acceleration_ridge``).
    """
    config = config or TrainConfig()
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
    try:
        return _train(cube, config, split, val_starts, progress, in_memory_bytes, world, device, threads)
    finally:
        if world.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(cube, config, split, val_starts, progress, in_memory_bytes, world, device, threads) -> tuple:
    import torch

    from insar_raster.progress import progress_bar

    n_times = cube.sizes["time"]
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    norm = Normalisation.from_training_epochs(cube, split.train_end, config.steps)
    train_starts = _training_starts(split, config)
    reader = CubeReader(cube, in_memory_bytes)
    _, height, width = reader.shape
    if (
        not np.isfinite(reader.read(0, 1, 0, height, 0, width)).any()
        and not np.isfinite(reader.read(n_times - 1, n_times, 0, height, 0, width)).any()
    ):
        raise InputError(None, "cube is entirely masked (NaN)")
    hparams = _model_hparams(config, (height, width))
    model = build_model(config.arch, **hparams).to(device)
    if config.arch == "paper":
        patch = tuple(hparams["input_size"])
    else:
        patch = (min(config.patch_size, height), min(config.patch_size, width))
    sampler = _PatchSampler(reader, norm, config, patch)
    # Fixed validation patches (own generator: the same whatever the epoch count); under
    # torchrun every rank draws the same patches and evaluates its share.
    val_draw = sampler.draw_indices(
        np.random.default_rng([config.seed, 1]), val_starts, max(config.val_patches, world.world_size), flip=False
    )
    if config.use_prior and config.acceleration_ridge is None:
        config, val_batch = _choose_acceleration_ridge(sampler, world.shard(val_draw), world, device)
        if world.main:
            log.info(
                "history prior: %d past epochs, acceleration ridge %g (lowest validation loss of "
                "histories up to %d epochs x ridges %s)",
                config.fit_history,
                config.acceleration_ridge,
                config.history_epochs,
                ", ".join(f"{r:g}" for r in ACCELERATION_RIDGES),
            )
    else:
        val_batch = sampler.batch(*world.shard(val_draw))
    train_model_ = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        train_model_ = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    n_batches = max(1, math.ceil(config.samples_per_epoch / config.batch_size))
    global_batch = max(config.batch_size, world.world_size)
    if world.main:
        log.info(
            "training %s on %d samples (%dx%d cells, %d epochs, %s), validating on %d; %d CPU threads, %s%s",
            config.arch,
            len(train_starts),
            height,
            width,
            n_times,
            "read lazily by patch" if reader.lazy else "in memory",
            len(split.val),
            threads,
            device,
            f", {world.world_size} DDP ranks" if world.distributed else "",
        )

    def to_tensors(batch):
        return _Batch(*(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in batch))

    # Validation is scored date by date: each date's atmosphere is one draw of noise
    # shared by all its cells, so the dates, not the cells, are the independent samples.
    local_dates = world.shard(val_draw)[0][:, None] + config.window + np.arange(config.steps)[None, :]
    all_dates = np.unique(val_draw[0][:, None] + config.window + np.arange(config.steps)[None, :])
    date_index = torch.from_numpy(np.searchsorted(all_dates, local_dates)).to(device)

    val = to_tensors(val_batch)  # fixed: converted (and moved to the device) once

    def evaluate(forward) -> _Score:
        model.eval()
        sse = torch.zeros(len(all_dates), dtype=torch.float64, device=device)
        count = torch.zeros_like(sse)
        with torch.no_grad():
            for i in range(0, len(val.x), config.batch_size):
                sl = slice(i, i + config.batch_size)
                pred = forward(*(a[sl] for a in val.inputs))
                v = val.valid[sl].to(pred.dtype)
                ids = date_index[sl].reshape(-1)
                sse.index_add_(0, ids, ((pred - val.y[sl]) ** 2 * v).sum(dim=(2, 3)).reshape(-1).double())
                count.index_add_(0, ids, v.sum(dim=(2, 3)).reshape(-1).double())
        sse, count = sse.cpu().numpy(), count.cpu().numpy()
        if world.distributed:
            both = _all_sum(world, np.concatenate([sse, count]), device)
            sse, count = np.asarray(both[: len(all_dates)]), np.asarray(both[len(all_dates) :])
        with np.errstate(invalid="ignore", divide="ignore"):
            per_date = sse / count
        return _Score(float(sse.sum() / max(count.sum(), 1.0)), per_date)

    def run_stage(name, forward, params, lr, best, history=None, sync_grads=False):
        """Adam on ``params`` with early stopping; keeps the weights whose validation
        score beats ``best`` (the score to beat) by :func:`_beats`. ``sync_grads``
        averages gradients over ranks by hand (``forward`` not DDP-wrapped)."""
        optimiser = torch.optim.Adam(params, lr=lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimiser, factor=0.5, patience=max(1, config.patience // 3)
        )
        best_state, stale, epochs_run, best_epoch = copy.deepcopy(model.state_dict()), 0, 0, 0
        bar = progress_bar(
            range(1, config.epochs + 1), desc=f"train {name}", unit="epoch", disable=not (progress and world.main)
        )
        try:
            for epoch in bar:
                model.train()
                total = 0.0
                for _ in range(n_batches):
                    # The same global draw on every rank (shared seed); each reads its share.
                    draw = sampler.draw_indices(rng, train_starts, global_batch, flip=True)
                    batch = to_tensors(sampler.batch(*world.shard(draw)))
                    optimiser.zero_grad(set_to_none=True)
                    loss = _masked_mse(forward(*batch.inputs), batch.y, batch.valid)
                    loss.backward()
                    if sync_grads:
                        _average_gradients(params, world)
                    torch.nn.utils.clip_grad_norm_(params, 5.0)
                    optimiser.step()
                    total += float(loss.detach())
                train_loss = total / n_batches
                if world.distributed:
                    train_loss = _all_sum(world, (train_loss,), device)[0] / world.world_size
                score = evaluate(forward)
                val_loss = score.loss
                scheduler.step(val_loss)
                epochs_run = epoch
                if history is not None:
                    history.append(
                        {
                            "epoch": epoch,
                            "train_loss": train_loss,
                            "val_loss": val_loss,
                            "val_rmse_mm": math.sqrt(val_loss) * norm.scale_mm,
                        }
                    )
                bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
                log.debug("%s epoch %d: train %.5f val %.5f", name, epoch, train_loss, val_loss)
                if _beats(score, best, config):
                    best, best_state, stale, best_epoch = score, copy.deepcopy(model.state_dict()), 0, epoch
                else:
                    stale += 1
                    if stale >= config.patience:
                        if world.main:
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

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    filter_stage = None
    try:
        if config.use_prior and hasattr(model, "filtered_prior"):
            # Stage 1: the spatial filter of the history prior alone (a few parameters,
            # no network pass: cheap). Under torchrun its gradients are averaged by hand,
            # since this bypasses the DDP wrapper.
            def filtered(x, leads, prior, level):
                return model.filtered_prior(x, prior, level)

            prior_score = evaluate(filtered)
            filter_score, _, filter_epochs = run_stage(
                f"{config.arch} prior filter",
                filtered,
                list(model.refine.parameters()),
                config.lr * FILTER_LR_FACTOR,
                prior_score,
                sync_grads=world.distributed,
            )
            filter_stage = {
                "epochs": filter_epochs,
                "val_rmse_prior_mm": math.sqrt(prior_score.loss) * norm.scale_mm,
                "val_rmse_filtered_mm": math.sqrt(filter_score.loss) * norm.scale_mm,
                "kept": filter_score is not prior_score,  # run_stage returns a new score if kept
                "kernel": model.refine.kernel().detach().cpu().double().numpy().round(5).tolist(),
            }
        # Stage 2 (epoch 0 = the model before its network has learned: the history
        # prior, filtered if stage 1 kept a filter; persistence with prior="none"; the
        # paper model starts random). New weights must beat it on validation.
        initial = evaluate(model)
        history = [
            {
                "epoch": 0,
                "train_loss": None,
                "val_loss": initial.loss,
                "val_rmse_mm": math.sqrt(initial.loss) * norm.scale_mm,
            }
        ]
        best, best_epoch, _ = run_stage(
            config.arch, train_model_, list(model.parameters()), config.lr, initial, history
        )
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    model.eval()
    target, valid = val_batch.y, val_batch.valid
    if world.distributed:  # sums over every rank's share of the validation patches
        pers_sse, prior_sse, n_valid = _all_sum(
            world,
            (
                (target.astype(np.float64) ** 2 * valid).sum(),
                ((val_batch.prior - target).astype(np.float64) ** 2 * valid).sum(),
                valid.sum(),
            ),
            device,
        )
        persistence_mse, prior_mse = pers_sse / max(n_valid, 1), prior_sse / max(n_valid, 1)
    else:
        persistence_mse = float((target**2 * valid).sum() / max(valid.sum(), 1))
        prior_mse = float(((val_batch.prior - target) ** 2 * valid).sum() / max(valid.sum(), 1))
    metadata = {
        "val_rmse_mm": math.sqrt(best.loss) * norm.scale_mm,
        "prior_filter": filter_stage,
        "best_epoch": int(best_epoch),  # the kept weights' epoch (0: the network learned nothing kept)
        "val_persistence_rmse_mm": math.sqrt(persistence_mse) * norm.scale_mm,
        "val_history_fit_rmse_mm": math.sqrt(prior_mse) * norm.scale_mm if config.use_prior else None,
        "train_samples": int(len(train_starts)),
        "val_samples": int(len(split.val)),
        "split": {"train_end": int(split.train_end), "val_end": int(split.val_end), "n_times": int(split.n_times)},
        "trained_with": f"insar-raster {__version__}",
    }
    if world.distributed:
        metadata["ddp_world_size"] = world.world_size
    return model.cpu(), replace(config), norm, grid_of(cube), hparams, history, metadata
