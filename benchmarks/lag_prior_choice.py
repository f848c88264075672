"""Checks of the learned linear prior's choice, prior alone, against its result on test (issue 12).

Training keeps the learned linear prior (``train._Trainer._choose_lag_prior``) where its
validation MSE is ``LAG_PRIOR_MARGIN`` below the history fit's. This script rebuilds the
trainer's rows and ridge maps (``train._lag_prior_rows``, ``train._fit_lag_prior``: the
same draw, residual form) and prints, for the ridge that validation picks, what other
rules would read before the test epochs:

- ``val``: validation MSE ratio to the history fit (the trainer's patches), and the
  per-date gain in standard errors (``t``; the dates as independent samples, as the
  network's ``significance`` test counts them);
- ``wide``: the scene-wide part of the validation MSE (the mean error of each forecast
  over all its patches' cells, squared), history fit -> map, as shares of the fit's MSE;
- ``rolling K``: rolling-origin (time-blocked) scores on the training rows: the origins
  split into K + 1 blocks in time; each of the last K is scored by a map fitted on the
  rows whose targets precede it (MSE ratio to the history fit per block, then pooled);
- ``test``: the prior alone on every cell of the test samples against the noise-free
  truth, RMSE in mm, history fit / map (ratio).

    PYTHONPATH=. .venv/bin/python benchmarks/lag_prior_choice.py --scenes urban,fronts --seed 0
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import torch
from _args import parse_shape, scene_parser

from insar_raster.forecast import train as T
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import (
    LAG_PRIOR_RIDGES,
    LinearPrior,
    history_eval,
    history_fit,
)
from insar_raster.forecast.windows import chronological_split, lookback_epochs
from insar_raster.io.cube import CUBE_VARIABLE
from insar_raster.synth import make_scene_cube

WINDOW, STEPS = 12, 6


def rows_with_origin(sampler, rng, starts, lookback, fit_epochs, ridge):
    """``train._lag_prior_rows`` (the trainer's draw) of the residual form, the rows whose
    history fit read all its epochs, with each row's last input epoch."""
    *rows, whole, origin = T._lag_prior_rows(sampler, rng, starts, lookback, fit_epochs, ridge, origins=True)
    return tuple(a[whole] for a in (*rows, origin))


def val_scores(trainer, config):
    """Validation MSE, per-date MSE and scene-wide MSE of ``config``'s prior on the trainer's patches."""
    trainer.sampler.config = config
    batch = trainer.sampler.batch(*trainer.val_draw)
    err = np.where(batch.valid > 0, (batch.prior - batch.y).astype(np.float64), np.nan)
    starts = np.asarray(trainer.val_draw[0])
    days = trainer.sampler.reader.days[starts[:, None] + WINDOW + np.arange(STEPS)[None]]
    dates, inv = np.unique(days, return_inverse=True)
    se, n = np.nansum(err**2, axis=(2, 3)).ravel(), np.isfinite(err).sum(axis=(2, 3)).ravel().astype(float)
    per_date = np.bincount(inv.ravel(), se, len(dates)) / np.maximum(np.bincount(inv.ravel(), n, len(dates)), 1)
    wide = 0.0
    for s in np.unique(starts):
        for k in range(STEPS):
            e = err[starts == s, k]
            wide += np.nanmean(e) ** 2 * np.isfinite(e).sum()
    return np.nansum(err**2) / n.sum(), per_date, wide / n.sum()


def test_rmse(observed, truth, split, config, prior, days, step_days):
    """The history fit's and ``prior``'s RMSE (mm) on every cell of the test samples against the truth."""
    sq_fit, sq_map = [], []
    for s in split.test:
        last = s + WINDOW - 1
        f0 = max(0, last + 1 - config.fit_history)
        coef = history_fit(observed[f0 : last + 1], days[f0 : last + 1], days[last], config.acceleration_ridge or 0.0)
        fit = history_eval(coef, days[last + 1 : last + 1 + STEPS], days[last]) - observed[last][None]
        target = truth[last + 1 : last + 1 + STEPS] - observed[last][None]
        first = max(0, last - prior.lookback)
        leads = (days[last + 1 : last + 1 + STEPS] - days[last]) / step_days
        learned = prior.change(observed[first : last + 1], days[first : last + 1], leads, step_days, fit)
        learned = fit if learned is None else np.where(np.isfinite(learned), learned, fit)
        sq_fit.append((fit - target) ** 2)
        sq_map.append((learned - target) ** 2)
    return float(np.sqrt(np.nanmean(sq_fit))), float(np.sqrt(np.nanmean(sq_map)))


def run(scene, seed, shape, resolution, n_epochs):
    obs, truth = make_scene_cube(shape, n_epochs, WINDOW, scene, seed, resolution=resolution)
    split = chronological_split(obs.sizes["time"], WINDOW, STEPS)
    config = TrainConfig(window=WINDOW, steps=STEPS, seed=seed)
    trainer = T._Trainer(obs, config, split, split.val, False, None, T._world_from_env(), torch.device("cpu"), 1)
    stage = trainer.lag_prior_stage or {}
    base = replace(trainer.config, lag_prior=None, lag_prior_fit=None, lag_prior_centred=False)
    sampler = trainer.sampler
    lookback = lookback_epochs(split, WINDOW, base.history_epochs - 1)
    starts = trainer.train_starts[trainer.train_starts + WINDOW >= lookback + 1]
    rng = np.random.default_rng([seed, 3])
    lags, fit, change, origin = rows_with_origin(
        sampler, rng, starts, lookback, base.fit_history, base.acceleration_ridge or 0.0
    )
    whole = np.ones(len(lags), bool)
    maps = T._fit_lag_prior(lags, fit, change, whole)
    if not maps or maps[0][1] is None:
        print(f"{scene}, seed {seed}: no residual-form rows; kept {stage.get('kept')}")
        return
    mse_fit, date_fit, wide_fit = val_scores(trainer, base)
    scored = [val_scores(trainer, replace(base, lag_prior=w_lags, lag_prior_fit=w_fit)) for w_lags, w_fit in maps]
    best = int(np.argmin([s[0] for s in scored]))
    mse, per_date, wide = scored[best]
    gain = date_fit - per_date
    t = gain.mean() / (gain.std(ddof=1) / np.sqrt(len(gain)))
    line = (
        f"{scene}, seed {seed}: kept {stage.get('kept')} (ridge {LAG_PRIOR_RIDGES[best]:g}) | "
        f"val {mse / mse_fit:.3f} t {t:.1f} | wide {wide_fit / mse_fit:.3f} -> {wide / mse_fit:.3f}"
    )
    distinct = np.unique(origin)
    for k in (2, 3):
        ratios, weights = [], []
        for block in np.array_split(distinct, k + 1)[1:]:
            before, inside = origin + STEPS <= block.min(), (origin >= block.min()) & (origin <= block.max())
            block_maps = T._fit_lag_prior(lags[before], fit[before], change[before], whole[before])
            if not block_maps or block_maps[best][1] is None:
                continue  # too few earlier rows for the residual form
            w_lags, w_fit = block_maps[best]
            pred = fit[inside] + lags[inside] @ w_lags.T + fit[inside] @ w_fit.T
            fit_mse = float(((fit[inside] - change[inside]) ** 2).mean())
            ratios.append(float(((pred - change[inside]) ** 2).mean()) / fit_mse)
            weights.append(fit_mse * inside.sum())
        pooled = float(np.dot(ratios, weights) / np.sum(weights))
        line += f" | rolling {k}: " + ", ".join(f"{r:.3f}" for r in ratios) + f" / {pooled:.3f}"
    days, step_days = sampler.reader.days, sampler.norm.step_days
    observed, exact = obs[CUBE_VARIABLE].values.astype(np.float64), truth[CUBE_VARIABLE].values.astype(np.float64)
    rmse_fit, rmse_map = test_rmse(observed, exact, split, base, LinearPrior(*maps[best]), days, step_days)
    print(line + f" | test {rmse_fit:.3f} / {rmse_map:.3f} ({rmse_map / rmse_fit:.3f})", flush=True)


def main(argv=None) -> int:
    parser = scene_parser(__doc__, shape="128x128", n_epochs=144, seed=0, scenes="urban", resolution=200.0)
    args = parser.parse_args(argv)
    for scene in args.scenes.split(","):
        run(scene, args.seed, parse_shape(args.shape), args.resolution, args.n_epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
