"""Cell scores and scores at the measurement points (MPs) on synthetic scenes with per-MP behaviour.

Per scene: ``make_scene`` points (each MP with its own offset, seasonal amplitude and
2-4 mm noise), gridded with the default linear gridder, then ``evaluate_cube`` with
``points=`` (and optionally ``holdout_block=``). Prints one Markdown table per scene:
every model's RMSE on the cells (against the gridded observations) beside its RMSE at
the MPs (against each MP's own held-out values), including per-MP persistence, the
per-MP history fit and the point forecast, the point forecast's weights at the first
and the last test origin, and the coverage of its 80 % intervals at the MPs per step.
Nothing is asserted: numbers for benchmarks/README.md.

    .venv/bin/python benchmarks/points_scenes.py [--scenes mixed,realistic] [--models ...]
"""

from __future__ import annotations

import json
import time
import warnings

from _args import POINT_SCENES, add_models, add_train_epochs, parse_shape, scene_parser

from insar_raster.evaluate import evaluate_cube
from insar_raster.evaluate.points import MP_MODELS
from insar_raster.grid.gridding import grid_points
from insar_raster.synth import make_scene


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def main(argv=None) -> int:
    parser = scene_parser(__doc__, scenes=POINT_SCENES, points=5000, shape="48x48", n_epochs=120, seed=1)
    add_models(parser, "persistence,trend,trend_seasonal,history_fit,lasso,lightgbm")
    parser.add_argument("--point-base", default=None, help="model under the point forecast (default: evaluate's)")
    parser.add_argument("--holdout-block", type=int, default=None)
    add_train_epochs(parser)
    args = parser.parse_args(argv)
    shape = parse_shape(args.shape)
    summary = {}
    for scene in args.scenes.split(","):
        points, _ = make_scene(args.points, shape, args.n_epochs, scene=scene, seed=args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cube = grid_points(points).compute()
            t0 = time.perf_counter()
            res = evaluate_cube(
                cube,
                args.models.split(","),
                points=points,
                holdout_block=args.holdout_block,
                point_base=args.point_base,
                epochs=args.train_epochs,
                seed=args.seed,
                permutation_repeats=0,
                keep_arrays=False,
                interval=80,
            )
        seconds = time.perf_counter() - t0
        pts = res["points"]
        print(
            f"\n### {scene}: {shape[0]}x{shape[1]} cells of 100 m, {args.points} MPs, {args.n_epochs} epochs, "
            f"window {res['window']}, steps {res['steps']}, seed {args.seed}; point forecast on {pts['base']}; "
            f"{seconds:.0f} s\n"
        )
        head = (
            "| model | cells: RMSE vs gridded obs (mm) | MPs: RMSE vs own obs (mm) | MPs: skill vs per-MP persistence |"
        )
        rule = "|---|---:|---:|---:|"
        if "holdout" in pts:
            head += " MPs in held-out blocks (mm) | MPs elsewhere (mm) |"
            rule += "---:|---:|"
        print(head + "\n" + rule)
        order = sorted(pts["models"], key=lambda n: pts["models"][n]["observed"]["overall"]["rmse"])
        for name in order:
            cell = res["models"].get(name, {}).get("observed", {}).get("overall", {}).get("rmse")
            mp = pts["models"][name]["observed"]["overall"]
            label = f"{name} (per MP)" if name in MP_MODELS else name
            row = f"| {label} | {_fmt(cell)} | {_fmt(mp['rmse'])} | {mp['skill']:.3f} |"
            if "holdout" in pts:
                h = pts["holdout"]["rmse"][name]
                row += f" {_fmt(h['held_out'])} | {_fmt(h['seen'])} |"
            print(row)
        summary[scene] = {n: pts["models"][n]["observed"]["overall"]["rmse"] for n in order}
        model = pts["point_model"]
        print(
            f"\npoint forecast weights (every step) over {model['members']} at the first test origin: "
            f"{model['weights'][0]}; carried {model['terms']}: {model['carry'][0]}"
        )
        if "last_origin_weights" in model:
            print(
                f"at the last test origin: {model['last_origin_weights'][0]}; carried {model['last_origin_carry'][0]}"
            )
        cover = pts["models"]["point_forecast"].get("interval")
        if cover:
            print(
                f"point forecast {cover['level_percent']:g} % intervals at the MPs, coverage / mean width per step: "
                + "; ".join(
                    f"{c:.1f} % / {w:.2f} mm" for c, w in zip(cover["coverage_percent"], cover["mean_width_mm"])
                )
            )
            summary[scene]["point_interval_coverage"] = [round(c, 1) for c in cover["coverage_percent"]]
    print("\n" + json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
