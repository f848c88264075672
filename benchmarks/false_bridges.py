"""How much deformation does linear interpolation invent where there are no MPs?

The paper grids with linear interpolation over the whole convex hull of the MPs, which
bridges lakes, the sea and empty fields with values that were never measured. This
script grids a synthetic scene (water has no MPs and no truth) both ways and prints:

- the share of water cells that receive a value (pure invention);
- the error against the noise-free truth in land cells far from any MP, i.e. the cells
  the gap mask blanks, versus cells near MPs;
- what the gap mask costs in coverage of land.

Usage: python benchmarks/false_bridges.py [--points 20000] [--shape 128x128]
"""

from __future__ import annotations

import argparse

import numpy as np

from insar_raster.grid.gridding import grid_points
from insar_raster.synth import build_scene, make_scene


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--shape", default="128x128")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    shape = tuple(int(v) for v in args.shape.split("x"))
    points, truth = make_scene(args.points, shape, args.epochs, seed=args.seed)
    land = build_scene(shape, args.epochs, seed=args.seed).land
    truth_v = truth.displacement.values
    rows = []
    for label, max_gap in (("paper: linear, no mask", np.inf), ("insar-raster: linear, max_gap 300 m", None)):
        cube = grid_points(points, method="linear", max_gap=max_gap).compute()
        d = cube.displacement.values
        filled = np.isfinite(d[-1])
        far = cube.distance_to_mp.values > 300
        err = d - truth_v
        rows.append(
            (
                label,
                100 * (filled & ~land).sum() / max(1, (~land).sum()),
                float(np.sqrt(np.nanmean(err[:, land & far & filled] ** 2)))
                if (land & far & filled).any()
                else float("nan"),
                float(np.sqrt(np.nanmean(err[:, land & ~far & filled] ** 2))),
                100 * (filled & land).sum() / land.sum(),
            )
        )
    print(f"scene {shape[0]}x{shape[1]} cells at 100 m, {args.points} MPs, {args.epochs} epochs, seed {args.seed}")
    print(
        f"{'gridding':40s} {'water cells filled':>19s} {'RMSE far land (mm)':>19s} {'RMSE near MPs (mm)':>19s} {'land covered':>13s}"
    )
    for label, water, far_rmse, near_rmse, cover in rows:
        print(f"{label:40s} {water:18.1f}% {far_rmse:19.2f} {near_rmse:19.2f} {cover:12.1f}%")


if __name__ == "__main__":
    main()
