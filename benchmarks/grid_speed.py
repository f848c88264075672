"""Gridding speed: 200k MPs x 100 epochs -> 100 m grid, CSV -> NetCDF, whole process.

Compared, each in its own fresh Python process (imports included, as a user pays them):

1. bare read: ``pyarrow.csv.read_csv`` of the same file (the floor for any CSV tool);
2. ``insar-raster grid`` (CLI, default options: tiles chosen automatically), CSV -> NetCDF;
3. ``insar-raster grid --tile-size 0`` (one global triangulation), CSV -> NetCDF;
4. the paper's way: pyarrow read, then ``scipy.interpolate.griddata(..., "linear")``
   epoch by epoch (``--griddata-epochs`` of them; the time is scaled to all epochs when
   fewer are run, and the print says so). Writing its output is not counted.

Prints times, peak RSS and the ratios the issues ask for (>= 100x / >= 300x faster than
per-epoch griddata; within 3x / 1.5x of the bare read). One run, no repetition: numbers
on a shared machine move by 10-20 %.

Usage: python benchmarks/grid_speed.py [--points 200000] [--epochs 100] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402
from _synthetic import write_synthetic_csv  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=200_000)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--resolution", type=float, default=100.0)
    p.add_argument("--griddata-epochs", type=int, default=None,
                   help="epochs to run griddata on (default all; fewer are scaled to all)")
    p.add_argument("--workdir", help="folder for the CSV and outputs (default: a temporary folder, removed)")
    args = p.parse_args(argv)

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="grid_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        csv = work / f"mps_{args.points}x{args.epochs}.csv"
        if not csv.exists():
            write_synthetic_csv(csv, args.points, args.epochs)
        size_mib = csv.stat().st_size / 2**20
        print(f"{args.points} MPs x {args.epochs} epochs, CSV {size_mib:.0f} MiB, {os.cpu_count()} CPU cores, "
              f"load average {os.getloadavg()[0]:.1f}")
        # One BLAS thread everywhere: SciPy's Delaunay computes a 2x2 LAPACK solve per
        # triangle, and a threaded OpenBLAS on a busy machine turns that into minutes per
        # griddata call; the baseline gets its best setting, and so do we.
        env = {**os.environ, "INSAR_RASTER_CACHE": str(work / "cache"), "OPENBLAS_NUM_THREADS": "1"}

        bare = measure(f"""
import pyarrow.csv as pacsv
table = pacsv.read_csv({str(csv)!r})
assert table.num_rows == {args.points}
""", "bare pyarrow.csv.read_csv", env)

        runs = {}
        for label, extra in (("insar-raster grid (default)", []), ("insar-raster grid --tile-size 0", ["--tile-size", "0"])):
            out = work / f"cube{len(runs)}.nc"
            runs[label] = measure(f"""
from insar_raster.cli import main
sys.exit(main(["grid", {str(csv)!r}, "-o", {str(out)!r}, "--overwrite", "--resolution", "{args.resolution}", "-q", *{extra!r}]))
""", label, env)
            import xarray as xr

            with xr.open_dataset(out) as ds:
                shape = dict(ds.sizes)
        n_g = args.griddata_epochs or args.epochs
        gd = measure(f"""
import numpy as np, pyarrow.csv as pacsv
from scipy.interpolate import griddata
t = pacsv.read_csv({str(csv)!r})
x = t.column("easting").to_numpy(); y = t.column("northing").to_numpy()
names = [c for c in t.column_names if c.isdigit()]
res = {args.resolution}
gx = np.arange(np.floor(x.min() / res) * res + res / 2, x.max() + res, res)
gy = np.arange(np.ceil(y.max() / res) * res - res / 2, y.min() - res, -res)
xx, yy = np.meshgrid(gx, gy)
cube = np.empty(({n_g}, len(gy), len(gx)), np.float32)
for k, name in enumerate(names[:{n_g}]):
    cube[k] = griddata((x, y), t.column(name).to_numpy(), (xx, yy), method="linear")
""", f"per-epoch griddata ({n_g} epochs)", env)
        gd_all = gd["wall_s"] if n_g >= args.epochs else gd["wall_s"] * args.epochs / n_g

        ours = runs["insar-raster grid (default)"]
        glob = runs["insar-raster grid --tile-size 0"]
        print(f"\ngrid: {shape.get('y')} x {shape.get('x')} cells, {shape.get('time')} epochs")
        if n_g < args.epochs:
            print(f"griddata scaled from {n_g} to {args.epochs} epochs: {gd_all:.1f} s")
        print("ratios (process wall time; imports included on both sides):")
        print(f"  per-epoch griddata / grid (default)      = {gd_all / ours['wall_s']:7.1f}x   (targets: >= 100x, >= 300x)")
        print(f"  per-epoch griddata / grid --tile-size 0  = {gd_all / glob['wall_s']:7.1f}x")
        print(f"  grid (default) / bare CSV read           = {ours['wall_s'] / bare['wall_s']:7.2f}x   (targets: <= 3x, <= 1.5x)")
        print(f"  grid --tile-size 0 / bare CSV read       = {glob['wall_s'] / bare['wall_s']:7.2f}x")
        gd_cpu = gd["cpu_s"] if n_g >= args.epochs else gd["cpu_s"] * args.epochs / n_g
        print("ratios of CPU time (user + system, all threads; steadier on a shared machine):")
        print(f"  per-epoch griddata / grid (default)      = {gd_cpu / ours['cpu_s']:7.1f}x")
        print(f"  grid (default) / bare CSV read           = {ours['cpu_s'] / bare['cpu_s']:7.2f}x")
        print(f"  same, in-process (after interpreter start): grid {ours['inner_s']:.2f} s vs read {bare['inner_s']:.2f} s"
              f" = {ours['inner_s'] / bare['inner_s']:.2f}x")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        print("peak RSS: " + ", ".join(f"{r['label']} {r['peak_rss_mib']:.0f} MiB" for r in (bare, ours, glob, gd)))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
