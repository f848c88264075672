"""Scores at the measurement points (MPs), beside the scores on the cells.

Scoring a grid forecast against the gridded observations is optimistic for anyone who
acts on an MP: the grid smooths each MP's offset, own seasonal amplitude and noise
away, on both sides of the comparison. Here every model's held-out grid forecasts are
sampled at each MP (:func:`~insar_raster.forecast.points.sample_grid`: bilinear where
the four cells are valid, else the nearest cell) and scored against the MP's own
values on exactly the held-out (test) target epochs of the split, beside:

- ``mp_persistence``: each MP's own last input value;
- ``mp_history_fit``: the default model's prior applied to each MP's own series
  (:class:`~insar_raster.forecast.points.MPHistoryFit`);
- ``point_forecast``: :class:`~insar_raster.forecast.points.PointForecaster` on the
  grid forecast of one model (the default deep model when it is evaluated), its
  weights and interval quantiles learned at each test origin on the latest samples
  observed by then (:func:`~insar_raster.forecast.points.rolling_point_forecast`), as
  ``forecast`` learns them at the cube's end.

Every model is scored on one common set of (sample, step, MP) values. With a spatial
hold-out (:func:`holdout_blocks`), the MPs of the held-out blocks are never a
training target (neither of the grid models nor of the point forecast), and their
scores are reported apart, so skill that only comes from having seen the same MPs
shows as a gap between the two.
"""

from __future__ import annotations

import logging

import numpy as np

from insar_raster.evaluate.metrics import add_skill, rmse, score_by_step
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.points import (
    RECENT_SAMPLES,
    MPHistoryFit,
    mp_persistence,
    rolling_point_forecast,
    sample_grid,
)

log = logging.getLogger("insar_raster")

#: The per-MP models, in report order.
MP_MODELS = ("mp_persistence", "mp_history_fit", "point_forecast")
DESCRIPTIONS = {
    "mp_persistence": "each MP's own last input value, repeated",
    "mp_history_fit": "the history prior's function (trend + acceleration + annual cycle, ridge) fitted to each "
    "MP's own series, extrapolated",
    "point_forecast": "each MP's own history fit combined with the grid forecast at the MP plus the MP's own "
    "deviation from the cube, and the cube's last residual carried; one set of weights for every step, "
    "learned at each forecast origin on the latest samples observed by then",
}


def holdout_blocks(shape, block: int) -> np.ndarray:
    """Cells held out in space: every block of ``block`` x ``block`` cells whose block row
    and block column are both odd (one block in four, spread over the grid).

    Returns
    -------
    ndarray of bool (h, w)
        True for held-out cells.

    Raises
    ------
    ValueError
        ``block`` below 1, or a grid too small for two blocks along each axis.
    """
    h, w = shape
    block = int(block)
    if block < 1:
        raise ValueError(f"block size must be at least 1 cell, got {block}")
    if h < 2 * block or w < 2 * block:
        raise ValueError(f"a {h}x{w} grid is too small for held-out blocks of {block} cells (need 2 along each axis)")
    rows = (np.arange(h) // block) % 2 == 1
    cols = (np.arange(w) // block) % 2 == 1
    return rows[:, None] & cols[None, :]


def evaluate_points(
    mps: dict,
    days: np.ndarray,
    grid_values: np.ndarray,
    split,
    predictions: dict,
    base: str | None = None,
    base_val_prediction: np.ndarray | None = None,
    holdout: np.ndarray | None = None,
    history: int = TrainConfig.history_epochs,
    interval: float | None = None,
    base_starts=None,
    n_recent: int = RECENT_SAMPLES,
) -> tuple[dict, dict]:
    """Score every model at the MPs on the split's test samples.

    Parameters
    ----------
    mps : dict
        From :func:`insar_raster.forecast.points.points_on_cube`.
    days : ndarray (time,)
        The cube's dates (float days).
    grid_values : ndarray (time, y, x)
        The cube's displacement (mm).
    split : ChronoSplit
    predictions : dict
        ``{name: (n_test, steps, y, x)}`` grid forecasts of the test samples.
    base : str, optional
        The model whose grid forecast the point forecast uses; with
        ``base_val_prediction`` (its forecasts of the samples ``base_starts``). Without
        them, no point forecast.
    holdout : ndarray of bool (y, x), optional
        Held-out cells: their MPs are no training target of the point forecast and are
        scored apart.
    history : int
        Most past epochs of the per-MP history fits.
    interval : float, optional
        Level (percent) of the point forecast's intervals (each MP's own error from the
        samples each test origin learns from, see ``base_starts``, scaled by its noise
        level, plus the scene-wide error per date from those and older dates:
        :func:`~insar_raster.forecast.points.rolling_point_forecast`), scored on the
        test samples: coverage of the MPs' own
        held-out values and mean width per step (``interval`` in the point forecast's
        entry).
    base_starts : array of int, optional
        The samples of ``base_val_prediction``, ascending: the validation samples (the
        default) and, so that the point forecast follows the grid model's skill up to
        each test origin, the later samples up to the last test sample's origin. The
        point forecast of each test sample learns its weights and interval quantiles on
        the ``n_recent`` latest of them whose targets are observed at its origin
        (:func:`~insar_raster.forecast.points.rolling_point_forecast`), as ``forecast``
        does at the end of the cube; never on a value after the origin.
    n_recent : int
        Samples learned from at each origin.

    Returns
    -------
    results : dict
        JSON-ready: ``n_points``, ``target_epochs``, ``base``, ``point_model``,
        ``models`` (per model: ``kind``, ``description``, ``observed`` scores with
        ``skill`` vs per-MP persistence), ``holdout`` (when given).
    arrays : dict
        ``predictions`` (per model, (n_test, steps, n_mp)), ``observed``, ``common``.
    """
    values = mps["values"]
    window, steps = split.window, split.steps
    targets = split.target_indices("test")
    observed = values[:, targets].transpose(1, 2, 0)  # (n_test, steps, n_mp)
    rows, cols = mps["rows"], mps["cols"]
    held = None
    if holdout is not None:
        held = sample_grid(holdout.astype(np.float32), rows, cols) > 0.5
    preds = {name: sample_grid(pred, rows, cols) for name, pred in predictions.items()}
    preds["mp_persistence"] = mp_persistence(values, split.test, window, steps)
    fit_starts = split.val if len(split.val) else split.train
    use = None if held is None else ~held
    history_fit = MPHistoryFit(window, steps, history).fit(values, days, fit_starts, use)
    preds["mp_history_fit"] = history_fit.predict(values, days, split.test)
    point_model = None
    bounds = None
    rolling = None
    if base is not None and base_val_prediction is not None:
        series = sample_grid(grid_values, rows, cols).T  # the cube at each MP, (n_mp, time)
        pool = fit_starts if base_starts is None else np.asarray(base_starts, int)
        cell_pool = sample_grid(base_val_prediction, rows, cols)
        if len(cell_pool) != len(pool):
            raise ValueError(f"base_val_prediction has {len(cell_pool)} samples, base_starts {len(pool)}")
        cell_test = sample_grid(predictions[base], rows, cols)
        rolling = rolling_point_forecast(
            values,
            days,
            split.test,
            cell_test,
            pool,
            cell_pool,
            series,
            window,
            steps,
            history,
            n_recent,
            history_fit.acceleration_ridge_,
            use,
            interval,
        )
        point_model = rolling["model"]
        preds["point_forecast"] = rolling["forecast"]
        if interval is not None:
            bounds = (rolling["lower"], rolling["upper"])
    common = np.isfinite(observed)
    for pred in preds.values():
        common &= np.isfinite(pred)
    reference = values[:, split.test + window - 1].T[:, None]
    info = {}
    for name, pred in preds.items():
        kind = "mp" if name in MP_MODELS else "cell"
        description = DESCRIPTIONS.get(name, "grid forecast sampled at the MP (bilinear, else nearest cell)")
        info[name] = {
            "kind": kind,
            "description": description,
            "observed": score_by_step(pred, observed, common, reference),
        }
    for name in info:
        add_skill(info[name]["observed"], info["mp_persistence"]["observed"])
    if bounds is not None:
        from insar_raster.forecast.intervals import coverage_and_width

        # The point forecast is finite wherever the MP's own history fit is: its bounds
        # are scored on the same common values as every model.
        lower, upper = (np.where(common, b, np.nan)[..., None] for b in bounds)
        cover, width = coverage_and_width(lower, upper, observed[..., None])
        info["point_forecast"]["interval"] = {
            "level_percent": float(interval),
            "coverage_percent": cover.tolist(),
            "mean_width_mm": width.tolist(),
        }
    results = {
        "n_points": int(values.shape[0]),
        "scored_values": int(common.sum()),
        "target_epochs": targets.tolist(),
        "base": base if point_model is not None else None,
        "point_model": _rolling_details(point_model, rolling, split.test) if point_model is not None else None,
        "mp_history_fit": {"acceleration_ridge": history_fit.acceleration_ridge_},
        "models": info,
    }
    if held is not None:
        results["holdout"] = {
            "held_out_points": int(held.sum()),
            "seen_points": int((~held).sum()),
            "rmse": {
                name: {
                    "held_out": rmse(pred, observed, common & held[None, None]),
                    "seen": rmse(pred, observed, common & ~held[None, None]),
                }
                for name, pred in preds.items()
            },
        }
    return results, {"predictions": preds, "observed": observed, "common": common}


def _rolling_details(model, rolling: dict, starts) -> dict:
    """The weights (``weights``, ``carry``, per step) used at the first test origin and
    (``last_origin_*``) at the last, with the model details of the first origin."""
    details = model.details()
    details.update(
        weights=np.round(rolling["weights"][0], 4).tolist(),
        carry=np.round(rolling["carry"][0], 4).tolist(),
        n_recent=len(rolling["fit_starts"][0][-1]),
        first_origin_fit_starts=rolling["fit_starts"][0][-1],
        last_origin_fit_starts=rolling["fit_starts"][-1][-1],
        last_origin_weights=np.round(rolling["weights"][-1], 4).tolist(),
        last_origin_carry=np.round(rolling["carry"][-1], 4).tolist(),
        origins=len(np.asarray(starts)),
    )
    return details


def _fmt(value, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def points_report(results: dict) -> list[str]:
    """Markdown lines: the cell table and the MP table side by side, and which to trust.

    ``results`` are the evaluation results with ``points`` (from
    :func:`evaluate_points`) and, optionally, ``holdout``.
    """
    pts = results["points"]
    cells, mps = results["models"], pts["models"]
    holdout = pts.get("holdout")
    order = sorted(mps, key=lambda n: mps[n]["observed"]["overall"]["rmse"])
    best_mp = order[0]
    cell_names = [n for n in order if n in cells]
    best_cell = min(cell_names, key=lambda n: cells[n]["observed"]["overall"]["rmse"]) if cell_names else None
    lines = [
        "## Scores at the measurement points, beside the cells",
        "",
        f"{pts['n_points']} MPs on the grid, scored on exactly the test target epochs "
        f"({pts['scored_values']} sample × step × MP values, one common set for every model). A grid model's "
        "forecast is sampled at each MP (bilinear where the four cells are valid, else the nearest cell) and "
        "scored against the MP's own values; the cell columns repeat the table above, which is scored against "
        "the *gridded* observations.",
        "",
        points_table(results),
        "",
        "Which table to trust for what: the **cell** scores compare forecasts with the gridded observations, "
        "which smooth away each MP's offset, own seasonal amplitude and noise on both sides of the comparison; "
        "use them to choose a model for maps of the motion field (where a bowl deepens, where a front goes). "
        "For a decision about one structure (a building, a bridge pier: an MP), trust the **MP** scores: they "
        "compare with the MP's own future values. A grid model that beats persistence on the cells but not "
        "per-MP persistence at the MPs does not forecast the points themselves.",
        "",
        f"Best at the MPs: **{best_mp}** ({_fmt(mps[best_mp]['observed']['overall']['rmse'])} mm)"
        + (
            f"; best on the cells: **{best_cell}** ({_fmt(cells[best_cell]['observed']['overall']['rmse'])} mm "
            f"against the gridded observations)."
            if best_cell
            else "."
        ),
    ]
    if pts.get("point_model"):
        model = pts["point_model"]
        weights, carry = model["weights"], model["carry"]
        lines += [
            "",
            f"point_forecast combines the MP's own history with the grid forecast of **{pts['base']}**; "
            f"its weights (over {', '.join(model['members'])}) and the carried "
            f"{', '.join(model['terms'])}, one set for every step, learned at each test origin on the latest "
            f"samples observed by then (step k's pairs from the samples whose k-th target is observed there): "
            f"at the first origin {weights[0]} / {carry[0]}"
            + (
                f"; at the last origin {model['last_origin_weights'][0]} / {model['last_origin_carry'][0]}."
                if "last_origin_weights" in model
                else "."
            ),
        ]
    cover = mps.get("point_forecast", {}).get("interval")
    if cover:
        lines += [
            "",
            f"Intervals at the MPs ({cover['level_percent']:g} %: each MP's own error, scaled by its noise level, "
            "from the samples each test origin learns from, plus the scene-wide error per date from those and up to "
            "three years of older dates, widened to a new date's predictive spread): share of the MPs' own test "
            "values inside the interval "
            "and its mean width, per step: "
            + "; ".join(
                f"step {k + 1}: {p:.1f} % / {w:.2f} mm"
                for k, (p, w) in enumerate(zip(cover["coverage_percent"], cover["mean_width_mm"]))
            )
            + ".",
        ]
    if holdout:
        lines += [
            "",
            f"Spatial hold-out: {holdout['held_out_points']} MPs lie in held-out blocks of cells that "
            "were never a training target (of the grid models or of the point forecast); "
            f"{holdout['seen_points']} lie elsewhere. A model much better on the seen MPs than on the "
            "held-out ones owes that skill to having seen those MPs.",
        ]
    return lines


def points_table(results: dict) -> str:
    """Markdown table: per model, cell scores (vs gridded observations) beside MP scores."""
    pts = results["points"]
    cells, mps = results["models"], pts["models"]
    holdout = pts.get("holdout")
    cell_holdout = (results.get("holdout") or {}).get("cell_rmse")
    head = (
        "| model | cells: RMSE vs gridded observations (mm) | cells: skill vs persistence "
        "| MPs: RMSE vs each MP's own observations (mm) | MPs: skill vs per-MP persistence |"
    )
    rule = "|---|---:|---:|---:|---:|"
    if holdout:
        head += " cells in held-out blocks: RMSE (mm) | MPs in held-out blocks: RMSE (mm) | MPs elsewhere: RMSE (mm) |"
        rule += "---:|---:|---:|"
    rows = [head, rule]
    order = sorted(mps, key=lambda n: mps[n]["observed"]["overall"]["rmse"])
    for name in order:
        cell = cells.get(name, {}).get("observed", {}).get("overall", {})
        mp = mps[name]["observed"]["overall"]
        label = name if name not in MP_MODELS else f"{name} (per MP)"
        row = (
            f"| {label} | {_fmt(cell.get('rmse'))} | {_fmt(cell.get('skill'))} | {_fmt(mp['rmse'])} | "
            f"{_fmt(mp.get('skill'))} |"
        )
        if holdout:
            held = (cell_holdout or {}).get(name, {}).get("held_out")
            row += (
                f" {_fmt(held)} | {_fmt(holdout['rmse'][name]['held_out'])} | {_fmt(holdout['rmse'][name]['seen'])} |"
            )
        rows.append(row)
    return "\n".join(rows)
