"""Every model on the scenes with motion no per-pixel curve extrapolates (issue 12).

Runs ``evaluate_cube`` on synthetic scenes (default: ``fronts`` and ``realistic``, 128 x 128
cells of 200 m, 144 epochs, 6 held out per sample, scored against the noise-free truth)
and prints, per scene: the RMSE table against the truth, the default model's RMSE over the
best of persistence, local trend and history fit (overall, and on the cells a front
reaches during the horizon), whether its network stage was kept, interval coverage and
width per step, and the fit time of each model.

    .venv/bin/python benchmarks/eval_fronts.py [--scenes fronts,realistic] [--shape 128x128]
        [--resolution 200] [--n-epochs 144] [--models ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from insar_raster.evaluate import ALL_MODELS, evaluate_cube, format_table
from insar_raster.synth import make_scene_cube

REFERENCES = ("persistence", "trend", "history_fit")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", default="fronts,realistic")
    parser.add_argument("--shape", default="128x128")
    parser.add_argument("--resolution", type=float, default=200.0)
    parser.add_argument("--n-epochs", type=int, default=144)
    parser.add_argument("--models", default=",".join(ALL_MODELS))
    parser.add_argument("--default", default="convlstm", help="the model the ratios are computed for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--permutation-repeats", type=int, default=0)
    args = parser.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.lower().split("x"))
    summary = {}
    for scene in args.scenes.split(","):
        observed, truth = make_scene_cube(shape, args.n_epochs, 12, scene, args.seed, resolution=args.resolution)
        t0 = time.perf_counter()
        res = evaluate_cube(
            observed,
            args.models.split(","),
            window=12,
            steps=6,
            truth=truth,
            seed=args.seed,
            permutation_repeats=args.permutation_repeats,
            progress=False,
            keep_arrays=False,
        )
        seconds = time.perf_counter() - t0
        models = res["models"]
        print(
            f"\n## {scene}: {shape[0]}x{shape[1]} cells of {args.resolution:g} m, {args.n_epochs} epochs, "
            f"{res['split']['test_samples']} test samples; {seconds:.0f} s\n"
        )
        print(format_table(res, "truth"))
        out = {
            "seconds": round(seconds),
            "fit_seconds": {n: round(m["fit_seconds"] + m["predict_seconds"], 1) for n, m in models.items()},
        }
        rt = {n: m["truth"]["overall"]["rmse"] for n, m in models.items()}
        refs = [n for n in REFERENCES if n in rt]
        d = args.default
        if d in rt and refs:
            best = min(refs, key=rt.get)
            out["overall_ratio"] = rt[d] / rt[best]
            out["overall_best_reference"] = best
            print(f"\n{d}: RMSE vs truth {rt[d]:.3f} mm = {rt[d] / rt[best]:.2f} x {best} ({rt[best]:.3f})")
        front = {n: m["truth_front_cells"]["overall"]["rmse"] for n, m in models.items() if m.get("truth_front_cells")}
        if d in front:
            best = min((n for n in refs if n in front), key=front.get)
            out["front_ratio"] = front[d] / front[best]
            print(
                f"front cells: {d} {front[d]:.3f} mm = {front[d] / front[best]:.2f} x {best} ({front[best]:.3f}); "
                + ", ".join(f"{n} {v:.2f}" for n, v in front.items())
            )
            out["front_rmse"] = front
        for n, m in models.items():
            if m["kind"] == "deep":
                print(
                    f"{n}: best_epoch {m['details'].get('best_epoch')} (network kept: "
                    f"{bool(m['details'].get('best_epoch'))}), prior {m['details']['config'].get('prior_history')} "
                    f"epochs, ridge {m['details']['config'].get('acceleration_ridge')}"
                )
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
        summary[scene] = out
        print("fit+predict seconds: " + ", ".join(f"{n} {v}" for n, v in out["fit_seconds"].items()), flush=True)
    print("\n" + json.dumps(summary, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
