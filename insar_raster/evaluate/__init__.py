"""Evaluation: baselines and deep models on identical windows, scores, importance, report.

>>> from insar_raster.evaluate import evaluate_cube, write_report
>>> results = evaluate_cube(cube, ["persistence", "lasso", "convlstm"], window=12, steps=3, truth=truth)
>>> write_report(results, "report/")

Every model is fitted on the training samples of one
:func:`~insar_raster.forecast.windows.chronological_split`, tuned/early-stopped on its
validation samples and scored on its test samples, so all models forecast exactly the
same target epochs from the same input epochs. Scores are computed over the cells
where the observation and *every* model's forecast are finite (one common mask), so
the models are scored on identical cells.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
import warnings

import numpy as np
import xarray as xr

from insar_raster.errors import InputError
from insar_raster.evaluate.baselines import BASELINES, cube_values, make_baseline
from insar_raster.evaluate.importance import permutation_importance, shares
from insar_raster.evaluate.metrics import add_skill, score_by_step
from insar_raster.forecast.windows import chronological_split

log = logging.getLogger("insar_raster")

DEEP_MODELS = ("convlstm", "paper", "cnn")
#: Every model, in report order: baselines first, the default deep model last.
ALL_MODELS = ("persistence", "trend", "trend_seasonal", "history_fit", "lasso", "lightgbm", "paper", "cnn", "convlstm")
DEFAULT_MODELS = ALL_MODELS

DESCRIPTIONS = {
    "persistence": "last observed (input) epoch, repeated",
    "trend": "per-pixel least-squares line through the window's epochs",
    "trend_seasonal": "per-pixel line + annual sinusoid (ridge on the seasonal terms) through the window's epochs",
    "history_fit": "per-pixel trend + acceleration + annual cycle (ridge; acceleration penalty chosen on validation) fitted to all past epochs up to the last input (at most 150): the default deep models' prior on its own",
    "lasso": "LASSO on the pixel's last L values (raw mm), one model per step (direct)",
    "lightgbm": "LightGBM on the pixel's last L values (relative to the last) + level + day of year, predicts the change, one model per step (direct)",
    "paper": "the paper's CNN-LSTM (3 conv blocks, LSTM over flattened maps, dense output)",
    "cnn": "ablation: the default model without its recurrent core (CNN without LSTM)",
    "convlstm": "default: per-pixel history prior + its learned symmetric 5x5 spatial filter (trained first), then a fully convolutional encoder, ConvLSTM and velocity decoder whose correction is kept only if it beats that on validation",
}

MULTI_STEP = {"persistence": "the last epoch for every step", "lasso": "direct (one model per step)",
              "lightgbm": "direct (one model per step)", "paper": "all steps at once",
              "cnn": "all steps at once", "convlstm": "all steps at once"}


def parse_models(text) -> list[str]:
    """``"paper,lasso"`` (or a list) -> validated model names, order kept, no duplicates."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in ALL_MODELS]
    if unknown or not names:
        raise InputError("--models", f"unknown model(s) {', '.join(unknown) or '(none given)'}",
                         f"choose from {', '.join(ALL_MODELS)}")
    return list(dict.fromkeys(names))


def _iso_dates(times) -> list[str]:
    return [str(t) for t in np.asarray(times, dtype="datetime64[D]")]


def align_truth(cube: xr.Dataset, truth: xr.Dataset) -> np.ndarray:
    """The truth displacement on the cube's grid and dates, (time, y, x) float32 mm.

    A truth cube on the very same grid is used as is. A truth cube on another grid in
    the same CRS (e.g. the scene grid of ``insar-raster synth`` while the cube was
    gridded from its points, with its own bounds) is interpolated bilinearly onto the
    cube's cell centres, with a warning; cells outside the truth's extent are NaN and
    not scored against truth.

    Raises
    ------
    InputError
        Different CRS, a cube date missing from the truth, or no overlap.
    """
    from pyproj import CRS

    from insar_raster.io.cube import CUBE_VARIABLE

    if CUBE_VARIABLE not in truth or truth[CUBE_VARIABLE].dims != ("time", "y", "x"):
        raise InputError("--truth", f"no '{CUBE_VARIABLE}' (time, y, x) variable in the truth cube")
    cube_dates = np.asarray(cube["time"].values, "datetime64[D]")
    truth_dates = np.asarray(truth["time"].values, "datetime64[D]")
    missing = np.setdiff1d(cube_dates, truth_dates)
    if missing.size:
        raise InputError("--truth", f"{missing.size} cube date(s) are not in the truth cube (first: {missing[0]})",
                         "use the truth written with the same scene")
    da = truth[CUBE_VARIABLE].isel(time=[int(np.flatnonzero(truth_dates == d)[0]) for d in cube_dates])
    same_grid = (da.shape[1:] == cube[CUBE_VARIABLE].shape[1:]
                 and np.allclose(truth["x"].values, cube["x"].values)
                 and np.allclose(truth["y"].values, cube["y"].values))
    if same_grid:
        return np.asarray(da.values, dtype=np.float32)
    crs_cube, crs_truth = cube.rio.crs, truth.rio.crs
    if crs_cube is not None and crs_truth is not None and CRS.from_user_input(crs_cube) != CRS.from_user_input(crs_truth):
        raise InputError("--truth", "truth cube CRS differs from the cube's")
    warnings.warn(f"truth grid ({da.shape[1]}x{da.shape[2]}) differs from the cube grid "
                  f"({cube.sizes['y']}x{cube.sizes['x']}); truth interpolated onto the cube's cells")
    values = np.asarray(da.interp(x=cube["x"].values, y=cube["y"].values, method="linear").values, dtype=np.float32)
    if not np.isfinite(values).any():
        raise InputError("--truth", "truth cube does not overlap the cube")
    return values


def _fit_model(name, cube, split, window, steps, seed, epochs, device, max_rows, train_options, progress,
               fractions=(0.15, 0.15)):
    """Fit one model; returns (model, details dict)."""
    if name in BASELINES:
        history = int((train_options or {}).get("history_epochs", 150))
        model = make_baseline(name, window, steps, seed=seed, max_rows=max_rows,
                              history_epochs=history).fit(cube, split)
        details = {}
        if hasattr(model, "alpha"):
            details["alpha"] = model.alpha
        for ridge in ("seasonal_ridge", "acceleration_ridge"):
            if getattr(model, ridge, None) is not None:
                details[ridge] = getattr(model, ridge)
        if getattr(model, "history", window) > window:
            details["history_epochs"] = int(model.history)
        if getattr(model, "n_train_rows_", 0):
            details["train_rows"] = int(model.n_train_rows_)
        if name == "lightgbm":
            details["trees_per_step"] = [int(m.best_iteration_ or m.n_estimators) for m in model.models_]
        return model, details
    from insar_raster.forecast.train import TrainConfig, train_model

    options = dict(train_options or {})
    if epochs is not None:
        options["epochs"] = int(epochs)
    config = TrainConfig(arch=name, window=window, steps=steps, seed=seed, device=device,
                         val_fraction=fractions[0], test_fraction=fractions[1],
                         **options)
    model = train_model(cube, config, split=split, progress=progress)
    return model, _deep_details(model)


def _deep_details(model) -> dict:
    """What to report about a trained Forecaster."""
    # History entries of the network's training epochs (an "epoch 0" entry, if any, is the
    # model before its network learned: the history prior, filtered if stage 1 kept a filter).
    trained = [h for h in model.history if int(h.get("epoch", 1)) >= 1]
    best = min(model.history, key=lambda h: h["val_loss"]) if model.history else {}
    details = {"epochs_trained": len(trained), "best_epoch": model.metadata.get("best_epoch", best.get("epoch")),
               "val_rmse_mm": model.metadata.get("val_rmse_mm"),
               "val_history_fit_rmse_mm": model.metadata.get("val_history_fit_rmse_mm"),
               "parameters": int(sum(p.numel() for p in model.model.parameters())),
               "prior_filter": model.metadata.get("prior_filter"),
               # The network's best validation score even when it was not kept, so that
               # architectures can be compared (the ablation) when none beat the prior.
               "network_best_val_rmse_mm": min((h["val_rmse_mm"] for h in trained if h.get("val_rmse_mm") is not None),
                                               default=None),
               "config": dataclasses.asdict(model.config)}
    return details


def _check_pretrained(name: str, model, split) -> None:
    """Refuse a pretrained model that does not fit this evaluation (InputError)."""
    if name not in DEEP_MODELS:
        raise InputError("--model", f"pretrained model name {name!r} is not a deep model ({', '.join(DEEP_MODELS)})")
    if (model.window, model.steps) != (split.window, split.steps):
        raise InputError("--model", f"model has window {model.window} and steps {model.steps}; this evaluation "
                         f"uses window {split.window} and steps {split.steps}",
                         f"pass --window {model.window} --steps {model.steps}")
    trained = (model.metadata or {}).get("split", {})
    if trained.get("val_end") is None or int(trained["val_end"]) > split.val_end or \
            int(trained.get("n_times", split.n_times)) != split.n_times:
        raise InputError("--model", "the model's training/validation epochs overlap this evaluation's test epochs "
                         "(or its split is unknown)", "train it on the same cube with the same split fractions")


def _quiet_affine(func):
    """Silence rioxarray's Affine ``*`` pending-deprecation warning inside ``func``.

    rioxarray composes Affines with ``*`` (affine>=2.4 flags it) each time a model reads
    the cube's transform; there is nothing for the user to act on.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*matmul.*", category=PendingDeprecationWarning)
            return func(*args, **kwargs)

    return wrapper


@_quiet_affine
def evaluate_cube(
    cube: xr.Dataset,
    models=DEFAULT_MODELS,
    window: int = 12,
    steps: int = 6,
    truth: xr.Dataset | None = None,
    seed: int = 0,
    epochs: int | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    device: str = "auto",
    max_rows: int = 100_000,
    permutation_repeats: int = 2,
    permutation_models=("history_fit", "lasso", "lightgbm", "paper", "cnn", "convlstm"),
    train_options: dict | None = None,
    progress: bool = False,
    keep_arrays: bool = True,
    pretrained: dict | None = None,
) -> dict:
    """Fit every model on the same chronological split and score it on the test samples.

    Parameters
    ----------
    cube : xarray.Dataset
        Cube layout of :mod:`insar_raster.io.cube` (``displacement`` in mm).
    models : iterable of str
        Names from :data:`ALL_MODELS`; ``persistence`` is always added (it is the
        reference of the skill score).
    window, steps : int
        Input epochs and forecast horizon (epochs) of every model.
    truth : xarray.Dataset, optional
        Noise-free cube on the same grid and dates (synthetic scenes): forecasts are
        also scored against it.
    seed : int
        Seed of every model (row subsampling, boosting, network initialisation).
    epochs : int, optional
        Maximum training epochs of the deep models (default: their own default).
    val_fraction, test_fraction : float
        Shares of epochs for validation and test (see ``chronological_split``).
    device : str
        Deep models: ``auto``, ``cpu`` or ``cuda``.
    max_rows : int
        Training rows (sample x pixel) of LASSO and LightGBM.
    permutation_repeats : int
        Donor windows per lag in the permutation test (0 disables it); see
        :func:`~insar_raster.evaluate.importance.permutation_importance`.
    permutation_models : iterable of str
        Models that get the permutation test (when evaluated).
    train_options : dict, optional
        Extra :class:`~insar_raster.forecast.train.TrainConfig` fields for deep models.
    keep_arrays : bool
        Keep the test forecasts (``results["_arrays"]``) for the figures.
    pretrained : dict, optional
        ``{name: Forecaster}``: deep models already trained (e.g. loaded with
        :func:`insar_raster.forecast.modelfile.load_model`) to score instead of training
        them here. Each must have this ``window`` and ``steps`` and must not have been
        trained or validated on this split's test epochs.

    Returns
    -------
    dict
        JSON-ready results (see :func:`write_report`): ``window``, ``steps``, ``split``,
        ``test_dates``, ``models`` (per model: ``observed`` and optionally ``truth``
        scores, ``overall`` and ``per_step``), ``importance``, ``ranking``, plus the
        non-JSON ``_arrays`` when ``keep_arrays``.
    """
    from insar_raster.io.cube import CUBE_VARIABLE

    names = parse_models(models)
    if "persistence" not in names:
        names = ["persistence"] + names
    n_times = cube.sizes["time"]
    try:
        split = chronological_split(n_times, window, steps, val_fraction, test_fraction)
    except ValueError as exc:
        raise InputError(None, f"cannot split the cube: {exc}") from None
    truth_values = align_truth(cube, truth) if truth is not None else None
    values = cube_values(cube)
    if not np.isfinite(values).any():
        raise InputError(None, "cube is entirely masked (NaN)")

    test_targets = split.target_indices("test")
    observed = values[test_targets]
    reference = values[split.test + window - 1][:, None]  # last input epoch of each sample
    times = cube["time"].values
    predictions, fitted, info = {}, {}, {}
    pretrained = dict(pretrained or {})
    for name, model in pretrained.items():
        _check_pretrained(name, model, split)
        if name not in names:
            names.append(name)
    for name in names:
        log.info("evaluate: %s %s", "scoring pretrained" if name in pretrained else "fitting", name)
        t0 = time.perf_counter()
        if name in pretrained:
            model, details = pretrained[name], {"pretrained": True, **_deep_details(pretrained[name])}
        else:
            model, details = _fit_model(name, cube, split, window, steps, seed, epochs, device, max_rows,
                                        train_options, progress, (val_fraction, test_fraction))
        t1 = time.perf_counter()
        predictions[name] = np.asarray(model.predict_windows(cube, split.test), dtype=np.float32)
        t2 = time.perf_counter()
        fitted[name] = model
        info[name] = {"kind": "deep" if name in DEEP_MODELS else "baseline", "description": DESCRIPTIONS[name],
                      "multi_step": MULTI_STEP.get(name, "extrapolation of the per-pixel fit"),
                      "fit_seconds": round(t1 - t0, 3), "predict_seconds": round(t2 - t1, 3), "details": details}

    # One mask for all: cells where the observation and every forecast are finite.
    common = np.isfinite(observed)
    for pred in predictions.values():
        common &= np.isfinite(pred)
    if not common.any():
        raise InputError(None, "no test cell is observed and forecast by every model")
    truth_common = None
    if truth_values is not None:
        truth_targets = truth_values[test_targets]
        truth_common = common & np.isfinite(truth_targets)

    for name, pred in predictions.items():
        info[name]["observed"] = score_by_step(pred, observed, common, reference)
        if truth_values is not None:
            info[name]["truth"] = score_by_step(pred, truth_targets, truth_common, reference)
    for against in ("observed", "truth") if truth_values is not None else ("observed",):
        ref = info["persistence"][against]
        for name in names:
            add_skill(info[name][against], ref)

    importance = {}
    if "lasso" in fitted:
        coef = fitted["lasso"].lag_importance()
        importance["lasso"] = {"abs_coefficient": coef.tolist(), "share": shares(coef).tolist(),
                               "signed_coefficient": np.stack([m.coef_ for m in fitted["lasso"].models_]).tolist()}
    if "lightgbm" in fitted:
        gain = fitted["lightgbm"].lag_importance()
        importance["lightgbm"] = {"gain": gain.tolist(), "share": shares(gain).tolist()}
    permutation = {}
    if permutation_repeats > 0 and len(split.test) and split.test.min() >= window + steps:
        for name in names:
            if name in permutation_models:
                log.info("evaluate: permutation test for %s", name)
                permutation[name] = permutation_importance(fitted[name], cube, split.test, window, steps,
                                                           permutation_repeats, common)
    importance["permutation"] = permutation

    ranking = sorted(names, key=lambda n: info[n]["observed"]["overall"]["rmse"])
    test_dates = [_iso_dates(times[row]) for row in test_targets]
    results = {
        "cube": {"shape": [int(v) for v in cube[CUBE_VARIABLE].shape], "first_date": _iso_dates(times[:1])[0],
                 "last_date": _iso_dates(times[-1:])[0], "source": str(cube.attrs.get("source", "")),
                 "resolution_m": _resolution(cube)},
        "window": int(window), "steps": int(steps), "seed": int(seed),
        "seeds": {name: int(pretrained[name].config.seed) if name in pretrained else int(seed) for name in names},
        "split": {"n_times": int(n_times), "train_end": int(split.train_end), "val_end": int(split.val_end),
                  "val_fraction": val_fraction, "test_fraction": test_fraction,
                  "train_samples": int(len(split.train)), "val_samples": int(len(split.val)),
                  "test_samples": int(len(split.test)), "test_starts": split.test.tolist()},
        "test_dates": test_dates,
        "test_target_dates": sorted(set(d for row in test_dates for d in row)),
        "evaluation_cells": {"observed": int(common.sum()),
                             "truth": int(truth_common.sum()) if truth_common is not None else None},
        "has_truth": truth_values is not None,
        "models": info,
        "ranking": ranking,
        "importance": importance,
    }
    if keep_arrays:
        results["_arrays"] = {"predictions": predictions, "observed": observed, "truth": truth_targets if truth_values is not None else None,
                              "common": common, "reference": reference}
    return results


def _resolution(cube: xr.Dataset) -> float | None:
    from insar_raster.gis.raster import grid_transform

    try:
        return float(abs(grid_transform(cube).a))
    except Exception:  # a cube without a usable transform still evaluates
        return None


def resample_cube(cube: xr.Dataset, size: int) -> xr.Dataset:
    """The cube on a ``size`` x ``size`` grid over the same extent (bilinear, NaN-aware).

    Used by ``--resolutions`` to repeat the study across grid sizes as the paper did
    (it regridded the points at 128, 256 and 512 cells). Cells whose bilinear
    neighbours include a masked cell stay masked.
    """
    from insar_raster.gis.raster import grid_transform
    from insar_raster.grid.spec import GridSpec
    from insar_raster.io.cube import CUBE_VARIABLE, make_cube

    transform = grid_transform(cube)
    height, width = cube.sizes["y"], cube.sizes["x"]
    extent = max(height * abs(transform.e), width * abs(transform.a))
    resolution = extent / size
    spec = GridSpec(cube.rio.crs, resolution, transform.c, transform.f,
                    max(1, int(round(width * abs(transform.a) / resolution))),
                    max(1, int(round(height * abs(transform.e) / resolution))))
    da = cube[CUBE_VARIABLE].interp(x=spec.x, y=spec.y, method="linear",
                                    kwargs={"fill_value": None})
    return make_cube(np.asarray(da.values, dtype=np.float32), cube["time"].values, spec,
                     attrs={k: v for k, v in cube.attrs.items() if k in ("source", "method")})


def format_table(results: dict, against: str = "observed") -> str:
    """The headline table (overall scores per model) as Markdown text."""
    from insar_raster.evaluate.report import overall_table

    return overall_table(results, against)


def write_report(results: dict, folder, overwrite: bool = False):
    """Write ``metrics.json``, ``report.md`` and PNG figures into ``folder`` atomically.

    See :func:`insar_raster.evaluate.report.write_report`.
    """
    from insar_raster.evaluate.report import write_report as _write

    return _write(results, folder, overwrite)


__all__ = ["evaluate_cube", "evaluate_resolutions", "write_report", "format_table", "parse_models", "resample_cube",
           "ALL_MODELS", "DEFAULT_MODELS", "DEEP_MODELS"]


def evaluate_resolutions(cube: xr.Dataset, sizes, truth: xr.Dataset | None = None, **options) -> tuple[list, dict]:
    """Repeat :func:`evaluate_cube` with the cube resampled to each grid size.

    Parameters
    ----------
    cube, truth : xarray.Dataset
    sizes : iterable of int
        Cells along the longer side, e.g. ``(128, 256, 512)`` as in the paper.
    **options
        Passed to :func:`evaluate_cube` (the permutation test is skipped).

    Returns
    -------
    study : list of dict
        Per size: ``size``, ``resolution_m``, ``shape``, ``rmse`` (per model, mm, vs
        the resampled observations).
    full : dict
        Per size (as a string): the JSON-ready results of that run.
    """
    options = {**options, "permutation_repeats": 0, "keep_arrays": False}
    study, full = [], {}
    for size in sizes:
        log.info("evaluate: grid size %d", size)
        small = resample_cube(cube, int(size))
        small_truth = resample_cube(truth, int(size)) if truth is not None else None
        res = evaluate_cube(small, truth=small_truth, **options)
        study.append({"size": int(size), "resolution_m": res["cube"]["resolution_m"], "shape": res["cube"]["shape"][1:],
                      "rmse": {n: m["observed"]["overall"]["rmse"] for n, m in res["models"].items()}})
        full[str(size)] = res
    return study, full
