"""``insar-raster synth``: write a synthetic EGMS-like sample and its truth cube."""

from __future__ import annotations

import logging
from pathlib import Path

from insar_raster.cli._checks import add_budget_options, check_synth_budget

log = logging.getLogger("insar_raster")


#: One-line summary, shown by ``insar-raster --help`` without building this command's parser.
HELP = "generate a synthetic EGMS-style points file and its noise-free truth cube"


def add_parser(subparsers, parents):
    p = subparsers.add_parser(
        "synth",
        parents=parents,
        help=HELP,
        description=(
            "Write measurement points with clustered density (towns dense, fields sparse, water empty), "
            "subsidence bowls, seasonal motion, correlated atmospheric and white noise, in EGMS CSV "
            "layout (.csv) or as GeoPackage/GeoParquet, plus <stem>_truth.nc. Seeded and deterministic."
        ),
    )
    p.add_argument(
        "-o",
        "--output",
        help="points file: .csv (EGMS layout, default sample.csv), .gpkg or .parquet; "
        "with --los a folder (default sample_los)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--layout",
        choices=("L2a", "L2b", "L3UD", "L3EW"),
        help="EGMS CSV layout (default L2b); .csv output only",
    )
    p.add_argument("--points", type=int, default=20000, help="number of measurement points (default 20000)")
    p.add_argument("--shape", default="128x128", help="scene size in 100 m cells, HxW (default 128x128)")
    p.add_argument("--epochs", type=int, default=100, help="number of acquisitions (default 100)")
    p.add_argument("--interval", type=int, default=12, choices=(6, 12), help="revisit in days (default 12)")
    from insar_raster.synth import SCENES

    p.add_argument(
        "--scene",
        default="mixed",
        choices=SCENES,
        help="dominant signal: mixed, bowl, seasonal (curves per pixel); fronts (advancing mining/"
        "dewatering fronts), switching (pumping rate change points), urban (consolidation, collapses, "
        "dry/wet years), realistic (all, with AR(1) atmosphere) (default mixed)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_budget_options(p, force=False)
    p.add_argument("--no-truth", action="store_true", help="do not write the truth cube")
    p.add_argument(
        "--no-mp-behaviour",
        action="store_true",
        help="points sample the common motion field plus 1 mm white noise only; by default each MP has "
        "its own offset (3 mm std), seasonal amplitude (0.3-1.7x the local one) and noise (2-4 mm), "
        "as real point clouds do; the truth cube is the common motion either way",
    )
    p.add_argument(
        "--los",
        action="store_true",
        help="write an ascending and a descending EGMS L2b burst (.zip as EGMS names them) of one "
        "known 3-D motion field (vertical: --scene; east-west: a second, mixed scene) with "
        "Sentinel-1 LOS vectors, and truth.nc (vertical, east_west, north_south on 6-day "
        "dates), into the folder -o; --points MPs per geometry. For 'grid --decompose'",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from insar_raster.cli._common import parse_shape
    from insar_raster.errors import InputError
    from insar_raster.gis.write import write_cube
    from insar_raster.io.atomic import check_output_path
    from insar_raster.io.formats import check_output_format
    from insar_raster.io.points import write_points
    from insar_raster.synth import make_scene, record_start

    if args.points < 3 or args.epochs < 2:
        raise InputError("--points/--epochs", "need at least 3 points and 2 epochs")
    output = Path(args.output or ("sample_los" if args.los else "sample.csv"))
    if args.layout and (args.los or output.suffix.lower() != ".csv"):
        # A GeoPackage/GeoParquet (or --los's L2b bursts) has one layout: the option would be ignored.
        raise InputError("--layout", "only applies to a .csv output", "drop it, or write a .csv")
    if args.los:
        return run_los(args)
    layout = args.layout or "L2b"
    truth_path = output.with_name(f"{output.stem}_truth.nc")
    check_output_format(output, "points")
    check_output_path(output, args.overwrite)
    if not args.no_truth:
        check_output_path(truth_path, args.overwrite)
    check_synth_budget(args, output, parse_shape(args.shape))
    points, truth = make_scene(
        args.points,
        parse_shape(args.shape),
        args.epochs,
        args.interval,
        args.scene,
        args.seed,
        start=record_start(args.epochs, args.interval),
        **({"mp_behaviour": None} if args.no_mp_behaviour else {}),
    )
    _say_late_dates(points["time"].values)
    write_points(points, output, layout=layout, overwrite=args.overwrite)
    log.info(
        "wrote %s: %d points x %d epochs (%s layout, scene %s, seed %d)",
        output,
        points.sizes["point"],
        points.sizes["time"],
        layout if output.suffix.lower() == ".csv" else output.suffix,
        args.scene,
        args.seed,
    )
    if not args.no_truth:
        write_cube(truth, truth_path, overwrite=args.overwrite)
        log.info("wrote %s (noise-free truth)", truth_path)
    return 0


def run_los(args) -> int:
    from insar_raster.cli._common import parse_shape
    from insar_raster.synth import record_start
    from insar_raster.synth_los import make_los_scene, write_los_scene

    folder = Path(args.output or "sample_los")
    if folder.exists() and not folder.is_dir():
        from insar_raster.errors import InputError

        raise InputError(folder, "is a file: --los writes a folder of bursts", "name a folder with -o")
    asc, desc, truth = make_los_scene(
        args.points,
        parse_shape(args.shape),
        args.epochs,
        args.interval,
        seed=args.seed,
        scene=args.scene,
        start=record_start(args.epochs, args.interval, extra_days=LOS_EXTRA_DAYS),
    )
    _say_late_dates(desc["time"].values)
    written = write_los_scene(folder, asc, desc, None if args.no_truth else truth, overwrite=args.overwrite)
    for path, pts in zip(written, (asc, desc)):
        log.info(
            "wrote %s: %d points x %d epochs (%s, track %d, LOS east %.2f, up %.2f)",
            path,
            pts.sizes["point"],
            pts.sizes["time"],
            pts.attrs["pass_direction"],
            pts.attrs["track"],
            float(pts.los_east.mean()),
            float(pts.los_up.mean()),
        )
    if not args.no_truth:
        log.info("wrote %s (noise-free vertical, east_west, north_south)", written[-1])
    return 0


#: The descending burst of ``--los`` starts a few days after the ascending one.
LOS_EXTRA_DAYS = 6


def _say_late_dates(times) -> None:
    """A record too long to end by today even from 2014 (e.g. 600 epochs every 12 days)."""
    import numpy as np

    from insar_raster.io.sanitize import today

    last = np.asarray(times, "datetime64[D]").max()
    if last > today():
        log.warning(
            "the last epoch (%s) is after today: grid, forecast and evaluate need --allow-dates for these points",
            last,
        )
