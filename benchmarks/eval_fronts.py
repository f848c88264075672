"""Every model on the scenes with motion no per-pixel curve extrapolates (issue 12).

Runs the evaluation on synthetic scenes (default: ``fronts`` and ``realistic``, 128 x 128
cells of 200 m, 144 epochs, 6 held out per sample, scored against the noise-free truth)
and prints, per scene: the RMSE table against the truth, the default model's RMSE over the
best of persistence, local trend and history fit (overall, and on the cells a front
reaches during the horizon), whether its network stage was kept, interval coverage and
width per step, and the fit + predict time of each model.

With ``--cli`` each scene is written to a .nc cube (+ truth), kept in ``--cache-dir``
for reruns, and evaluated by ``insar-raster evaluate cube.nc --truth truth.nc`` in a
fresh process with its defaults (every model, permutation test, report and figures):
the whole command's wall time and peak memory are what a user waits for (issue 12's
target: under 10 minutes for a 128 x 128 x 150 cube on 2 CPU cores). Without it,
``evaluate_cube`` runs in this process without the permutation test and figures.

    .venv/bin/python benchmarks/eval_fronts.py [--scenes fronts,realistic] [--shape 128x128]
        [--resolution 200] [--n-epochs 144] [--models ...] [--cli]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from _args import add_cache_dir, add_models, parse_shape, scene_parser

from insar_raster.evaluate import ALL_MODELS, evaluate_cube, format_table
from insar_raster.synth import make_scene_cube

REFERENCES = ("persistence", "trend", "history_fit")


def scene_files(scene, shape, n_epochs, resolution, seed, cache_dir) -> tuple[Path, Path]:
    """The scene's observed and truth cubes as .nc files in ``cache_dir`` (built once)."""
    from insar_raster.gis.write import write_cube

    stem = f"{scene}_{shape[0]}x{shape[1]}x{n_epochs}_{resolution:g}m_seed{seed}"
    cube_path, truth_path = Path(cache_dir) / f"{stem}.nc", Path(cache_dir) / f"{stem}_truth.nc"
    if not (cube_path.exists() and truth_path.exists()):
        cube_path.parent.mkdir(parents=True, exist_ok=True)
        observed, truth = make_scene_cube(shape, n_epochs, 12, scene, seed, resolution=resolution)
        write_cube(observed, cube_path, overwrite=True)
        write_cube(truth, truth_path, overwrite=True)
    return cube_path, truth_path


def run_cli(args, scene, shape) -> tuple[dict, float]:
    """``insar-raster evaluate`` on the scene in a fresh process: (metrics.json, wall s)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from _measure import measure

    cube_path, truth_path = scene_files(scene, shape, args.n_epochs, args.resolution, args.seed, args.cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        argv = ["evaluate", str(cube_path), "--truth", str(truth_path), "-o", str(report)]
        argv += ["--models", args.models, "--seed", str(args.seed)]
        if args.permutation_repeats is not None:
            argv += ["--permutation-repeats", str(args.permutation_repeats)]
        result = measure(
            f"from insar_raster.cli import main\nraise SystemExit(main({argv!r}))", f"insar-raster evaluate ({scene})"
        )
        res = json.loads((report / "metrics.json").read_text())
    res["_peak_rss_mib"] = result["peak_rss_mib"]
    res["_cpu_s"] = result["cpu_s"]
    return res, result["wall_s"]


def summarise(res: dict, default: str, seconds: float) -> dict:
    """Print the DoD ratios, front cells, network choice, coverage; return them."""
    models = res["models"]
    out = {
        "seconds": round(seconds),
        "fit_seconds": {n: round(m["fit_seconds"] + m["predict_seconds"], 1) for n, m in models.items()},
    }
    for key in ("_peak_rss_mib", "_cpu_s"):
        if key in res:
            out[key.strip("_")] = round(res[key])
    rt = {n: m["truth"]["overall"]["rmse"] for n, m in models.items()}
    refs = [n for n in REFERENCES if n in rt]
    d = default
    if d in rt and refs:
        best = min(refs, key=rt.get)
        out["overall_ratio"] = rt[d] / rt[best]
        out["overall_best_reference"] = best
        print(f"\n{d}: RMSE vs truth {rt[d]:.3f} mm = {rt[d] / rt[best]:.2f} x {best} ({rt[best]:.3f})")
    # All front cells, then split by the panel reaching them: started at forecast time
    # (predictable from the past) or starting during the horizon (not).
    for key, label, suffix in (
        ("truth_front_cells", "front cells", ""),
        ("truth_front_cells_started", "front cells, started panels", "_started"),
        ("truth_front_cells_new", "front cells, new panels", "_new"),
    ):
        front = {n: m[key]["overall"]["rmse"] for n, m in models.items() if m.get(key)}
        if d in front:
            best = min((n for n in refs if n in front), key=front.get)
            out[f"front_ratio{suffix}"] = front[d] / front[best]
            print(
                f"{label}: {d} {front[d]:.3f} mm = {front[d] / front[best]:.2f} x {best} ({front[best]:.3f}); "
                + ", ".join(f"{n} {v:.2f}" for n, v in front.items())
            )
            out[f"front_rmse{suffix}"] = front
    for n, m in models.items():
        if m["kind"] == "deep":
            det = m["details"]
            print(
                f"{n}: best_epoch {det.get('best_epoch')} of {det.get('epochs_trained')} (network kept: "
                f"{bool(det.get('best_epoch'))}), prior {det['config'].get('prior_history')} "
                f"epochs, ridge {det['config'].get('acceleration_ridge')}"
            )
            if det.get("ensemble"):
                ens = det["ensemble"]
                print(
                    f"{n}: weights chosen on validation "
                    + ", ".join(f"{a} {w:.2f}" for a, w in ens["weights"].items())
                    + "; members' networks kept: "
                    + ", ".join(f"{a} {bool(v['network_kept'])}" for a, v in ens["members"].items())
                )
                out.setdefault("ensemble_weights", {})[n] = ens["weights"]
        if m.get("interval"):
            c = m["interval"]
            print(
                f"{n}: {c['level_percent']:g} % interval coverage per step "
                + ", ".join(f"{p:.1f}" for p in c["coverage_percent"])
                + "; mean width "
                + ", ".join(f"{w:.2f}" for w in c["mean_width_mm"])
                + " mm"
            )
            out.setdefault("coverage", {})[n] = c["coverage_percent"]
    out["truth_rmse"] = rt
    out["observed_rmse"] = {n: m["observed"]["overall"]["rmse"] for n, m in models.items()}
    print("fit+predict seconds: " + ", ".join(f"{n} {v}" for n, v in out["fit_seconds"].items()), flush=True)
    return out


def main(argv=None) -> int:
    parser = scene_parser(__doc__, scenes="fronts,realistic", shape="128x128", resolution=200.0, n_epochs=144, seed=0)
    add_models(parser, ",".join(ALL_MODELS))
    parser.add_argument("--default", default="convlstm", help="the model the ratios are computed for")
    parser.add_argument(
        "--train-options",
        type=json.loads,
        default=None,
        help="in-process only: extra TrainConfig fields of the deep models, as JSON, e.g. '{\"importance\": 0.7}'",
    )
    parser.add_argument(
        "--permutation-repeats",
        type=int,
        help="permutation test donors (default: 0 in-process, evaluate's own default with --cli)",
    )
    parser.add_argument(
        "--cli", action="store_true", help="run 'insar-raster evaluate' in a fresh process (whole-command time)"
    )
    add_cache_dir(parser, "--cli: where the scene cubes are kept for reruns")
    args = parser.parse_args(argv)
    shape = parse_shape(args.shape)
    summary = {}
    for scene in args.scenes.split(","):
        if args.cli:
            res, seconds = run_cli(args, scene, shape)
        else:
            observed, truth = make_scene_cube(shape, args.n_epochs, 12, scene, args.seed, resolution=args.resolution)
            t0 = time.perf_counter()
            res = evaluate_cube(
                observed,
                args.models.split(","),
                window=12,
                steps=6,
                truth=truth,
                seed=args.seed,
                permutation_repeats=args.permutation_repeats or 0,
                progress=False,
                keep_arrays=False,
                train_options=args.train_options,
            )
            seconds = time.perf_counter() - t0
        print(
            f"\n## {scene}: {shape[0]}x{shape[1]} cells of {args.resolution:g} m, {args.n_epochs} epochs, "
            f"{res['split']['test_samples']} test samples; {seconds:.0f} s"
            + (" (whole 'insar-raster evaluate' command)" if args.cli else "")
            + "\n"
        )
        print(format_table(res, "truth"))
        summary[scene] = summarise(res, args.default, seconds)
    print("\n" + json.dumps(summary, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
