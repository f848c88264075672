"""The learned linear prior fitted to the cells' local errors only, prior alone (issue 12).

Idea measured: the learned map corrects only the *local* part of the history fit's
error and leaves the scene-wide part (one value per forecast and step, shared by every
cell) to the history fit. The map is fitted on features and residual targets with their
per-(sample, step) mean over the whole grid's valid cells removed, and applied as
``fit + W (f - grid mean of f)``: the grid mean of its correction is zero on every
forecast. ``f`` = the lags and the history fit's changes (the residual form of
``train._fit_lag_prior``), the rows ``train._lag_prior_rows`` (the trainer's draw); the
grid means are over the cells whose lags and fit are known (and, for the targets, whose
next ``steps`` epochs are observed).

For each scene/seed it prints, for the map as trained today (``main``) and the local
map (``local``): the ridge validation picks and the validation MSE ratio to the history
fit on the trainer's patches (kept where below ``1 - LAG_PRIOR_MARGIN``); on every cell
of the test samples against the noise-free truth, the RMSE (mm) of the history fit and of
each map (the validation-picked ridge, whether kept or not), and the scene-wide mean
square at step 6 (mm^2: each test forecast's mean error over the cells, squared, mean
over the samples).

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lag_prior_local.py \
        --scenes fronts,realistic,switching,urban --seed 0

Since session 16 the library fits this form beside the other (``lag_prior_centred``);
``--whole`` trains and scores the default model as the library builds it.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import torch
from _args import parse_shape, scene_parser

from insar_raster.forecast import train as T
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import LAG_PRIOR_MARGIN, LAG_PRIOR_RIDGES, history_eval, history_fit, lag_features
from insar_raster.forecast.windows import chronological_split, lookback_epochs
from insar_raster.io.cube import CUBE_VARIABLE
from insar_raster.synth import make_scene_cube

WINDOW, STEPS = 12, 6


def grid_features(observed, days, last, lookback, fit_history, ridge, step_days):
    """Every cell's lags (lookback, h, w), fit changes and observed changes (steps, h, w)
    for the forecast from epoch ``last`` (the observed changes NaN past the record)."""
    first = max(0, last - max(lookback, fit_history - 1))
    past, past_days = observed[first : last + 1], days[first : last + 1]
    lags = lag_features(past, past_days, lookback, step_days)
    f0 = max(0, len(past_days) - fit_history)
    coef = history_fit(past[f0:], past_days[f0:], past_days[-1], ridge)
    fit = history_eval(coef, days[last + 1 : last + 1 + STEPS], past_days[-1]) - observed[last][None]
    change = np.full_like(fit, np.nan)
    ahead = observed[last + 1 : last + 1 + STEPS] - observed[last][None]
    change[: len(ahead)] = ahead
    return lags, fit, change


def grid_means(observed, days, last, lookback, fit_history, ridge, step_days):
    """Grid means of the features (lookback + steps,) over the cells where they are
    known, and of the residual target (steps,) over those whose targets are observed."""
    lags, fit, change = grid_features(observed, days, last, lookback, fit_history, ridge, step_days)
    known = np.isfinite(lags).all(0) & np.isfinite(fit).all(0)
    feat = np.concatenate([lags[:, known], fit[:, known]]).mean(axis=1)
    seen = known & np.isfinite(change).all(0)
    target = (change - fit)[:, seen].mean(axis=1) if seen.any() else np.zeros(STEPS)
    return feat, target


def predict(lags, fit, weights, local_mean=None):
    """The prior's change (steps, h, w): ``fit + W f`` (minus ``W`` times the features'
    grid mean for the local map); the fit where a feature is unknown."""
    w_lags, w_fit = weights
    f = np.concatenate([lags, fit])
    w = np.hstack([w_lags, w_fit])
    corr = np.einsum("kj,jhw->khw", w, f)
    if local_mean is not None:
        corr = corr - (w @ local_mean)[:, None, None]
    out = fit + corr
    return np.where(np.isfinite(out), out, fit)


def val_mse(trainer, base, weights, means):
    """Validation MSE (normalised units) of ``weights`` on the trainer's patches; with
    ``means`` ({origin: grid feature mean}), the local map."""
    trainer.sampler.config = replace(base, lag_prior=weights[0], lag_prior_fit=weights[1])
    batch = trainer.sampler.batch(*trainer.val_draw)
    prior = batch.prior.astype(np.float64)
    if means is not None:
        w = np.hstack(weights)
        scale = trainer.norm.scale_mm
        for i, s in enumerate(np.asarray(trainer.val_draw[0])):
            prior[i] -= (w @ means[int(s) + WINDOW - 1])[:, None, None] / scale
    err = np.where(batch.valid > 0, prior - batch.y, np.nan)
    return float(np.nanmean(err**2))


def run(scene, seed, shape, resolution, n_epochs, train_seed=None, points=None):
    if points:
        import warnings

        from insar_raster.grid.gridding import grid_points
        from insar_raster.synth import make_scene

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obs, truth = grid_points(make_scene(points, shape, n_epochs, scene=scene, seed=seed)[0]).compute(), None
    else:
        obs, truth = make_scene_cube(shape, n_epochs, WINDOW, scene, seed, resolution=resolution)
    split = chronological_split(obs.sizes["time"], WINDOW, STEPS)
    train_seed = seed if train_seed is None else train_seed
    config = TrainConfig(window=WINDOW, steps=STEPS, seed=train_seed)
    trainer = T._Trainer(obs, config, split, split.val, False, None, T._world_from_env(), torch.device("cpu"), 1)
    base = replace(trainer.config, lag_prior=None, lag_prior_fit=None, lag_prior_centred=False)
    ridge, fit_history = base.acceleration_ridge or 0.0, base.fit_history
    sampler = trainer.sampler
    days, step_days = sampler.reader.days, sampler.norm.step_days
    observed = obs[CUBE_VARIABLE].values.astype(np.float64)
    exact = (
        observed if truth is None else truth[CUBE_VARIABLE].values.astype(np.float64)
    )  # MPs: the gridded observations
    lookback = lookback_epochs(split, WINDOW, base.history_epochs - 1)
    starts = trainer.train_starts[trainer.train_starts + WINDOW >= lookback + 1]
    *rows, whole, origin = T._lag_prior_rows(
        sampler, np.random.default_rng([train_seed, 3]), starts, lookback, fit_history, ridge, origins=True
    )
    lags, fit, change = (a[whole] for a in rows)
    origin = origin[whole]
    ones = np.ones(len(lags), bool)
    main_maps = T._fit_lag_prior(lags, fit, change, ones)
    if not main_maps or main_maps[0][1] is None:
        print(f"{scene}, seed {seed}: no residual-form rows", flush=True)
        return
    mean_of = {}
    for last in np.unique(np.concatenate([origin, np.asarray(trainer.val_draw[0]) + WINDOW - 1])):
        mean_of[int(last)] = grid_means(observed, days, int(last), lookback, fit_history, ridge, step_days)
    mf = np.stack([mean_of[int(o)][0] for o in origin])
    mt = np.stack([mean_of[int(o)][1] for o in origin])
    lags_d, fit_d = lags - mf[:, :lookback], fit - mf[:, lookback:]
    change_d = (change - fit) - mt + fit_d  # so that change_d - fit_d is the demeaned residual target
    local_maps = T._fit_lag_prior(lags_d, fit_d, change_d, ones)
    feat_means = {k: v[0] for k, v in mean_of.items()}

    trainer.sampler.config = base
    incumbent = float(
        np.nanmean(
            np.where(
                (b := trainer.sampler.batch(*trainer.val_draw)).valid > 0,
                b.prior.astype(np.float64) - b.y,
                np.nan,
            )
            ** 2
        )
    )
    out = {}
    for name, maps, means in (("main", main_maps, None), ("local", local_maps, feat_means)):
        scores = [val_mse(trainer, base, w, means) for w in maps]
        best = int(np.argmin(scores))
        out[name] = (best, scores[best] / incumbent, scores[best] < (1 - LAG_PRIOR_MARGIN) * incumbent, maps[best])
    sq = {k: [] for k in ("fit", "main", "local")}
    wide = {k: [] for k in sq}
    for s in split.test:
        last = int(s) + WINDOW - 1
        g_lags, g_fit, _ = grid_features(observed, days, last, lookback, fit_history, ridge, step_days)
        target = exact[last + 1 : last + 1 + STEPS] - observed[last][None]
        known = np.isfinite(g_lags).all(0) & np.isfinite(g_fit).all(0)
        m = np.concatenate([g_lags[:, known], g_fit[:, known]]).mean(axis=1)
        preds = {
            "fit": g_fit,
            "main": predict(g_lags, g_fit, out["main"][3]),
            "local": predict(g_lags, g_fit, out["local"][3], m),
        }
        for k, p in preds.items():
            e = p - target
            sq[k].append(e**2)
            wide[k].append(np.nanmean(e, axis=(1, 2)) ** 2)
    rmse = {k: float(np.sqrt(np.nanmean(v))) for k, v in sq.items()}
    w6 = {k: float(np.mean(np.stack(v)[:, -1])) for k, v in wide.items()}
    wall = {k: float(np.mean(np.stack(v))) for k, v in wide.items()}
    line = f"{scene}, seed {seed}{' (MPs, test vs the gridded observations)' if truth is None else ''}: fit test {rmse['fit']:.3f} wide6 {w6['fit']:.2f} wide {wall['fit']:.2f}"
    for k in ("main", "local"):
        best, ratio, kept, _ = out[k]
        line += (
            f" | {k}: val {ratio:.3f} (ridge {LAG_PRIOR_RIDGES[best]:g}) {'KEPT' if kept else 'no'}"
            f" test {rmse[k]:.3f} ({rmse[k] / rmse['fit']:.3f}) wide6 {w6[k]:.2f} wide {wall[k]:.2f}"
        )
    print(line, flush=True)
    return base, lookback, out["local"]


def whole_model(scene, seed, shape, resolution, n_epochs):
    """The default model (``convlstm``, ``evaluate`` split) as the library trains it
    (since session 16 it fits both forms of the learned prior and validation picks one;
    session 15 injected the centred map here by wrapping ``LinearPrior.change``). Prints
    the RMSE (mm) against the truth on the test samples, the scene-wide mean square at
    step 6, the history prior's length and acceleration ridge, the prior form, the
    network's best epoch, the 80 % coverage per step and the validation RMSE per epoch
    (epoch 0: the prior and its filter)."""
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from grid_intervals import coverage

    from insar_raster.evaluate.config import EvaluateConfig
    from insar_raster.evaluate.registry import make_model

    cube, truth = make_scene_cube(shape, n_epochs, WINDOW, scene, seed, resolution=resolution)
    split = chronological_split(cube.sizes["time"], WINDOW, STEPS)
    model = make_model("convlstm", EvaluateConfig(window=WINDOW, steps=STEPS, seed=seed), None, False)
    model.fit(cube, split)
    forecast = model.predict_windows(cube, split.test)
    index = split.target_indices("test")
    observed = cube[CUBE_VARIABLE].values[index]
    err = forecast - truth[CUBE_VARIABLE].values[index]
    rmse = float(np.sqrt(np.nanmean(err**2)))
    wide6 = float(np.mean(np.nanmean(err[:, -1], axis=(1, 2)) ** 2))
    cov = coverage(model, cube, split.test, forecast, observed, 80.0)["stored"]
    lag = model.metadata_.get("lag_prior") or {}
    form = lag.get("form", "-") + ("" if lag.get("kept") else " (not kept)")
    print(
        f"{scene}, seed {seed}: test RMSE vs truth {rmse:.3f} mm, scene-wide MS step 6 {wide6:.2f} mm^2, "
        f"history prior {model.config_.fit_history} epochs, acceleration ridge {model.config_.acceleration_ridge:g}, "
        f"learned prior {form}, best epoch {model.metadata_.get('best_epoch')}, 80 % coverage "
        + ", ".join(f"{c:.1f}" for c in cov)
        + "; validation RMSE per epoch "
        + " ".join(f"{h['val_rmse_mm']:.3f}" for h in model.history_),
        flush=True,
    )


def main(argv=None) -> int:
    parser = scene_parser(__doc__, shape="128x128", n_epochs=144, seed=0, scenes="urban", resolution=200.0)
    parser.add_argument(
        "--whole",
        action="store_true",
        help="train and score the whole default model (which picks the prior's form on validation) instead",
    )
    parser.add_argument(
        "--train-seed", type=int, default=None, help="the training seed, if not the scene's (train_speed.py: 0)"
    )
    parser.add_argument(
        "--points",
        type=int,
        default=None,
        help="grid this many MPs (points_scenes.py's cubes; test against the gridded observations)",
    )
    args = parser.parse_args(argv)
    for scene in args.scenes.split(","):
        if args.whole:
            whole_model(scene, args.seed, parse_shape(args.shape), args.resolution, args.n_epochs)
            continue
        run(scene, args.seed, parse_shape(args.shape), args.resolution, args.n_epochs, args.train_seed, args.points)
    return 0


if __name__ == "__main__":
    sys.exit(main())
