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

from insar_raster.io.atomic import atomic_path

FIGURES = ("maps.png", "scatter.png", "rmse_per_step.png", "lag_importance.png")


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def overall_table(results: dict, against: str = "observed") -> str:
    """Markdown table: one row per model (best RMSE first) with its overall scores."""
    rows = ["| model | RMSE (mm) | MAE (mm) | R² | R² of change | skill vs persistence |",
            "|---|---:|---:|---:|---:|---:|"]
    order = sorted(results["models"], key=lambda n: results["models"][n][against]["overall"]["rmse"])
    for name in order:
        s = results["models"][name][against]["overall"]
        rows.append(f"| {name} | {_fmt(s['rmse'])} | {_fmt(s['mae'])} | {_fmt(s['r2'], 4)} | "
                    f"{_fmt(s.get('r2_change'))} | {_fmt(s.get('skill'))} |")
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
    if stage:
        parts.append(f"Its learned spatial filter of the prior took the validation RMSE from "
                     f"{_fmt(stage['val_rmse_prior_mm'])} to {_fmt(stage['val_rmse_filtered_mm'])} mm"
                     + ("" if stage["kept"] else " and was not kept"))
    best = details.get("best_epoch")
    if best is not None:
        parts.append(f"its network was kept from training epoch {best}" if int(best) > 0 else
                     "its network did not beat that on validation by the required margin, so the forecast is "
                     "the (filtered) prior")
    return ("; ".join(parts) + ".") if parts else ""


def _tied(scores: dict, best: str) -> str:
    """The best model in bold, with every model that scores exactly the same."""
    tied = [n for n in scores if scores[n] == scores[best]]
    return " and ".join(f"**{n}**" for n in tied) + (" (the same forecast)" if len(tied) > 1 else "")


def _findings(results: dict) -> list[str]:
    """Plain-language reading of the numbers (generated from them, not written in advance)."""
    models = results["models"]
    out = []
    rm = {n: m["observed"]["overall"]["rmse"] for n, m in models.items()}
    best = min(rm, key=rm.get)
    pers = rm["persistence"]
    out.append(f"Lowest RMSE against the observations: {_tied(rm, best)} ({_fmt(rm[best])} mm, "
               f"{rm[best] / pers:.2f}× persistence's {_fmt(pers)} mm).")
    beaten = [n for n in rm if n != "persistence" and rm[n] < pers]
    worse = [n for n in rm if n != "persistence" and rm[n] >= pers]
    if worse:
        out.append(f"Not better than persistence: {', '.join(worse)}." if beaten else
                   "No model beats persistence on these test epochs.")
    if results.get("has_truth"):
        rt = {n: m["truth"]["overall"]["rmse"] for n, m in models.items()}
        bt = min(rt, key=rt.get)
        out.append(f"Against the noise-free truth the best is {_tied(rt, bt)} ({_fmt(rt[bt])} mm vs "
                   f"persistence {_fmt(rt['persistence'])} mm). Observations carry noise that no "
                   "forecast can predict, so RMSE against them has a floor the truth scores do not.")
    r2s = {n: m["observed"]["overall"]["r2"] for n, m in models.items()}
    if r2s["persistence"] > 0.9:
        out.append(f"R² on cumulative displacement is high for every model (persistence alone: "
                   f"{_fmt(r2s['persistence'], 4)}), as in the paper's 0.99: it mostly measures the spread "
                   "of displacement between cells. The R² of the change since the last observed epoch "
                   "separates the models (persistence forecasts no change, so it scores 0 or below there).")
    if "convlstm" in models and "cnn" in models:
        a, b = rm["convlstm"], rm["cnn"]
        verdict = ("the same forecast: neither network beat its filtered prior on validation" if a == b else
                   "the recurrent core helps" if a < b else "the recurrent core does not help here")
        text = f"Ablation, CNN without LSTM: cnn {_fmt(b)} mm vs convlstm {_fmt(a)} mm ({verdict})."
        nets = {n: (models[n].get("details") or {}).get("network_best_val_rmse_mm") for n in ("convlstm", "cnn")}
        if a == b and all(v is not None for v in nets.values()):
            text += (f" Best validation RMSE their networks reached while training: convlstm "
                     f"{_fmt(nets['convlstm'])} mm, cnn {_fmt(nets['cnn'])} mm.")
        out.append(text)
    if "history_fit" in models:
        for name in ("convlstm", "cnn"):
            if name in models:
                a, b = rm[name], rm["history_fit"]
                out.append(f"{name} reads each pixel's past before the window through a per-pixel harmonic prior; "
                           f"history_fit is that kind of fit alone on the same past: {name} {_fmt(a)} mm vs "
                           f"history_fit {_fmt(b)} mm ({(b - a) / b:+.1%}). " + _deep_parts(name, models[name]))
                break
    if "paper" in models and "convlstm" in models:
        out.append(f"The paper's CNN-LSTM: {_fmt(rm['paper'])} mm vs the default convlstm {_fmt(rm['convlstm'])} mm.")
    imp = results.get("importance", {})
    window = results["window"]
    if "lasso" in imp:
        share = np.asarray(imp["lasso"]["share"])[0]
        coef = np.asarray(imp["lasso"]["signed_coefficient"])[0]
        out.append(f"LASSO (step 1): {share[-1]:.0%} of the total |coefficient| is on the most recent epoch "
                   f"(coefficient {coef[-1]:+.3f}; persistence is +1 there and 0 elsewhere); the largest weight is "
                   f"on {lag_label(int(np.argmax(share)), window)} (t = the most recent epoch).")
    if "lightgbm" in imp:
        share = np.asarray(imp["lightgbm"]["share"])[0]
        out.append(f"LightGBM (step 1, gain): {share[-1]:.0%} on the most recent epoch's level, largest on "
                   f"{lag_label(int(np.argmax(share)), window)}. It predicts the change from the last epoch, so "
                   "persistence is its starting point, not something it must learn.")
    for name, p in imp.get("permutation", {}).items():
        share = np.asarray(p["share"], dtype=float)
        if np.all(~np.isfinite(share)):
            out.append(f"Permutation test, {name}: no lag matters (permuting any lag does not increase RMSE).")
            continue
        top = int(np.nanargmax(share))
        out.append(f"Permutation test, {name}: permuting the most recent epoch raises RMSE by "
                   f"{_fmt(p['delta_rmse_mm'][-1])} mm ({share[-1]:.0%} of the total increase); "
                   f"the most important input epoch is {lag_label(top, window)}.")
    return out


def markdown(results: dict) -> str:
    """The whole ``report.md`` text."""
    split = results["split"]
    cube = results["cube"]
    lines = [
        "# Forecast evaluation",
        "",
        f"Cube: {cube['shape'][1]}×{cube['shape'][2]} cells"
        + (f" of {cube['resolution_m']:g} m" if cube.get("resolution_m") else "")
        + f", {cube['shape'][0]} epochs ({cube['first_date']} to {cube['last_date']})"
        + (f", source `{cube['source']}`" if cube.get("source") else "") + ".",
        f"Window L = {results['window']} input epochs, horizon H = {results['steps']} epochs. "
        f"Chronological split: {split['train_samples']} training, {split['val_samples']} validation and "
        f"{split['test_samples']} test samples (training targets before epoch {split['train_end']}, "
        f"test targets from epoch {split['val_end']}). Seed {results['seed']}.",
        f"Scored cells: {results['evaluation_cells']['observed']} (sample × step × cell) where the observation "
        "and every model's forecast are valid; all models are scored on the same cells.",
        "",
        "## Scores against the observations (all test samples and steps)",
        "",
        overall_table(results, "observed"),
        "",
    ]
    if results.get("has_truth"):
        lines += ["## Scores against the noise-free truth", "", overall_table(results, "truth"), ""]
    lines += ["## RMSE per forecast step (mm, against the observations)", "", per_step_table(results), "",
              "![RMSE per step](rmse_per_step.png)", "", "## What the numbers say", ""]
    lines += [f"- {text}" for text in _findings(results)]
    if results.get("resolution_study"):
        lines += ["", "## Across grid sizes (as in the paper)", "",
                  "| grid | cell (m) | " + " | ".join(results["resolution_study"][0]["rmse"]) + " |",
                  "|---|---:|" + "---:|" * len(results["resolution_study"][0]["rmse"])]
        for row in results["resolution_study"]:
            lines.append(f"| {row['size']} | {_fmt(row['resolution_m'], 1)} | "
                         + " | ".join(_fmt(v) for v in row["rmse"].values()) + " |")
        lines += ["", "RMSE (mm) against the observations resampled to each grid."]
    lines += ["", "## Models", ""]
    for name, info in results["models"].items():
        details = ", ".join(f"{k} {v}" for k, v in info["details"].items() if k not in ("config", "prior_filter"))
        lines.append(f"- **{name}** ({info['kind']}): {info['description']}; multi-step: {info['multi_step']}; "
                     f"fit {info['fit_seconds']:.1f} s, predict {info['predict_seconds']:.1f} s"
                     + (f"; {details}" if details else "") + ".")
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
        "## Interpretability", "", "![lag importance](lag_importance.png)", "",
        "## Maps and scatter", "", "![maps](maps.png)", "", "![scatter](scatter.png)", "",
        "## Test target dates", "",
        "Each test sample's target epochs (step 1 to H):", "",
    ]
    for start, dates in zip(split["test_starts"], results["test_dates"]):
        lines.append(f"- sample {start}: {', '.join(dates)}")
    return "\n".join(lines) + "\n"


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


def figure_maps(results: dict, path: Path, sample: int = -1, step: int = 0) -> None:
    """Observed (and truth) / forecast / error maps of one test target date, per model."""
    plt = _pyplot()
    arrays = results["_arrays"]
    names = list(results["models"])
    observed = arrays["observed"][sample, step]
    truth = arrays["truth"][sample, step] if arrays.get("truth") is not None else None
    target = truth if truth is not None else observed
    date = results["test_dates"][sample][step]
    vmin, vmax = _robust_limits([observed] + [arrays["predictions"][n][sample, step] for n in names])
    errors = {n: arrays["predictions"][n][sample, step] - target for n in names}
    emin, emax = _robust_limits(list(errors.values()), symmetric=True)
    ncols = 3
    fig, axes = plt.subplots(len(names), ncols, figsize=(3.2 * ncols, 2.7 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        left = truth if truth is not None else observed
        panels = [(left, "truth" if truth is not None else "observed", "viridis", vmin, vmax),
                  (arrays["predictions"][name][sample, step], f"{name} forecast", "viridis", vmin, vmax),
                  (errors[name], f"{name} − {'truth' if truth is not None else 'observed'}", "RdBu_r", emin, emax)]
        for col, (data, title, cmap, lo, hi) in enumerate(panels):
            ax = axes[row, col]
            im = ax.imshow(data, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.8, label="mm")
    fig.suptitle(f"Test target {date} (step {step + 1})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure_scatter(results: dict, path: Path, max_points: int = 20000, seed: int = 0) -> None:
    """Forecast vs observed displacement over the scored test cells, per model."""
    plt = _pyplot()
    arrays = results["_arrays"]
    names = list(results["models"])
    common = arrays["common"]
    observed = arrays["observed"][common]
    rng = np.random.default_rng(seed)
    pick = rng.choice(observed.size, size=min(max_points, observed.size), replace=False)
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows), squeeze=False)
    lo, hi = _robust_limits([observed])
    for ax, name in zip(axes.ravel(), names):
        pred = arrays["predictions"][name][common][pick]
        ax.scatter(observed[pick], pred, s=1, alpha=0.3, rasterized=True)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        s = results["models"][name]["observed"]["overall"]
        ax.set_title(f"{name}: RMSE {s['rmse']:.2f} mm, R² {s['r2']:.3f}", fontsize=8)
        ax.set_xlabel("observed (mm)", fontsize=8)
        ax.set_ylabel("forecast (mm)", fontsize=8)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def figure_rmse_per_step(results: dict, path: Path) -> None:
    """RMSE per forecast step, one line per model (and against truth when known)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    steps = np.arange(1, results["steps"] + 1)
    for name, info in results["models"].items():
        line, = ax.plot(steps, [s["rmse"] for s in info["observed"]["per_step"]], marker="o", label=name)
        if results.get("has_truth"):
            ax.plot(steps, [s["rmse"] for s in info["truth"]["per_step"]], ls=":", color=line.get_color())
    ax.set_xlabel("forecast step (epochs ahead)")
    ax.set_ylabel("RMSE (mm)")
    ax.set_xticks(steps)
    title = "RMSE per step (solid: vs observed"
    ax.set_title(title + (", dotted: vs truth)" if results.get("has_truth") else ")"), fontsize=9)
    ax.legend(fontsize=7)
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
    for ax in axes.ravel()[len(panels):]:
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
            figure_scatter(results, tmp / "scatter.png", seed=results.get("seed", 0))
            figure_rmse_per_step(results, tmp / "rmse_per_step.png")
            figure_lag_importance(results, tmp / "lag_importance.png")
    return folder
