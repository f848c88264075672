"""Coverage of the point forecast's intervals over many forecast origins (issue 13).

The test split of ``points_scenes.py`` has 13 origins, whose targets span 18 dates: one
season. This scores the same rolling point forecast (``rolling_point_forecast``, base
``history_fit``) at every origin from epoch 61 on (about two years of origins on 120
epochs), once with the scene-wide errors of the 12 latest samples only
(``common_mode_share=0``) and once with the default (older origins too), and prints the
coverage per step over all origins and over windows of 13 origins. The ``history_fit``
grid model is fitted on the usual 70/15/15 split; its forecasts of samples before the
validation ones are in-sample for its history-length choice, which is why this is a
study of the calibration, not a score of the grid model. Nothing is asserted.

    PYTHONPATH=. .venv/bin/python benchmarks/points_intervals.py [--scenes realistic,urban] [--seed 1]
"""

from __future__ import annotations

import warnings

import numpy as np
from _args import POINT_SCENES, parse_shape, scene_parser

from insar_raster.evaluate.baselines import cube_values, make_baseline
from insar_raster.forecast.data import times_in_days
from insar_raster.forecast.points import COMMON_MODE_SHARE, points_on_cube, rolling_point_forecast, sample_grid
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.gridding import grid_points
from insar_raster.synth import make_scene

WINDOW, STEPS = 12, 6


def main(argv=None) -> int:
    parser = scene_parser(__doc__, scenes=POINT_SCENES, points=5000, shape="48x48", n_epochs=120, seed=1)
    parser.add_argument("--first-origin", type=int, default=50, help="first sample scored")
    args = parser.parse_args(argv)
    shape = parse_shape(args.shape)
    print("| scene | calibration | coverage per step 1..6 over all origins (%) | step 6 per 13 origins (%) |")
    print("|---|---|---|---|")
    for scene in args.scenes.split(","):
        points, _ = make_scene(args.points, shape, args.n_epochs, scene=scene, seed=args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cube = grid_points(points).compute()
            split = chronological_split(cube.sizes["time"], WINDOW, STEPS, 0.15, 0.15)
            model = make_baseline("history_fit", WINDOW, STEPS).fit(cube, split)
            mps = points_on_cube(points, cube)
            values, days = mps["values"], times_in_days(cube)
            series = sample_grid(cube_values(cube), mps["rows"], mps["cols"]).T
            pool = np.arange(args.first_origin - 20, split.test[-1])
            test = np.arange(args.first_origin, split.test[-1] + 1)
            cell_pool = sample_grid(model.predict_windows(cube, pool), mps["rows"], mps["cols"])
            cell_test = sample_grid(model.predict_windows(cube, test), mps["rows"], mps["cols"])
            observed = values[:, test[:, None] + WINDOW + np.arange(STEPS)].transpose(1, 2, 0)
            for label, share in (("12 latest samples only", 0.0), ("default", COMMON_MODE_SHARE)):
                got = rolling_point_forecast(
                    values, days, test, cell_test, pool, cell_pool, series, WINDOW, STEPS,
                    interval=80, common_mode_share=share,
                )  # fmt: skip
                inside = (got["lower"] <= observed) & (observed <= got["upper"])
                per_origin = 100 * inside.mean(axis=2)
                windows = [per_origin[i : i + 13, -1].mean() for i in range(0, len(test) - 12, 4)]
                print(
                    f"| {scene} | {label} | {', '.join(f'{c:.1f}' for c in per_origin.mean(axis=0))} | "
                    f"{min(windows):.1f}-{max(windows):.1f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
