"""How low can any forecast go on the cells a front reaches? (issue 12)

On the ``fronts``/``realistic`` scenes (:mod:`insar_raster.synth_processes`) a district
mines its panels one after the other: when a panel's face stops, the next panel starts
0-0.2 yr later beside it. Part of the motion of the cells a front reaches during a
forecast horizon therefore comes from a panel that has not started when the forecast is
made: nothing in the past moves there yet. This script splits the error of an oracle on
those cells (``evaluate.fronts.front_cells``, the test samples of
``eval_fronts.py``'s split, against the noise-free truth):

- ``level``: the true change of the horizon added to the per-pixel history fit's level at
  the last input epoch (36 epochs, the prior's choice on these scenes): the error of
  knowing every future change exactly, from a per-pixel estimate of where the cell is now;
- ``new panels``: the change caused by panels that start during the horizon, i.e. the
  error of a forecast that knows exactly the motion of every started panel and the
  cell's level, but cannot know a panel's start before it happens;
- ``both``: the two together (an oracle for started panels, the history fit's level).

Each is reported over all front cells and over those reached by a panel that had started
at the forecast time (``started``: the floor of a forecast that knows the started
panels' motion but takes the per-pixel fit's level) or starts later (``new``).

    PYTHONPATH=. .venv/bin/python benchmarks/front_bound.py [--scenes fronts,realistic]
"""

from __future__ import annotations

import sys

import numpy as np
from _args import parse_shape, scene_parser

from insar_raster.evaluate.fronts import front_cells
from insar_raster.forecast.data import history_eval, history_fit, times_in_days
from insar_raster.forecast.windows import chronological_split
from insar_raster.synth import build_scene, make_scene_cube
from insar_raster.synth_processes import Front


def main(argv=None) -> int:
    parser = scene_parser(__doc__, scenes="fronts,realistic", shape="128x128", resolution=200.0, n_epochs=144, seed=0)
    parser.add_argument("--history", type=int, default=36, help="epochs of the per-pixel fit giving the level")
    args = parser.parse_args(argv)
    shape = parse_shape(args.shape)
    window, steps = 12, 6
    for scene in args.scenes.split(","):
        observed, truth = make_scene_cube(shape, args.n_epochs, 12, scene, args.seed, resolution=args.resolution)
        sc = build_scene(shape, args.n_epochs, 12, scene, args.seed, args.resolution)
        split = chronological_split(args.n_epochs, window, steps, 0.15, 0.15)
        mask = front_cells(truth, observed, split)
        started_mask = front_cells(truth, observed, split, panels="started")
        obs, tru = observed["displacement"].values, truth["displacement"].values
        days, years = times_in_days(observed), sc.years
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        x, y = (cols.ravel() + 0.5) * args.resolution, (rows.ravel() + 0.5) * args.resolution
        fronts = [p for p in sc.processes if isinstance(p, Front)]
        errors = {"level": [], "new panels": [], "both": [], "zero change (truth persistence)": []}
        started = []  # per front cell x step: reached by a panel already advancing
        for i, start in enumerate(split.test):
            last = start + window - 1
            targets = np.arange(last + 1, last + 1 + steps)
            cells = mask[i, 0]
            first = max(0, last + 1 - args.history)
            coef = history_fit(obs[first : last + 1], days[first : last + 1], days[last])
            level = history_eval(coef, days[last : last + 1], days[last])[0]
            level_error = (level - tru[last])[cells][:, None]
            new = np.zeros((int(cells.sum()), steps))
            t = years[np.r_[last, targets]]
            for p in fronts:
                if p.t_start > years[last]:  # starts after the forecast is made
                    d = p.displacement(x[cells.ravel()], y[cells.ravel()], t)
                    new += d[:, 1:] - d[:, :1]
            change = (tru[targets] - tru[last])[:, cells].T
            errors["level"].append(np.broadcast_to(level_error, new.shape).ravel())
            errors["new panels"].append(new.ravel())
            errors["both"].append((level_error - new).ravel())
            errors["zero change (truth persistence)"].append(change.ravel())
            started.append(np.broadcast_to(started_mask[i, 0][cells][:, None], new.shape).ravel())
        started = np.concatenate(started)
        print(f"\n{scene} ({shape[0]}x{shape[1]} cells of {args.resolution:g} m, {args.n_epochs} epochs, "
              f"{len(split.test)} test samples, {int(mask[:, 0].sum())} front cells x samples)")  # fmt: skip
        print(f"  {int(started.sum()) // steps} of them reached by a started panel")
        print(
            f"  {'oracle error':34s} {'all':>6s} {'started':>8s} {'new':>6s}  (RMSE, mm, by the panel reaching the cell)"
        )
        for name, values in errors.items():
            v = np.concatenate(values)
            parts = [np.sqrt(np.nanmean(v[m] ** 2)) for m in (np.ones_like(started), started, ~started)]
            print(f"  {name:34s} " + " ".join(f"{p:{w}.2f}" for p, w in zip(parts, (6, 8, 6))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
