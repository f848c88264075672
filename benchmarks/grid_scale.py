"""Gridding at scale: 1M, 2M, 5M synthetic MPs x 300 epochs -> 100 m grid (Zarr or NetCDF cube).

For each size, in fresh processes (imports included):

- ``cold``: ``insar-raster grid tile.csv -o cube.zarr`` (or ``cube.nc``) with an empty cache: streams the
  CSV into the Parquet+Zarr cache, then grids tile by tile;
- ``warm``: the same command again: reuses the cache (what a user re-running with other
  gridding options pays).

MPs cover a square at ``--density`` MPs per km2 (default 250, a built-up EGMS L2b tile), so
the grid grows with the MPs (town -> region). Prints wall time, peak RSS, time per
million MPs and how both grow between sizes (goal: time linear in MPs, peak memory flat
past the chunk size; 5M MPs within 24 GB and 5 minutes on 2 cores). The CSV, cache and
cube of each size are deleted before the next (5M x 300 is ~9 GB of CSV); check
``df -h`` first. One run per size.

``--format nc`` writes the NetCDF cube that ``insar-raster grid`` writes by default
(zlib: HDF5 compresses chunk by chunk on one thread) instead of Zarr (compressed on all
cores).

Usage: python benchmarks/grid_scale.py [--sizes 1000000 2000000 5000000] [--workdir DIR] [--format nc]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import measure  # noqa: E402
from _synthetic import write_synthetic_csv  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 5_000_000])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--density", type=float, default=250.0, help="MPs per km2 (default 250)")
    p.add_argument("--workdir", help="folder for CSVs, caches and cubes (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep each size's files")
    p.add_argument("--no-warm", action="store_true", help="skip the second (cache reuse) run")
    p.add_argument(
        "--format",
        choices=("zarr", "nc"),
        default="zarr",
        help="cube format: zarr (default) or nc, what 'insar-raster grid' writes without -o",
    )
    args = p.parse_args(argv)

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="grid_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free / 2**30
    print(f"{os.cpu_count()} CPU cores, {free:.0f} GiB free in {work}, load average {os.getloadavg()[0]:.1f}")
    rows = []
    try:
        for n in args.sizes:
            folder = work / f"n{n}"
            folder.mkdir(exist_ok=True)
            csv = folder / "tile.csv"
            t0 = time.perf_counter()
            if not csv.exists():
                write_synthetic_csv(csv, n, args.epochs, density_per_km2=args.density, batch=50_000)
            gen = time.perf_counter() - t0
            gib = csv.stat().st_size / 2**30
            env = {**os.environ, "INSAR_RASTER_CACHE": str(folder / "cache")}
            cube = folder / f"cube.{args.format}"
            cmd = f"""
from insar_raster.cli import main
sys.exit(main(["grid", {str(csv)!r}, "-o", {str(cube)!r}, "--overwrite", "-q"]))
"""
            cold = measure(cmd, f"{n / 1e6:g}M cold (CSV -> cache -> cube)", env)
            warm = None if args.no_warm else measure(cmd, f"{n / 1e6:g}M warm (cache reused)", env)
            import xarray as xr

            with xr.open_zarr(cube) if args.format == "zarr" else xr.open_dataset(cube) as ds:
                cells = ds.sizes["y"] * ds.sizes["x"]
                tiles = ds.attrs.get("tiles")
            rows.append(dict(n=n, gib=gib, gen=gen, cold=cold, warm=warm, cells=cells, tiles=tiles))
            print(
                f"    CSV {gib:.2f} GiB (generated in {gen:.0f} s), grid {cells / 1e6:.2f} M cells, {tiles} tiles, "
                f"load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"\n{'MPs':>9} {'CSV GiB':>8} {'cells':>8} {'tiles':>6} {'cold s':>8} {'CPU s':>8} {'s/M MPs':>8} {'peak MiB':>9}"
        f" {'warm s':>8} {'CPU s':>8} {'peak MiB':>9}"
    )
    for r in rows:
        w = r["warm"]
        print(
            f"{r['n']:>9} {r['gib']:>8.2f} {r['cells']:>8} {r['tiles']:>6} {r['cold']['wall_s']:>8.1f}"
            f" {r['cold'].get('cpu_s', float('nan')):>8.1f}"
            f" {r['cold']['wall_s'] / (r['n'] / 1e6):>8.1f} {r['cold']['peak_rss_mib']:>9.0f}"
            f" {w['wall_s'] if w else float('nan'):>8.1f} {w.get('cpu_s', float('nan')) if w else float('nan'):>8.1f}"
            f" {w['peak_rss_mib'] if w else float('nan'):>9.0f}"
        )
    for a, b in zip(rows, rows[1:]):
        print(
            f"{a['n'] / 1e6:g}M -> {b['n'] / 1e6:g}M: MPs x{b['n'] / a['n']:.2f}, cold time "
            f"x{b['cold']['wall_s'] / a['cold']['wall_s']:.2f} (CPU x{b['cold']['cpu_s'] / a['cold']['cpu_s']:.2f}), peak memory x{b['cold']['peak_rss_mib'] / a['cold']['peak_rss_mib']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
