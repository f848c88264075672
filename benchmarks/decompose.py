"""How well does `grid --decompose` (the EGMS L3 Ortho recipe) recover a known 3-D field?

Synthetic ascending and descending L2b bursts (`insar_raster.synth_los`: real Sentinel-1
LOS vectors, own MPs and dates per geometry) are decomposed and compared with the
noise-free truth at the cells that have both pass directions. Printed per run: RMSE of
`vertical` and `east_west` against the truth, the truth's own RMS, and what a wrong
convention would give (components swapped, LOS sign flipped) plus the naive answer of a
single geometry (ascending LOS / los_up taken as vertical). With `--plot` a PNG of the
truth, the recovered field and their difference (last epoch).

Usage: python benchmarks/decompose.py [--points 20000] [--shape 128x128] [--epochs 100] [--plot out.png]
       python benchmarks/decompose.py --scale 500000   (time and peak memory only, random MPs)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from insar_raster.grid.decompose import decompose_los
from insar_raster.synth_los import make_los_scene


def rmse(a, b) -> float:
    return float(np.sqrt(np.nanmean((a - b) ** 2)))


def run(points, shape, epochs, seed, noise, north):
    asc, desc, truth = make_los_scene(
        points, shape, epochs, seed=seed, north_scale=north, atmosphere_mm=1.5 * noise, white_noise_mm=1.0 * noise
    )
    t0 = time.perf_counter()
    cube = decompose_los([asc, desc])
    seconds = time.perf_counter() - t0
    ref = truth.sel(x=cube.x, y=cube.y, time=cube.time)
    up, east = cube["vertical"].values, cube["east_west"].values
    tu, te = ref["vertical"].values, ref["east_west"].values
    both = np.isfinite(up)
    tu, te = np.where(both, tu, np.nan), np.where(both, te, np.nan)
    # Naive: ascending alone, LOS / los_up per cell taken as vertical (what a user gets from one geometry).
    from insar_raster.grid.gridding import grid_points

    naive = grid_points(asc.assign(displacement=asc.displacement / asc.los_up), method="mean", resolution=100.0)
    naive = naive["displacement"].interp(time=cube.time).sel(x=cube.x, y=cube.y).values
    naive = naive - naive[:1]
    row = {
        "seed": seed,
        "noise": "1.5 mm atm + 1 mm/MP" if noise else "none",
        "north": north,
        "cells": int(both[-1].sum()),
        "epochs": cube.sizes["time"],
        "rms_up": rmse(tu, 0),
        "rms_east": rmse(te, 0),
        "err_up": rmse(up, tu),
        "err_east": rmse(east, te),
        "swapped": rmse(up, te),
        "flipped": rmse(-up, tu),
        "naive": rmse(np.where(both, naive, np.nan), tu),
        "seconds": seconds,
    }
    return row, cube, ref


def plot(cube, ref, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(9, 5.6), constrained_layout=True)
    for r, (name, label) in enumerate((("vertical", "vertical (up +)"), ("east_west", "east-west (east +)"))):
        got = cube[name].values[-1]
        want = np.where(np.isfinite(got), ref[name].values[-1], np.nan)
        lim = np.nanpercentile(np.abs(want), 99)
        for c, (img, title, vmax) in enumerate(
            ((want, "truth", lim), (got, "decomposed", lim), (got - want, "difference", lim / 5))
        ):
            im = axes[r, c].imshow(img, cmap="RdBu", vmin=-vmax, vmax=vmax)
            axes[r, c].set_title(f"{label}: {title}", fontsize=9)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            fig.colorbar(im, ax=axes[r, c], shrink=0.8, label="mm")
    fig.suptitle(f"grid --decompose, last epoch {str(cube.time.values[-1])[:10]}", fontsize=10)
    fig.savefig(path, dpi=70)


def scale(n, epochs=250, km=30.0):
    """Time and peak memory of decompose_los on 2 x ``n`` random MPs over ``km`` x ``km``."""
    import resource

    from insar_raster.io.points import make_points

    rng = np.random.default_rng(0)
    pts = []
    for direction, los_east, offset in (("ascending", -0.6, 0), ("descending", 0.62, 5)):
        x = 3_180_000 + rng.uniform(0, km * 1000, n)
        y = 3_440_000 + rng.uniform(0, km * 1000, n)
        times = np.datetime64("2019-01-03") + (offset + 12 * np.arange(epochs)).astype("timedelta64[D]")
        pts.append(
            make_points(
                x,
                y,
                rng.normal(0, 1, (n, epochs)).astype(np.float32),
                times,
                "EPSG:3035",
                extra={"los_east": np.full(n, los_east, np.float32), "los_up": np.full(n, 0.78, np.float32)},
                attrs={"pass_direction": direction, "source": direction},
            )
        )
    t0 = time.perf_counter()
    cube = decompose_los(pts)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"2 x {n} MPs x {epochs} epochs -> {dict(cube.sizes)}: {time.perf_counter() - t0:.1f} s, "
        f"peak RSS {peak:.0f} MiB"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20000, help="MPs per geometry")
    ap.add_argument("--shape", default="128x128")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--plot", help="write a PNG of the noisy seed-0 run")
    ap.add_argument("--scale", type=int, metavar="N", help="only time 2 x N random MPs x 250 epochs")
    args = ap.parse_args()
    if args.scale:
        return scale(args.scale)
    shape = tuple(int(v) for v in args.shape.split("x"))
    print(
        "| seed | noise | N-S motion | cells with both | epochs | truth RMS up / east (mm) | RMSE up (mm) "
        "| RMSE east (mm) | up vs true east (swapped) | sign-flipped LOS | ascending LOS / los_up as up | s |"
    )
    print("|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for seed, noise, north in ((0, 0, 0.0), (0, 1, 0.0), (1, 1, 0.0), (0, 1, 0.5)):
        row, cube, ref = run(args.points, shape, args.epochs, seed, noise, north)
        print(
            f"| {row['seed']} | {row['noise']} | {row['north']:g} x | {row['cells']} | {row['epochs']} "
            f"| {row['rms_up']:.2f} / {row['rms_east']:.2f} | {row['err_up']:.2f} | {row['err_east']:.2f} "
            f"| {row['swapped']:.2f} | {row['flipped']:.2f} | {row['naive']:.2f} | {row['seconds']:.1f} |"
        )
        if args.plot and seed == 0 and noise and not north:
            plot(cube, ref, args.plot)


if __name__ == "__main__":
    main()
