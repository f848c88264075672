"""Evaluation tables on two synthetic scenes of different character.

Runs ``insar_raster.evaluate.evaluate_cube`` on a bowl-dominated and a
seasonal-dominated scene (observed = truth + correlated atmosphere + white noise) and
prints, per scene, the tables against the observations and against the noise-free
truth, plus the ratio of the default deep model's RMSE to persistence's. Nothing is
asserted: numbers for benchmarks/README.md.

    .venv/bin/python benchmarks/eval_scenes.py [--shape 64x64] [--n-epochs 120] [--out DIR]
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from _args import add_models, add_train_epochs, parse_shape, scene_parser

from insar_raster.evaluate import ALL_MODELS, evaluate_cube, format_table, write_report
from insar_raster.synth import make_scene_cube


def main(argv=None) -> int:
    parser = scene_parser(__doc__, scenes="bowl,seasonal", shape="64x64", n_epochs=120, seed=0)
    parser.add_argument("--window", type=int, default=12)
    parser.add_argument("--steps", type=int, default=6)
    add_train_epochs(parser)
    parser.add_argument("--samples-per-epoch", type=int, default=None, help="deep models: patches per training epoch")
    parser.add_argument("--val-patches", type=int, default=None, help="deep models: validation patches")
    add_models(parser, ",".join(ALL_MODELS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="also write a report folder per scene here (must not exist)")
    args = parser.parse_args(argv)
    shape = parse_shape(args.shape)
    import torch

    print(
        f"# machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, cuda={torch.cuda.is_available()}"
    )
    train_options = {
        k: v
        for k, v in (("samples_per_epoch", args.samples_per_epoch), ("val_patches", args.val_patches))
        if v is not None
    }
    print(f"# deep models: max {args.train_epochs or 'default'} epochs, options {train_options or 'default'}")
    summary = {}
    for scene in args.scenes.split(","):
        observed, truth = make_scene_cube(shape, args.n_epochs, 12, scene, args.seed)
        t0 = time.perf_counter()
        results = evaluate_cube(
            observed,
            args.models.split(","),
            window=args.window,
            steps=args.steps,
            truth=truth,
            seed=args.seed,
            epochs=args.train_epochs,
            device=args.device,
            train_options=train_options,
            progress=False,
        )
        seconds = time.perf_counter() - t0
        print(
            f"\n## scene {scene}: {shape[0]}x{shape[1]} cells, {args.n_epochs} epochs, window {args.window}, "
            f"steps {args.steps}, seed {args.seed}; {results['split']['test_samples']} test samples "
            f"({results['test_target_dates'][0]} to {results['test_target_dates'][-1]}); {seconds:.0f} s\n"
        )
        print("Against the observations:\n")
        print(format_table(results, "observed"))
        print("\nAgainst the noise-free truth:\n")
        print(format_table(results, "truth"))
        models = results["models"]
        ratios = {}
        for against in ("observed", "truth"):
            rm = {n: m[against]["overall"]["rmse"] for n, m in models.items()}
            best = min(rm, key=rm.get)
            ratio = rm["convlstm"] / rm["persistence"] if "convlstm" in rm else float("nan")
            ratios[against] = ratio
            print(f"\n{against}: best {best}; convlstm / persistence RMSE = {ratio:.3f}")
        from insar_raster.evaluate.report import _findings

        print("\n" + "\n".join(f"- {line}" for line in _findings(results)))
        print("fit seconds: " + ", ".join(f"{n} {m['fit_seconds']:.1f}" for n, m in models.items()))
        summary[scene] = {"ratios": ratios, "ranking": results["ranking"], "seconds": seconds}
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            write_report(results, Path(args.out) / scene)
    print("\n" + json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
