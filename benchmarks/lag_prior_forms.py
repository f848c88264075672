"""Two forms of the learned linear prior, prior alone, against the history fit (issue 12).

The default's learned linear prior (``forecast/data.py``) maps a pixel's past (1..L
acquisition steps back, relative to its last epoch) to its next ``steps`` changes
(``pure``, the form training fitted until the residual form; model files of then hold it).
The *residual* form adds a map of the same lags and of the history fit's own predicted
changes to the history fit's forecast (``residual``: zero weights are the history fit, so
ridge shrinks toward the fit, not toward no motion); training fits it now. This script
fits both from the trainer's validated history fit and closed-form ridge, on rows drawn
as training did until a3be0c7 (``--rows patches``: 64 random training patches inside the
grid, at most 100k rows) or as it does since (``--rows cells``: 1024 reads clipped to the
grid, every cell drawn alike, ``train._lag_prior_rows``), and scores the prior alone, no
filter and no network:

- ``val``: every validation sample, whole grid, against the observations (what training's
  choice sees); the ridge of each form is chosen here;
- ``cv``: blocked cross-validation over the training samples (4 contiguous blocks, each
  scored by maps fitted on rows at least ``window + steps`` samples away from it);
- ``test``: every test sample of ``eval_fronts.py``'s split, against the noise-free truth.

    PYTHONPATH=. .venv/bin/python benchmarks/lag_prior_forms.py --scenes urban --seed 2 [--rows cells]
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from _args import parse_shape, scene_parser

from insar_raster.forecast import train as T
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import history_eval, history_fit, lag_features
from insar_raster.forecast.windows import chronological_split, lookback_epochs
from insar_raster.io.cube import CUBE_VARIABLE
from insar_raster.synth import make_scene_cube

RIDGES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
WINDOW, STEPS = 12, 6


def ridge_maps(features, targets):
    gram, cross = features.T @ features / len(features), features.T @ targets / len(features)
    scale = np.trace(gram) / features.shape[1]
    return [np.linalg.solve(gram + r * scale * np.eye(features.shape[1]), cross) for r in RIDGES]


class Forms:
    """The history fit's and the two learned forms' changes at one origin."""

    def __init__(self, lookback, fit_len, acceleration_ridge, step_days):
        self.lookback, self.fit_len, self.ridge, self.step_days = lookback, fit_len, acceleration_ridge, step_days

    def features(self, cube, days, last):
        first = max(0, last - max(self.lookback, self.fit_len - 1))
        hist, hdays = cube[first : last + 1], days[first : last + 1]
        lags = lag_features(hist, hdays, self.lookback, self.step_days).reshape(self.lookback, -1)
        coef = history_fit(hist[-self.fit_len :], hdays[-self.fit_len :], hdays[-1], self.ridge)
        fit_change = history_eval(coef, days[last + 1 : last + 1 + STEPS], hdays[-1]) - hist[-1][None]
        return lags, fit_change.reshape(STEPS, -1)

    def errors(self, cube, days, last, target, pure, residual):
        """Mean squared error per form and ridge of the changes from ``last`` against ``target``."""
        lags, fit = self.features(cube, days, last)
        change = target.reshape(STEPS, -1) - cube[last].reshape(-1)[None]
        ok = np.isfinite(change).all(0) & np.isfinite(fit).all(0)
        out = {"fit": fit}
        out.update({f"pure {r:g}": (lags.T @ w).T for r, w in zip(RIDGES, pure)})
        out.update({f"residual {r:g}": fit + (np.vstack([lags, fit]).T @ w).T for r, w in zip(RIDGES, residual)})
        return {k: float(np.mean((np.where(np.isfinite(p), p, fit) - change)[:, ok] ** 2)) for k, p in out.items()}


def rows(forms, sampler, rng, starts, n_patches=64, max_rows=100_000):
    """Training rows (lags, fit changes, changes, sample start) from random patches."""
    reader, (ph, pw) = sampler.reader, sampler.patch
    draw = sampler.draw_indices(rng, starts, n_patches, flip=False)
    parts = []
    for s, y0, x0 in zip(*draw[:3]):
        last = int(s) + WINDOW - 1
        first = max(0, last - max(forms.lookback, forms.fit_len - 1))
        block = reader.read(first, last + 1 + STEPS, int(y0), int(y0) + ph, int(x0), int(x0) + pw)
        lags, fit = forms.features(block, reader.days[first : last + 1 + STEPS], last - first)
        change = (block[-STEPS:] - block[-STEPS - 1]).reshape(STEPS, -1)
        keep = np.flatnonzero(np.isfinite(lags).all(0) & np.isfinite(fit).all(0) & np.isfinite(change).all(0))
        if len(keep) > max_rows // n_patches:
            keep = rng.choice(keep, max_rows // n_patches, replace=False)
        parts.append((lags[:, keep].T, fit[:, keep].T, change[:, keep].T, np.full(len(keep), int(s))))
    return [np.concatenate(p).astype(np.float64) for p in zip(*parts)]


def cell_rows(forms, sampler, rng, starts):
    """Training rows drawn as training draws them since a3be0c7 (``train._lag_prior_rows``:
    1024 (sample, patch) reads clipped to the grid, every cell drawn alike), with the
    history fit's changes beside the lags."""
    ph, pw = sampler.patch
    _, height, width = sampler.reader.shape
    n = T.LAG_PRIOR_PATCHES
    draw_starts = rng.choice(starts, size=n)
    rows0, cols0 = rng.integers(1 - ph, height, size=n), rng.integers(1 - pw, width, size=n)
    share = min(1.0, T.LAG_PRIOR_ROWS / (n * ph * pw))
    parts = []
    for s, r0, c0 in zip(draw_starts, rows0, cols0):
        last = int(s) + WINDOW - 1
        first = max(0, last - max(forms.lookback, forms.fit_len - 1))
        y0, y1, x0, x1 = max(0, int(r0)), min(height, int(r0) + ph), max(0, int(c0)), min(width, int(c0) + pw)
        pick = rng.random((y1 - y0) * (x1 - x0)) < share
        if not pick.any():
            continue
        block = sampler.reader.read(first, last + 1 + STEPS, y0, y1, x0, x1).reshape(last + 1 + STEPS - first, -1)
        block = block[:, pick][:, :, None]
        lags, fit = forms.features(block, sampler.reader.days[first : last + 1 + STEPS], last - first)
        change = (block[-STEPS:] - block[-STEPS - 1]).reshape(STEPS, -1)
        keep = np.isfinite(lags).all(0) & np.isfinite(fit).all(0) & np.isfinite(change).all(0)
        parts.append((lags[:, keep].T, fit[:, keep].T, change[:, keep].T, np.full(int(keep.sum()), int(s))))
    return [np.concatenate(p).astype(np.float64) for p in zip(*parts)]


def fit_forms(lags, fit, change):
    return ridge_maps(lags, change), ridge_maps(np.hstack([lags, fit]), change - fit)


def rmse(errors_per_origin):
    return {k: float(np.sqrt(np.mean([e[k] for e in errors_per_origin]))) for k in errors_per_origin[0]}


def best(scores, form):
    key = min((k for k in scores if k.startswith(form)), key=scores.get)
    return key, scores[key]


def run(scene, seed, shape, resolution, n_epochs, row_draw="patches"):
    obs, truth = make_scene_cube(shape, n_epochs, WINDOW, scene, seed, resolution=resolution)
    split = chronological_split(obs.sizes["time"], WINDOW, STEPS)
    config = TrainConfig(window=WINDOW, steps=STEPS, seed=seed)
    trainer = T._Trainer(obs, config, split, split.val, False, None, T._world_from_env(), torch.device("cpu"), 1)
    chosen, sampler = trainer.config, trainer.sampler
    lookback = lookback_epochs(split, WINDOW, chosen.history_epochs - 1)
    forms = Forms(lookback, chosen.fit_history, chosen.acceleration_ridge or 0.0, sampler.norm.step_days)
    starts = trainer.train_starts[trainer.train_starts + WINDOW >= lookback + 1]
    draw = cell_rows if row_draw == "cells" else rows
    lags, fit, change, row_start = draw(forms, sampler, np.random.default_rng([seed, 3]), starts)
    pure, residual = fit_forms(lags, fit, change)
    days = sampler.reader.days
    observed, exact = obs[CUBE_VARIABLE].values, truth[CUBE_VARIABLE].values

    def scored(cube_target, origins, maps):
        return rmse(
            [
                forms.errors(observed, days, s + WINDOW - 1, cube_target[s + WINDOW : s + WINDOW + STEPS], *maps)
                for s in origins
            ]
        )

    val = scored(observed, split.val, (pure, residual))
    test = scored(exact, split.test, (pure, residual))
    cv_errors = []
    for block in np.array_split(np.sort(starts), 4):
        away = (row_start < block.min() - WINDOW - STEPS) | (row_start > block.max() + WINDOW + STEPS)
        maps = fit_forms(lags[away], fit[away], change[away])
        cv_errors += [
            forms.errors(observed, days, s + WINDOW - 1, observed[s + WINDOW : s + WINDOW + STEPS], *maps)
            for s in block[::2]
        ]
    cv = rmse(cv_errors)
    stage = trainer.lag_prior_stage or {}
    print(
        f"{scene}, seed {seed}: history fit {chosen.fit_history} epochs, ridge {chosen.acceleration_ridge}; "
        f"{lookback} lags, {len(lags)} rows drawn by {row_draw}; training's choice: {'kept' if stage.get('kept') else 'not kept'}"
    )
    for form in ("pure", "residual"):
        key, v = best(val, form)
        print(
            f"  {form:8s} (ridge {key.split()[1]:>6s}): val {v:.3f} (fit {val['fit']:.3f}, ratio {v / val['fit']:.3f}) "
            f"| cv {best(cv, form)[1]:.3f} (fit {cv['fit']:.3f}) | test vs truth {test[key]:.3f} "
            f"(fit {test['fit']:.3f}, ratio {test[key] / test['fit']:.3f})"
        )


def main(argv=None) -> int:
    parser = scene_parser(__doc__, shape="128x128", n_epochs=144, seed=0, scenes="fronts,realistic", resolution=200.0)
    parser.add_argument(
        "--rows",
        choices=("patches", "cells"),
        default="patches",
        help="training rows: 64 patches inside the grid (before a3be0c7) or every cell drawn alike (training now)",
    )
    args = parser.parse_args(argv)
    for scene in args.scenes.split(","):
        run(scene, args.seed, parse_shape(args.shape), args.resolution, args.n_epochs, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
