"""Every model on one chronological split, scored on the same test epochs and cells.

Every model is fitted on the training samples of one
:func:`~insar_raster.forecast.windows.chronological_split`, tuned/early-stopped on its
validation samples and scored on its test samples, so all models forecast exactly the
same target epochs from the same input epochs. Scores are computed over the cells
where the observation and *every* model's forecast are finite (one common mask), so
the models are scored on identical cells. The models are estimators of the protocol in
:mod:`insar_raster.forecast.estimator`, made by name from
:mod:`insar_raster.evaluate.registry`.
"""

from __future__ import annotations

import functools
import logging
import time
import warnings

import numpy as np
import xarray as xr

from insar_raster.errors import InputError
from insar_raster.evaluate.baselines import cube_values
from insar_raster.evaluate.config import EvaluateConfig
from insar_raster.evaluate.importance import permutation_importance
from insar_raster.evaluate.metrics import add_skill, score_by_step
from insar_raster.evaluate.registry import (
    DEEP_MODELS,
    DEFAULT_MODELS,
    MODELS,
    PERMUTATION_MODELS,
    make_model,
    parse_models,
)
from insar_raster.evaluate.truth import align_truth
from insar_raster.forecast.resample import resampled_step
from insar_raster.forecast.windows import chronological_split
from insar_raster.io.layout import is_geographic

log = logging.getLogger("insar_raster")


def _iso_dates(times) -> list[str]:
    return [str(t) for t in np.asarray(times, dtype="datetime64[D]")]


def _check_pretrained(name: str, model, split) -> None:
    """Refuse a pretrained model that does not fit this evaluation (InputError)."""
    if name not in DEEP_MODELS:
        raise InputError(
            None, f"pretrained model name {name!r} is not a deep model ({', '.join(DEEP_MODELS)})", param="pretrained"
        )
    if (model.window, model.steps) != (split.window, split.steps):
        raise InputError(
            None,
            f"model has window {model.window} and steps {model.steps}; this evaluation "
            f"uses window {split.window} and steps {split.steps}",
            f"pass window={model.window} steps={model.steps}",
            param="pretrained",
        )
    trained = (model.metadata or {}).get("split", {})
    if (
        trained.get("val_end") is None
        or int(trained["val_end"]) > split.val_end
        or int(trained.get("n_times", split.n_times)) != split.n_times
    ):
        raise InputError(
            None,
            "the model's training/validation epochs overlap this evaluation's test epochs (or its split is unknown)",
            "train it on the same cube with the same split fractions",
            param="pretrained",
        )


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
    window: int = EvaluateConfig.window,
    steps: int = EvaluateConfig.steps,
    truth: xr.Dataset | None = None,
    seed: int = EvaluateConfig.seed,
    epochs: int | None = EvaluateConfig.epochs,
    val_fraction: float = EvaluateConfig.val_fraction,
    test_fraction: float = EvaluateConfig.test_fraction,
    device: str = EvaluateConfig.device,
    max_rows: int = EvaluateConfig.max_rows,
    permutation_repeats: int = EvaluateConfig.permutation_repeats,
    permutation_models=PERMUTATION_MODELS,
    train_options: dict | None = None,
    progress: bool = False,
    keep_arrays: bool = True,
    pretrained: dict | None = None,
    points: xr.Dataset | None = None,
    holdout_block: int | None = None,
    point_base: str | None = None,
    interval: float | None = EvaluateConfig.interval,
) -> dict:
    """Fit every model on the same chronological split and score it on the test samples.

    Parameters
    ----------
    cube : xarray.Dataset
        Cube layout of :mod:`insar_raster.io.cube` (``displacement`` in mm).
    models : iterable of str
        Names from :data:`~insar_raster.evaluate.registry.ALL_MODELS`; ``persistence`` is always added (it is the
        reference of the skill score).
    window, steps : int
        Input epochs and forecast horizon (epochs) of every model; this and the
        other settings default to :class:`~insar_raster.evaluate.config.EvaluateConfig`.
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
        Extra :class:`~insar_raster.forecast.config.TrainConfig` fields for deep models.
    keep_arrays : bool
        Keep the test forecasts (``results["_arrays"]``) for the figures.
    pretrained : dict, optional
        ``{name: Forecaster}``: deep models already trained (e.g. loaded with
        :func:`insar_raster.forecast.modelfile.load_model`) to score instead of training
        them here. Each must have this ``window`` and ``steps`` and must not have been
        trained or validated on this split's test epochs.
    points : xarray.Dataset, optional
        Measurement points (points layout, e.g. those the cube was gridded from): every
        model is also scored at the MPs against their own values, beside per-MP
        persistence, the per-MP history fit and the point forecast (see
        :mod:`insar_raster.evaluate.points`); results under ``points``.
    holdout_block : int, optional
        Spatial hold-out: blocks of this many cells (one block in four, see
        :func:`~insar_raster.evaluate.points.holdout_blocks`) are masked in the cube
        every model is fitted on, so their cells and MPs are never a training target;
        they are scored apart (``holdout`` in the results). Not with ``pretrained``.
    point_base : str, optional
        The model whose grid forecast the point forecast uses (default: the default deep
        model when evaluated, else ``history_fit``, else the last model).
    interval : float or None
        Level (percent) of the calibrated forecast intervals scored on the test epochs
        (coverage of the observations and mean width per step) for the models that
        carry an interval calibration (:mod:`insar_raster.forecast.intervals`); None
        skips it.

    Returns
    -------
    dict
        JSON-ready results (see :func:`insar_raster.evaluate.report.write_report`): ``window``, ``steps``, ``split``,
        ``test_dates``, ``models`` (per model: ``observed`` and optionally ``truth``
        scores, ``overall`` and ``per_step``), ``importance``, ``ranking``, plus the
        non-JSON ``_arrays`` when ``keep_arrays``.
    """
    from insar_raster.io.cube import CUBE_VARIABLE

    config = EvaluateConfig(
        window=window,
        steps=steps,
        seed=seed,
        epochs=epochs,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        device=device,
        max_rows=max_rows,
        permutation_repeats=permutation_repeats,
        interval=interval,
    )
    if interval is not None and not 50 <= float(interval) <= 99:
        raise InputError(None, f"must be between 50 and 99 (percent), got {interval:g}", param="interval")
    names = parse_models(models)
    if "persistence" not in names:
        names = ["persistence"] + names
    n_times = cube.sizes["time"]
    try:
        split = chronological_split(n_times, window, steps, val_fraction, test_fraction)
    except ValueError as exc:
        raise InputError(None, f"cannot split the cube: {exc}") from None
    truth_values = align_truth(cube, truth) if truth is not None else None
    fit_cube, holdout = cube, None
    if holdout_block:
        from insar_raster.evaluate.points import holdout_blocks

        if pretrained:
            raise InputError(
                None,
                "a pretrained model has been trained on every cell; a spatial hold-out needs "
                "the models trained in this evaluation",
            )
        try:
            holdout = holdout_blocks((cube.sizes["y"], cube.sizes["x"]), holdout_block)
        except ValueError as exc:
            raise InputError(None, f"spatial hold-out: {exc}") from None
        fit_cube = cube.where(~xr.DataArray(holdout, dims=("y", "x")))
        log.info(
            "evaluate: %d cells in held-out blocks of %d cells are no training target",
            int(holdout.sum()),
            int(holdout_block),
        )
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
    from insar_raster.progress import StageBar

    will_permute = permutation_repeats > 0 and len(split.test) and split.test.min() >= window + steps
    n_stages = len(names) + (sum(n in permutation_models for n in names) if will_permute else 0)
    bar = StageBar(n_stages, "evaluate", disable=not progress)
    for name in names:
        what = "scoring pretrained" if name in pretrained else "fitting"
        log.info("evaluate: %s %s", what, name)
        bar.stage(f"{what} {name}")
        t0 = time.perf_counter()
        if name in pretrained:
            model = pretrained[name]
            details = {"pretrained": True, **model.details()}
        else:
            # One bar for the whole run: the models' own (training epochs) only without it.
            model = make_model(name, config, train_options, progress and not bar.active)
            # The default ensemble reuses the convlstm and cnn trained above (same settings).
            trained_here = {n: m for n, m in fitted.items() if n not in pretrained}
            members = getattr(model, "reusable_members", lambda _: None)(trained_here)
            model = model.fit_from_members(fit_cube, split, members) if members else model.fit(fit_cube, split)
            details = model.details()
        t1 = time.perf_counter()
        predictions[name] = np.asarray(model.predict_windows(cube, split.test), dtype=np.float32)
        t2 = time.perf_counter()
        fitted[name] = model
        entry = MODELS[name]
        info[name] = {
            "kind": entry.kind,
            "description": entry.description,
            "multi_step": entry.multi_step,
            "fit_seconds": round(t1 - t0, 3),
            "predict_seconds": round(t2 - t1, 3),
            "details": details,
        }

    # One mask for all: cells where the observation and every forecast are finite.
    common = np.isfinite(observed)
    for pred in predictions.values():
        common &= np.isfinite(pred)
    if not common.any():
        bar.bar.close()
        raise InputError(None, "no test cell is observed and forecast by every model")
    truth_common = None
    if truth_values is not None:
        truth_targets = truth_values[test_targets]
        truth_common = common & np.isfinite(truth_targets)

    for name, pred in predictions.items():
        info[name]["observed"] = score_by_step(pred, observed, common, reference)
        if truth_values is not None:
            info[name]["truth"] = score_by_step(pred, truth_targets, truth_common, reference)
    # Scenes with fronts: the cells a front reaches during each sample's horizon.
    from insar_raster.evaluate.fronts import front_cells

    # Split by whether the panel that reaches the cell had started at forecast time
    # ("started": predictable from the face's recent motion upstream) or starts later ("new").
    for panels, key in (
        ("all", "truth_front_cells"),
        ("started", "truth_front_cells_started"),
        ("new", "truth_front_cells_new"),
    ):
        fronts = front_cells(truth, cube, split, panels=panels) if truth_values is not None else None
        if fronts is not None and (truth_common & fronts).any():
            for name, pred in predictions.items():
                info[name][key] = score_by_step(pred, truth_targets, truth_common & fronts, reference)
    if interval is not None:
        from insar_raster.forecast.intervals import coverage_and_width

        for name, model in fitted.items():
            if getattr(model, "has_intervals", False):
                lower, upper = model.interval_bounds(cube, split.test, predictions[name], interval)
                cover, width = coverage_and_width(lower, upper, observed)
                info[name]["interval"] = {
                    "level_percent": float(interval),
                    "coverage_percent": cover.tolist(),
                    "mean_width_mm": width.tolist(),
                }
    for against in ("observed", "truth") if truth_values is not None else ("observed",):
        ref = info["persistence"][against]
        for name in names:
            add_skill(info[name][against], ref)

    importance = {}
    for name in names:
        own = fitted[name].intrinsic_importance()
        if own is not None:
            importance[name] = own
    permutation = {}
    if will_permute:
        for name in names:
            if name in permutation_models:
                log.info("evaluate: permutation test for %s", name)
                bar.stage(f"permutation test {name}")
                permutation[name] = permutation_importance(
                    fitted[name], cube, split.test, window, steps, permutation_repeats, common
                )
    bar.__exit__(None, None, None)
    importance["permutation"] = permutation

    ranking = sorted(names, key=lambda n: info[n]["observed"]["overall"]["rmse"])
    test_dates = [_iso_dates(times[row]) for row in test_targets]
    results = {
        "cube": {
            "shape": [int(v) for v in cube[CUBE_VARIABLE].shape],
            "first_date": _iso_dates(times[:1])[0],
            "last_date": _iso_dates(times[-1:])[0],
            "source": str(cube.attrs.get("source", "")),
            "resolution_m": _resolution(cube),  # degrees for a cube in a geographic CRS: resolution_unit
            "resolution_unit": "degree" if is_geographic(cube.rio.crs) else "m",
            "resampled_step": resampled_step(cube),
        },
        "window": int(window),
        "steps": int(steps),
        "seed": int(seed),
        "seeds": {name: int(pretrained[name].config_.seed) if name in pretrained else int(seed) for name in names},
        "split": {
            "n_times": int(n_times),
            "train_end": int(split.train_end),
            "val_end": int(split.val_end),
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "train_samples": int(len(split.train)),
            "val_samples": int(len(split.val)),
            "test_samples": int(len(split.test)),
            "test_starts": split.test.tolist(),
        },
        "test_dates": test_dates,
        "test_target_dates": sorted(set(d for row in test_dates for d in row)),
        "evaluation_cells": {
            "observed": int(common.sum()),
            "truth": int(truth_common.sum()) if truth_common is not None else None,
        },
        "has_truth": truth_values is not None,
        "models": info,
        "ranking": ranking,
        "importance": importance,
    }
    if holdout is not None:
        from insar_raster.evaluate.metrics import rmse

        held = np.broadcast_to(holdout, common.shape)
        results["holdout"] = {
            "block_cells": int(holdout_block),
            "cells": int(holdout.sum()),
            "cell_rmse": {
                name: {"held_out": rmse(pred, observed, common & held), "seen": rmse(pred, observed, common & ~held)}
                for name, pred in predictions.items()
            },
        }
    point_arrays = None
    if points is not None:
        from insar_raster.evaluate.points import evaluate_points
        from insar_raster.forecast.data import times_in_days
        from insar_raster.forecast.points import points_on_cube

        base = point_base or next((n for n in (DEEP_MODELS[0], "history_fit") if n in names), names[-1])
        if base not in fitted:
            raise InputError(None, f"point_base {base!r} is not among the evaluated models ({', '.join(names)})")
        log.info("evaluate: scoring at the measurement points (point forecast on %s)", base)
        fit_starts = split.val if len(split.val) else split.train
        # The point forecast learns at each test origin from the latest samples observed by
        # then (per step): the validation samples and the later ones up to the last test origin.
        last_origin = split.test[-1] - 1 if len(split.test) else fit_starts[-1]
        base_starts = np.arange(fit_starts[0], max(fit_starts[-1], last_origin) + 1)
        base_val = np.asarray(fitted[base].predict_windows(cube, base_starts), dtype=np.float32)
        from insar_raster.forecast.config import TrainConfig

        history = int((train_options or {}).get("history_epochs", TrainConfig.history_epochs))
        results["points"], point_arrays = evaluate_points(
            points_on_cube(points, cube),
            times_in_days(cube),
            values,
            split,
            predictions,
            base,
            base_val,
            holdout,
            history,
            interval,
            base_starts,
        )
    arrays = {
        "predictions": predictions,
        "observed": observed,
        "truth": truth_targets if truth_values is not None else None,
        "common": common,
        "reference": reference,
        "points": point_arrays,
    }
    # How sure the ranking is: intervals over the test dates (evaluate/uncertainty.py).
    from insar_raster.evaluate.uncertainty import score_uncertainty

    results["uncertainty"] = {
        against: score_uncertainty({**results, "_arrays": arrays}, against)
        for against in (("observed", "truth") if truth_values is not None else ("observed",))
    }
    if keep_arrays:
        arrays["x"], arrays["y"] = cube["x"].values, cube["y"].values  # map axes of the figures
        results["cube"]["crs"] = _crs_name(cube)
        results["_arrays"] = arrays
    return results


def _crs_name(cube) -> str | None:
    crs = cube.rio.crs if hasattr(cube, "rio") else None
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def _resolution(cube: xr.Dataset) -> float | None:  # in the CRS's unit
    from insar_raster.io.cube import grid_transform

    try:
        return float(abs(grid_transform(cube).a))
    except Exception:  # a cube without a usable transform still evaluates
        return None
