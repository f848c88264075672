"""The evaluation report: ``metrics.json``, ``report.md`` and PNG figures.

The folder is written atomically: everything is built in a temporary folder beside
the destination and renamed into place at the end, so a failed or interrupted run
leaves no half-written report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from insar_raster.evaluate.registry import DEEP_MODELS
from insar_raster.io.atomic import atomic_path

#: Decimals shown in report.md: mm to 0.01 mm (what a millimetre-level InSAR score can
#: mean), dimensionless scores (R², skill) to 0.001.
MM_DIGITS = 2
RATIO_DIGITS = 3


def _fmt(value, digits: int = MM_DIGITS) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _interval(ci) -> str:
    return "–" if not ci else f"{_fmt(ci[0])} to {_fmt(ci[1])}"


def overall_table(results: dict, against: str = "observed") -> str:
    """Markdown table: one row per model (best RMSE first) with its overall scores and,
    when known, the confidence interval of its RMSE and of its difference to the best."""
    unc = (results.get("uncertainty") or {}).get(against) or {}
    with_ci = bool(unc.get("rmse_ci"))
    level = f"{unc.get('level', 0.95):.0%}"
    head = "| model | RMSE (mm) |" + (f" RMSE {level} CI (mm) | Δ RMSE to best {level} CI (mm) |" if with_ci else "")
    rows = [
        head + " MAE (mm) | R² | R² of change | skill vs persistence |",
        "|---|---:|" + ("---:|---:|" if with_ci else "") + "---:|---:|---:|---:|",
    ]
    order = sorted(results["models"], key=lambda n: results["models"][n][against]["overall"]["rmse"])
    for name in order:
        s = results["models"][name][against]["overall"]
        row = f"| {name} | {_fmt(s['rmse'])} |"
        if with_ci:
            diff = (unc.get("difference_to_best") or {}).get(name)
            row += f" {_interval(unc['rmse_ci'].get(name))} | " + (
                f"+{_fmt(diff['difference'])} ({_interval(diff['ci'])}) |" if diff else "best |"
            )
        rows.append(
            row + f" {_fmt(s['mae'])} | {_fmt(s['r2'], RATIO_DIGITS)} | "
            f"{_fmt(s.get('r2_change'), RATIO_DIGITS)} | {_fmt(s.get('skill'), RATIO_DIGITS)} |"
        )
    return "\n".join(rows)


def format_table(results: dict, against: str = "observed") -> str:
    """The headline table (overall scores per model) as Markdown text."""
    return overall_table(results, against)


def per_step_table(results: dict, against: str = "observed") -> str:
    """Markdown table of RMSE (mm) per forecast step and model."""
    steps = results["steps"]
    head = "| model | " + " | ".join(f"step {k + 1}" for k in range(steps)) + " |"
    rows = [head, "|---|" + "---:|" * steps]
    for name, info in results["models"].items():
        rows.append(f"| {name} | " + " | ".join(_fmt(s["rmse"]) for s in info[against]["per_step"]) + " |")
    return "\n".join(rows)


def lag_label(j: int, window: int) -> str:
    """Name of input epoch ``j`` (0 = oldest): ``t`` is the most recent, ``t-1`` the one before."""
    return "t" if j == window - 1 else f"t-{window - 1 - j}"


def _deep_parts(name: str, info: dict) -> str:
    """Which trained part of a deep model made its forecast: the prior filter, the network."""
    details = info.get("details") or {}
    stage = details.get("prior_filter")
    parts = []
    lag = details.get("lag_prior")
    if lag:
        parts.append(
            f"Its learned linear prior ({lag['lags']} lags{', centred form' if 'centred' in lag.get('form', '') else ''})"
            f" scored {_fmt(lag['val_rmse_mm'])} mm on validation "
            f"against the history fit's {_fmt(lag['val_history_fit_rmse_mm'])} mm"
            + (" and replaced it" if lag["kept"] else " and was not kept")
        )
    if stage:
        parts.append(
            f"Its learned spatial filter of the prior took the validation RMSE from "
            f"{_fmt(stage['val_rmse_prior_mm'])} to {_fmt(stage['val_rmse_filtered_mm'])} mm"
            + ("" if stage["kept"] else " and was not kept")
        )
    best = details.get("best_epoch")
    if best is not None:
        parts.append(
            f"its network was kept from training epoch {best}"
            if int(best) > 0
            else "its network did not beat that on validation by the required margin, so the forecast is "
            "the (filtered) prior"
        )
    cadence = details.get("cadence")
    if cadence:
        parts.append(
            f"its training epochs are {cadence['native_step_days']:g} days apart (median) and the record's "
            f"latest {cadence['step_days']:g}, so {round(100 * cadence['share'])} % of its training patches and "
            f"{cadence['val_samples']} validation samples were also drawn from the record resampled to "
            f"{cadence['step_days']:g} days, where its intervals are calibrated"
        )
    return ("; ".join(parts) + ".") if parts else ""


def _history_lengths(deep: dict, history_fit: dict) -> str:
    """Where the deep model's prior read a shorter past than history_fit (chosen on
    validation), say so: the two are then not the same fit."""
    chosen = ((deep.get("details") or {}).get("config") or {}).get("prior_history")
    longest = (history_fit.get("details") or {}).get("history_epochs")
    if chosen is None or longest is None or int(chosen) >= int(longest):
        return ""
    return (
        f"; its prior reads the last {int(chosen)} epochs (chosen on validation), history_fit up to "
        f"{int(longest)}, so part of the difference is that choice"
    )


def _tied(scores: dict, best: str) -> str:
    """The best model in bold, with every model that scores exactly the same."""
    tied = [n for n in scores if scores[n] == scores[best]]
    return " and ".join(f"**{n}**" for n in tied) + (" (the same forecast)" if len(tied) > 1 else "")


def _does_best_hold(results: dict, against: str, best: str) -> str:
    """Whether the lowest RMSE is a real lead over the test dates, in words."""
    unc = (results.get("uncertainty") or {}).get(against)
    if not unc or unc.get("best") != best:
        return ""
    if unc.get("rmse_ci") is None:
        return f" Too few test dates ({unc['n_dates']}) for a confidence interval: no model is called best."
    level = f"{unc['level']:.0%}"
    if unc["best_holds"]:
        return (
            f" The lead holds: the {level} interval of every other model's RMSE minus {best}'s, over "
            f"{unc['n_dates']} test dates (block bootstrap), lies above 0."
        )
    tied = ", ".join(unc["tied_with_best"])
    return (
        f" It is not a clear best: the {level} interval of the RMSE difference to {tied} includes 0 over "
        f"{unc['n_dates']} test dates (block bootstrap), so these cannot be ranked apart on this test period."
    )


def _findings(results: dict) -> list[str]:
    """Plain-language reading of the numbers (generated from them, not written in advance)."""
    models = results["models"]
    out = []
    rm = {n: m["observed"]["overall"]["rmse"] for n, m in models.items()}
    best = min(rm, key=rm.get)
    pers = rm["persistence"]
    out.append(
        f"Lowest RMSE on the cells, against the gridded observations: {_tied(rm, best)} ({_fmt(rm[best])} mm, "
        f"{rm[best] / pers:.2f}× persistence's {_fmt(pers)} mm)." + _does_best_hold(results, "observed", best)
    )
    beaten = [n for n in rm if n != "persistence" and rm[n] < pers]
    worse = [n for n in rm if n != "persistence" and rm[n] >= pers]
    if worse:
        out.append(
            f"Not better than persistence: {', '.join(worse)}."
            if beaten
            else "No model beats persistence on these test epochs."
        )
    if results.get("has_truth"):
        rt = {n: m["truth"]["overall"]["rmse"] for n, m in models.items()}
        bt = min(rt, key=rt.get)
        out.append(
            f"Against the noise-free truth the lowest RMSE is {_tied(rt, bt)} ({_fmt(rt[bt])} mm vs "
            f"persistence {_fmt(rt['persistence'])} mm)."
            + _does_best_hold(results, "truth", bt)
            + " Observations carry noise that no forecast can predict, so RMSE against them has a "
            "floor the truth scores do not."
        )
    r2s = {n: m["observed"]["overall"]["r2"] for n, m in models.items()}
    if r2s["persistence"] > 0.9:
        out.append(
            f"R² on cumulative displacement is high for every model (persistence alone: "
            f"{_fmt(r2s['persistence'], RATIO_DIGITS)}), as in the paper's 0.99: it mostly measures the spread "
            "of displacement between cells. The R² of the change since the last observed epoch "
            "separates the models (persistence forecasts no change, so it scores 0 or below there)."
        )
    if "convlstm" in models and "cnn" in models:
        a, b = rm["convlstm"], rm["cnn"]
        verdict = (
            "the same forecast: neither network beat its filtered prior on validation"
            if a == b
            else "the recurrent core helps"
            if a < b
            else "the recurrent core does not help here"
        )
        text = f"Ablation, CNN without LSTM: cnn {_fmt(b)} mm vs convlstm {_fmt(a)} mm ({verdict})."
        nets = {n: (models[n].get("details") or {}).get("network_best_val_rmse_mm") for n in ("convlstm", "cnn")}
        if a == b and all(v is not None for v in nets.values()):
            text += (
                f" Best validation RMSE their networks reached while training: convlstm "
                f"{_fmt(nets['convlstm'])} mm, cnn {_fmt(nets['cnn'])} mm."
            )
        out.append(text)
    ens = (models.get("ensemble", {}).get("details") or {}).get("ensemble")
    if ens:
        weights = ", ".join(f"{n} {w:.2f}" for n, w in ens["weights"].items())
        kept = ", ".join(f"{n} {'kept' if v['network_kept'] else 'not kept'}" for n, v in ens["members"].items())
        members = "; ".join(f"{n} alone {_fmt(rm[n])} mm" for n in ens["weights"] if n in rm)
        out.append(
            f"Ensemble: {_fmt(rm['ensemble'])} mm with the weights chosen on the validation epochs ({weights}; "
            f"networks {kept})" + (f"; {members}." if members else ".")
        )
    if "history_fit" in models:
        for name in ("convlstm", "cnn"):
            if name in models:
                a, b = rm[name], rm["history_fit"]
                out.append(
                    f"{name} reads each pixel's past before the window through a per-pixel harmonic prior; "
                    f"history_fit is that kind of fit alone on the same past: {name} {_fmt(a)} mm vs "
                    f"history_fit {_fmt(b)} mm ({(b - a) / b:+.1%}){_history_lengths(models[name], models['history_fit'])}. "
                    + _deep_parts(name, models[name])
                )
                break
    default = next((n for n in DEEP_MODELS if n in models), None)
    if "paper" in models and default not in (None, "paper"):
        out.append(f"The paper's CNN-LSTM: {_fmt(rm['paper'])} mm vs the default {default} {_fmt(rm[default])} mm.")
    imp = results.get("importance", {})
    window = results["window"]
    if "lasso" in imp:
        share = np.asarray(imp["lasso"]["share"])[0]
        coef = np.asarray(imp["lasso"]["signed_coefficient"])[0]
        out.append(
            f"LASSO (step 1): {share[-1]:.0%} of the total |coefficient| is on the most recent epoch "
            f"(coefficient {coef[-1]:+.2f}; persistence is +1 there and 0 elsewhere); the largest weight is "
            f"on {lag_label(int(np.argmax(share)), window)} (t = the most recent epoch)."
        )
    if "lightgbm" in imp:
        share = np.asarray(imp["lightgbm"]["share"])[0]
        out.append(
            f"LightGBM (step 1, gain): {share[-1]:.0%} on the most recent epoch's level, largest on "
            f"{lag_label(int(np.argmax(share)), window)}. It predicts the change from the last epoch, so "
            "persistence is its starting point, not something it must learn."
        )
    for name, p in imp.get("permutation", {}).items():
        share = np.asarray(p["share"], dtype=float)
        if np.all(~np.isfinite(share)):
            out.append(f"Permutation test, {name}: no lag matters (permuting any lag does not increase RMSE).")
            continue
        top = int(np.nanargmax(share))
        out.append(
            f"Permutation test, {name}: permuting the most recent epoch raises RMSE by "
            f"{_fmt(p['delta_rmse_mm'][-1])} mm ({share[-1]:.0%} of the total increase); "
            f"the most important input epoch is {lag_label(top, window)}."
        )
    return out


def _front_and_interval_sections(results: dict) -> list[str]:
    """Scores on the cells a front reaches during the horizon; interval coverage per step."""
    models = results["models"]
    lines = []
    fronts = {n: m["truth_front_cells"] for n, m in models.items() if m.get("truth_front_cells")}
    if fronts:
        best = min(
            (n for n in fronts if models[n]["kind"] == "baseline"),
            key=lambda n: fronts[n]["overall"]["rmse"],
            default=None,
        )
        lines += [
            "## Cells a front reaches during the horizon (against the truth)",
            "",
            "Cells that had not moved when the forecast was made and that a front moves during its "
            "horizon: only their neighbours' recent past tells that they will.",
            "",
            "Split by the panel that reaches the cell: *started* (advancing when the forecast was "
            "made: its face's recent motion upstream tells) and *new* (starts during the horizon: "
            "nothing in the past moves there yet).",
            "",
            "| model | RMSE (mm) | / best baseline | started panels (mm) | / best baseline | new panels (mm) |",
            "|---|---:|---:|---:|---:|---:|",
        ]

        def part(name, key):
            score = models[name].get(key)
            return score["overall"]["rmse"] if score else float("nan")

        for name, score in fronts.items():
            ratio = score["overall"]["rmse"] / fronts[best]["overall"]["rmse"] if best else float("nan")
            started = part(name, "truth_front_cells_started")
            best_started = min(
                (part(n, "truth_front_cells_started") for n in fronts if models[n]["kind"] == "baseline"),
                default=float("nan"),
            )
            lines.append(
                f"| {name} | {_fmt(score['overall']['rmse'])} | {ratio:.2f} | {_fmt(started)} | "
                f"{started / best_started:.2f} | {_fmt(part(name, 'truth_front_cells_new'))} |"
            )
        lines.append("")
    cover = {n: m["interval"] for n, m in models.items() if m.get("interval")}
    if cover:
        level = next(iter(cover.values()))["level_percent"]
        steps = len(next(iter(cover.values()))["coverage_percent"])
        lines += [
            f"## Forecast intervals ({level:g} %, calibrated on validation)",
            "",
            "Share of test observations inside the interval and its mean width, per forecast step.",
            "",
            "| model | " + " | ".join(f"step {k + 1}" for k in range(steps)) + " |",
            "|---|" + "---:|" * steps,
        ]
        for name, c in cover.items():
            lines.append(
                f"| {name} | "
                + " | ".join(f"{p:.1f} % / {w:.2f} mm" for p, w in zip(c["coverage_percent"], c["mean_width_mm"]))
                + " |"
            )
        lines.append("")
    return lines


def markdown(results: dict) -> str:
    """The whole ``report.md`` text."""
    split = results["split"]
    cube = results["cube"]
    lines = [
        "# Forecast evaluation",
        "",
        f"Cube: {cube['shape'][1]}×{cube['shape'][2]} cells"
        + (
            f" of {cube['resolution_m']:g}{'°' if cube.get('resolution_unit') == 'degree' else ' m'}"
            if cube.get("resolution_m")
            else ""
        )
        + f", {cube['shape'][0]} epochs ({cube['first_date']} to {cube['last_date']})"
        + (f", resampled to a regular {cube['resampled_step']} step" if cube.get("resampled_step") else "")
        + (f", source `{cube['source']}`" if cube.get("source") else "")
        + ".",
        f"Window L = {results['window']} input epochs, horizon H = {results['steps']} epochs. "
        f"Chronological split: {split['train_samples']} training, {split['val_samples']} validation and "
        f"{split['test_samples']} test samples (training targets before epoch {split['train_end']}, "
        f"test targets from epoch {split['val_end']}). Seed {results['seed']}.",
        f"Scored cells: {results['evaluation_cells']['observed']} (sample × step × cell) where the observation "
        "and every model's forecast are valid; all models are scored on the same cells.",
        "",
        "## Scores on the cells, against the gridded observations (all test samples and steps)",
        "",
        overall_table(results, "observed"),
        "",
    ]
    unc = (results.get("uncertainty") or {}).get("observed") or {}
    if unc.get("rmse_ci"):
        lines += [
            f"Intervals: {unc['level']:.0%} confidence, moving-block bootstrap ({unc['resamples']} "
            f"resamples, blocks of {unc['block']}) over the {unc['n_dates']} test target dates: errors of one "
            "date share its atmosphere and neighbouring dates share inputs, so dates, not cells, are the "
            "units that vary independently. Δ RMSE to best is paired (the same resampled dates for both "
            "models); a model is only called best when every other model's interval lies above 0.",
            "",
        ]
    if results.get("points"):
        from insar_raster.evaluate.points import points_report

        lines += points_report(results) + [""]
    elif results.get("holdout"):
        lines += _holdout_lines(results)
    if results.get("has_truth"):
        lines += ["## Scores against the noise-free truth", "", overall_table(results, "truth"), ""]
    lines += _front_and_interval_sections(results)
    lines += [
        "## RMSE per forecast step (mm, on the cells, against the gridded observations)",
        "",
        per_step_table(results),
        "",
        "![RMSE per step](rmse_per_step.png)",
        "",
        "## What the numbers say",
        "",
    ]
    lines += [f"- {text}" for text in _findings(results)]
    if results.get("resolution_study"):
        lines += [
            "",
            "## Across grid sizes (as in the paper)",
            "",
            "| grid | cell (m) | " + " | ".join(results["resolution_study"][0]["rmse"]) + " |",
            "|---|---:|" + "---:|" * len(results["resolution_study"][0]["rmse"]),
        ]
        for row in results["resolution_study"]:
            lines.append(
                f"| {row['size']} | {_fmt(row['resolution_m'], 1)} | "
                + " | ".join(_fmt(v) for v in row["rmse"].values())
                + " |"
            )
        lines += ["", "RMSE (mm) against the observations resampled to each grid."]
    lines += ["", "## Models", ""]
    for name, info in results["models"].items():
        details = ", ".join(
            f"{k} {v}"
            for k, v in info["details"].items()
            if k not in ("config", "prior_filter", "lag_prior", "cadence")
        )
        lines.append(
            f"- **{name}** ({info['kind']}): {info['description']}; multi-step: {info['multi_step']}; "
            f"fit {info['fit_seconds']:.1f} s, predict {info['predict_seconds']:.1f} s"
            + (f"; {details}" if details else "")
            + "."
        )
    lines += [
        "",
        "Information: persistence, trend, trend + seasonal, LASSO, LightGBM and the paper's CNN-LSTM see only each "
        "sample's L input epochs (the trend fits are least-squares fits to those L epochs). The default deep models "
        "(convlstm, cnn) also read each pixel's past before the window, through a per-pixel harmonic fit given to "
        "the network as a prior; history_fit is that information with no network. Nothing after a sample's last "
        "input epoch is read by any model. LASSO and LightGBM are trained on a random subsample of (training "
        "sample, pixel) rows and tuned (LASSO's alpha, boosting rounds) on the validation samples; the ridge "
        "penalties of the harmonic fits are chosen on the validation samples too.",
        "",
        "## Interpretability",
        "",
        "![lag importance](lag_importance.png)",
        "",
        "## Maps and error distributions",
        "",
        "![maps](maps.png)",
        "",
        "Displacement in every map: red = negative (subsidence, motion away from the satellite), blue = "
        "positive, white = 0, the same as the QGIS styles of the GeoTIFFs. Errors (forecast minus "
        "reference) in purple/orange.",
        "",
        "![errors](errors.png)",
        "",
        "## Test target dates",
        "",
        "Each test sample's target epochs (step 1 to H):",
        "",
    ]
    for start, dates in zip(split["test_starts"], results["test_dates"]):
        lines.append(f"- sample {start}: {', '.join(dates)}")
    return "\n".join(lines) + "\n"


def _holdout_lines(results: dict) -> list[str]:
    """The spatial hold-out's cell scores (when no points were scored)."""
    hold = results["holdout"]
    lines = [
        "## Spatial hold-out (cells, against the gridded observations)",
        "",
        f"{hold['cells']} cells in blocks of {hold['block_cells']} cells (one block in four) were masked in the "
        "cube every model was fitted on: never a training target. RMSE (mm):",
        "",
        "| model | held-out blocks | elsewhere |",
        "|---|---:|---:|",
    ]
    for name, row in hold["cell_rmse"].items():
        lines.append(f"| {name} | {_fmt(row['held_out'])} | {_fmt(row['seen'])} |")
    return lines + [""]


def _json_ready(obj):
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_ready(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None  # strict JSON has no NaN
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def metrics_json(results: dict) -> dict:
    """The machine-readable part of the results (no arrays; NaN as null)."""
    return _json_ready(results)


# -- figures ----------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _robust_limits(arrays, symmetric=False):
    data = np.concatenate([np.asarray(a)[np.isfinite(a)].ravel() for a in arrays] or [np.zeros(1)])
    if data.size == 0:
        return -1.0, 1.0
    lo, hi = np.percentile(data, [2, 98])
    if symmetric:
        m = max(abs(lo), abs(hi), 1e-6)
        return -m, m
    return (lo, hi) if hi > lo else (lo - 1, hi + 1)


#: Displacement colours in every figure: red = negative (subsidence, away from the
#: satellite), blue = positive, centred on 0 - the ramp of the QGIS styles (gis/style.py).
DISPLACEMENT_CMAP = "RdBu"
#: Errors (forecast minus reference) get another diverging ramp, so that no error map
#: reads as subsidence.
ERROR_CMAP = "PuOr_r"


def _map_axes(ax, results, first_col: bool, last_row: bool) -> None:
    """Coordinates (km) on the map's axes, the CRS in the x label."""
    arrays = results["_arrays"]
    x, y = arrays.get("x"), arrays.get("y")
    if x is None or y is None:
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.tick_params(labelsize=6)
    if last_row:
        ax.set_xlabel(f"x (km, {results['cube'].get('crs') or 'grid CRS'})", fontsize=7)
    else:
        ax.set_xticklabels([])
    if first_col:
        ax.set_ylabel("y (km)", fontsize=7)
    else:
        ax.set_yticklabels([])


def _extent_km(results):
    arrays = results["_arrays"]
    x, y = arrays.get("x"), arrays.get("y")
    if x is None or y is None or len(x) < 2 or len(y) < 2:
        return None
    dx, dy = abs(x[1] - x[0]) / 2, abs(y[1] - y[0]) / 2
    return [(x.min() - dx) / 1000, (x.max() + dx) / 1000, (y.min() - dy) / 1000, (y.max() + dy) / 1000]


def figure_maps(results: dict, path: Path, sample: int = -1, step: int = 0) -> None:
    """The reference maps of one test target date once, then each model's forecast and error.

    Row 1: the observation (and the noise-free truth when known). Then one row per
    model: its forecast and its error (forecast minus the truth when known, else minus
    the observation). Displacement maps share one diverging ramp centred on 0
    (:data:`DISPLACEMENT_CMAP`), error maps another (:data:`ERROR_CMAP`), each with one
    colour bar; axes in km of the cube's CRS.
    """
    plt = _pyplot()
    arrays = results["_arrays"]
    names = list(results["models"])
    observed = arrays["observed"][sample, step]
    truth = arrays["truth"][sample, step] if arrays.get("truth") is not None else None
    target, target_name = (truth, "truth") if truth is not None else (observed, "observed")
    date = results["test_dates"][sample][step]
    forecasts = {n: arrays["predictions"][n][sample, step] for n in names}
    _, dmax = _robust_limits([observed] + list(forecasts.values()), symmetric=True)
    errors = {n: forecasts[n] - target for n in names}
    _, emax = _robust_limits(list(errors.values()), symmetric=True)
    extent = _extent_km(results)
    origin = "upper"
    nrows = 1 + len(names)
    fig, axes = plt.subplots(nrows, 2, figsize=(6.4, 2.5 * nrows), squeeze=False)
    references = [(observed, "observed")] + ([(truth, "noise-free truth")] if truth is not None else [])
    panels = [[(data, title, DISPLACEMENT_CMAP, dmax) for data, title in references]]
    for name in names:
        panels.append(
            [
                (forecasts[name], f"{name} forecast", DISPLACEMENT_CMAP, dmax),
                (errors[name], f"{name} − {target_name}", ERROR_CMAP, emax),
            ]
        )
    images = {}
    for row, row_panels in enumerate(panels):
        for col in range(2):
            ax = axes[row, col]
            if col >= len(row_panels):
                ax.axis("off")
                continue
            data, title, cmap, limit = row_panels[col]
            images[cmap] = ax.imshow(
                data, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest", extent=extent, origin=origin
            )
            ax.set_title(title, fontsize=8)
            _map_axes(ax, results, first_col=col == 0, last_row=row == nrows - 1)
    fig.suptitle(f"Test target {date} (step {step + 1})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.86, 0.97))
    cax = fig.add_axes((0.88, 0.55, 0.02, 0.35))
    fig.colorbar(images[DISPLACEMENT_CMAP], cax=cax).set_label("displacement (mm)\nred: subsidence", fontsize=7)
    cax.tick_params(labelsize=6)
    cax = fig.add_axes((0.88, 0.1, 0.02, 0.35))
    fig.colorbar(images[ERROR_CMAP], cax=cax).set_label("forecast error (mm)", fontsize=7)
    cax.tick_params(labelsize=6)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure_errors(results: dict, path: Path) -> None:
    """The distribution of each model's errors over the scored test cells.

    One box per model (best RMSE at the top): median, quartiles and 2.5-97.5 %
    whiskers of forecast minus observation, on a symmetric axis around 0, so spread
    and bias can be compared where a forecast-vs-observed scatter over a range of
    100+ mm flattens them.
    """
    plt = _pyplot()
    arrays = results["_arrays"]
    order = sorted(results["models"], key=lambda n: results["models"][n]["observed"]["overall"]["rmse"])
    common = arrays["common"]
    observed = arrays["observed"][common]
    errors = [np.asarray(arrays["predictions"][n][common], dtype=np.float64) - observed for n in order]
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(order) + 1.4))
    ax.boxplot(errors[::-1], vert=False, whis=(2.5, 97.5), showfliers=False, widths=0.6, medianprops={"color": "black"})
    ax.set_yticks(np.arange(1, len(order) + 1))
    ax.set_yticklabels(
        [f"{n}  (RMSE {results['models'][n]['observed']['overall']['rmse']:.2f} mm)" for n in order[::-1]], fontsize=7
    )
    limit = max(np.nanpercentile(np.abs(e), 97.5) for e in errors) * 1.05 or 1.0
    ax.set_xlim(-limit, limit)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("forecast − observed (mm); box: quartiles, whiskers: 2.5–97.5 %", fontsize=8)
    ax.set_title("Error distribution per model over the scored test cells", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure_rmse_per_step(results: dict, path: Path) -> None:
    """RMSE per forecast step, one line per model (and against truth when known).

    Every line has a legend entry; the legend sits outside the axes so that it never
    covers a marker.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(7.2, 4))
    steps = np.arange(1, results["steps"] + 1)
    handles = []
    for name, info in results["models"].items():
        (line,) = ax.plot(steps, [s["rmse"] for s in info["observed"]["per_step"]], marker="o", label=name)
        handles.append(line)
        if results.get("has_truth"):
            ax.plot(steps, [s["rmse"] for s in info["truth"]["per_step"]], ls=":", marker=".", color=line.get_color())
    if results.get("has_truth"):
        handles += [
            Line2D([], [], color="grey", marker="o", label="vs observed (solid)"),
            Line2D([], [], color="grey", ls=":", marker=".", label="vs noise-free truth (dotted)"),
        ]
    ax.set_xlabel("forecast step (epochs ahead)")
    ax.set_ylabel("RMSE (mm)")
    ax.set_xticks(steps)
    ax.set_title("RMSE per forecast step", fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure_lag_importance(results: dict, path: Path) -> None:
    """Bars of lag importance: LASSO |coef|, LightGBM gain, permutation ΔRMSE."""
    plt = _pyplot()
    imp = results.get("importance", {})
    window = results["window"]
    panels = []
    if "lasso" in imp:
        panels.append(("LASSO |coefficient| share (step 1)", np.asarray(imp["lasso"]["share"])[0], "share"))
    if "lightgbm" in imp:
        panels.append(("LightGBM gain share (step 1)", np.asarray(imp["lightgbm"]["share"])[0], "share"))
    for name, p in imp.get("permutation", {}).items():
        panels.append((f"{name}: permutation ΔRMSE", np.asarray(p["delta_rmse_mm"], dtype=float), "ΔRMSE (mm)"))
    if not panels:
        panels.append(("no lag importance computed", np.zeros(window), ""))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 2.8 * nrows), squeeze=False)
    labels = [lag_label(j, window) for j in range(window)]
    for ax, (title, values, unit) in zip(axes.ravel(), panels):
        colors = ["tab:red" if j == window - 1 else "tab:blue" for j in range(window)]
        ax.bar(np.arange(window), np.nan_to_num(values), color=colors)
        ax.set_xticks(np.arange(window))
        ax.set_xticklabels(labels, fontsize=6, rotation=90)
        ax.set_title(title, fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.suptitle("Which input epochs matter (red: most recent epoch)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(results: dict, folder, overwrite: bool = False) -> Path:
    """Write ``metrics.json``, ``report.md`` and the figures into ``folder``, atomically.

    Parameters
    ----------
    results : dict
        From :func:`insar_raster.evaluate.evaluate_cube` (figures need its ``_arrays``;
        without them only the JSON and Markdown are written).
    folder : str or Path
        Destination folder; must not exist unless ``overwrite``.

    Returns
    -------
    Path
        The folder.
    """
    folder = Path(folder)
    with atomic_path(folder, overwrite=overwrite, directory=True) as tmp:
        tmp.mkdir()
        (tmp / "metrics.json").write_text(json.dumps(metrics_json(results), indent=2, allow_nan=False) + "\n")
        (tmp / "report.md").write_text(markdown(results))
        if "_arrays" in results:
            figure_maps(results, tmp / "maps.png")
            figure_errors(results, tmp / "errors.png")
            figure_rmse_per_step(results, tmp / "rmse_per_step.png")
            figure_lag_importance(results, tmp / "lag_importance.png")
    return folder
