"""``insar-raster grid``: measurement points -> georeferenced displacement cube."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from insar_raster.cli._checks import INPUT_CRS_HELP, add_budget_options, add_input_checks, check_cube_budget
from insar_raster.cli._common import (
    bounds_in_grid_crs,
    dask_scheduler,
    log_points_read,
    parse_bounds,
    parse_shape,
    read_points_options,
)

log = logging.getLogger("insar_raster")


#: One-line summary, shown by ``insar-raster --help`` without building this command's parser.
HELP = "grid measurement points into a (time, y, x) displacement cube"


def add_parser(subparsers, parents):
    p = subparsers.add_parser(
        "grid",
        parents=parents,
        help=HELP,
        description=(
            "Read EGMS CSV tiles (L2a/L2b/L3, a folder or a .zip) or GeoPackage/GeoParquet/Shapefile "
            "points and interpolate them onto a north-up grid. Interpolation weights are computed once "
            "and applied to all epochs in time chunks, so memory stays bounded. Cells farther than "
            "--max-gap from any point are left empty (NaN) instead of being bridged."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="POINTS", help="points files, folders or .zip archives (merged)")
    p.add_argument(
        "-o",
        "--output",
        help="output cube: .nc (default <first-input>_cube.nc, with --decompose "
        "<first-input>_decomposed.nc), .zarr or .tif",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--method",
        default="linear",
        choices=("linear", "nearest", "idw", "mean"),
        help="linear: Delaunay barycentric (the paper); nearest: the nearest MP's value; idw: inverse-distance "
        "weighting (power 2) of the 8 nearest MPs; mean: block mean + linear fill (like EGMS L3). Default: linear",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resolution", type=float, default=100.0, help="cell size in metres (default 100, as EGMS L3)")
    g.add_argument(
        "--shape",
        type=parse_shape,
        help="grid size HxW in cells instead of --resolution (the paper used 256x256; default: set by --resolution)",
    )
    p.add_argument(
        "--bounds",
        type=parse_bounds,
        help="west,south,east,north in the output CRS (m), or in degrees (e.g. -7.2,53.0,-7.1,53.1: "
        "read as EPSG:4326 longitudes/latitudes); MPs outside are ignored (default: the points' extent)",
    )
    p.add_argument(
        "--bounds-crs",
        metavar="CRS",
        help="CRS of --bounds (default: the output CRS, or EPSG:4326 when the numbers are degrees)",
    )
    p.add_argument(
        "--max-gap", type=float, help="cells farther than this (m) from any MP are NaN (default 3 x resolution)"
    )
    p.add_argument(
        "--crs",
        help="output projected CRS (default EPSG:3035 for EGMS, else the input's if projected, else the "
        "UTM zone of the points' centre)",
    )
    p.add_argument("--input-crs", help=INPUT_CRS_HELP)
    p.add_argument("--start", help="first epoch to keep (YYYY-MM-DD; default: the first)")
    p.add_argument("--end", help="last epoch to keep (YYYY-MM-DD; default: the last)")
    p.add_argument("--time-chunk", type=int, default=32, help="epochs per chunk; bounds peak memory (default 32)")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask.distributed scheduler, e.g. tcp://host:8786 (default: local threads, all cores); "
        "workers must see the input, cache and output paths",
    )
    p.add_argument(
        "--tile-size",
        type=int,
        metavar="CELLS",
        help="grid tile edge in cells; 0 = one global triangulation (default: 256-cell tiles "
        "when the grid exceeds 1024x1024 cells or 500k points, else global)",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="stream CSV inputs into a reusable Parquet+Zarr cache here (default: "
        "$INSAR_RASTER_CACHE or ~/.cache/insar-raster, used automatically above 256 MB of CSV)",
    )
    p.add_argument("--no-cache", action="store_true", help="read CSV inputs into memory, never through the cache")
    p.add_argument(
        "--no-style",
        action="store_true",
        help="do not write the QGIS .qml style beside the output (.tif: raster style; .nc: mesh style "
        "with displacement active and the time steps)",
    )
    p.add_argument(
        "--decompose",
        action="store_true",
        help="ascending and descending EGMS L2a/L2b inputs -> one cube with 'vertical' and "
        "'east_west' (mm) by the EGMS L3 Ortho recipe: MPs averaged per geometry in cells "
        "(edges on multiples of --resolution), 6-day resampling (no extrapolation, no gap "
        "> 90 days bridged), cells with both pass directions, 2x2 solve per cell and epoch "
        "with north-south motion assumed zero",
    )
    p.add_argument(
        "--time-origin",
        metavar="YYYY-MM-DD|first",
        help="with --decompose: a date of the output's 6-day time grid; 'first' starts it at the "
        "earliest acquisition (default: 2014-04-03, the origin of the EGMS L3 products' dates, so "
        "the cube and official L3 Up/East points share their dates)",
    )
    add_input_checks(p)
    add_budget_options(p)
    p.set_defaults(func=run)


def default_output(first_input, decompose: bool = False) -> Path:
    """``<first input>_cube.nc``; ``_decomposed.nc`` for a cube of all the inputs' geometries."""
    first = Path(first_input)
    return first.with_name(f"{first.stem}_{'decomposed' if decompose else 'cube'}.nc")


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def run(args) -> int:
    from insar_raster.errors import InputError
    from insar_raster.gis.write import write_cube
    from insar_raster.grid.gridding import grid_points
    from insar_raster.io.atomic import check_output_path
    from insar_raster.io.formats import check_output_format
    from insar_raster.io.points import read_points

    t0 = time.perf_counter()
    if args.resolution is not None and not args.resolution > 0:
        raise InputError("--resolution", f"must be a positive number of metres, got {args.resolution:g}")
    if args.time_chunk < 1:
        raise InputError("--time-chunk", f"must be at least 1, got {args.time_chunk}")
    if args.tile_size is not None and args.tile_size < 0:
        raise InputError("--tile-size", f"must be 0 (no tiling) or a number of cells, got {args.tile_size}")
    output = Path(args.output) if args.output else default_output(args.inputs[0], args.decompose)
    if args.time_origin is not None and not args.decompose:
        raise InputError("--time-origin", "applies only with --decompose (other cubes keep the acquisition dates)")
    check_output_format(output, "cube")  # fail before the long work
    check_output_path(output, args.overwrite)
    if args.decompose:
        from insar_raster.cli._decompose import run_decompose

        return run_decompose(args, output, t0)
    check_geometries(args.inputs)  # from names, headers and first rows: before reading everything
    with dask_scheduler(args.scheduler, quiet=args.quiet), mixed_geometry_context():
        points = read_points(args.inputs, max_output_size=args.max_output_size, **read_points_options(args))
        log_points_read(points)
        bounds = bounds_in_grid_crs(args, points.rio.crs)
        if bounds is None and args.bounds_crs:
            raise InputError("--bounds-crs", "only applies with --bounds")
        spec = check_cube_budget(args, points, output, bounds)
        cube = grid_points(
            points,
            grid_spec=spec,
            method=args.method,
            resolution=None if args.shape else args.resolution,
            shape=args.shape,
            bounds=bounds,
            max_gap=args.max_gap,
            time_chunk=args.time_chunk,
            tile_size=args.tile_size,
        )
        kwargs = {"style": not args.no_style}
        write_cube(cube, output, overwrite=args.overwrite, **kwargs)
    log.info("wrote %s (%d x %d cells, %d epochs)", output, cube.sizes["y"], cube.sizes["x"], cube.sizes["time"])
    dropped = int(points.attrs.get("epochs_dropped", 0) or 0)
    log.info(
        "grid: %d MPs, %d epochs%s, %d tile(s), %.1f s wall, peak memory %.0f MiB",
        points.sizes["point"],
        points.sizes["time"],
        f" ({dropped} dropped: not in every input)" if dropped else "",
        int(cube.attrs.get("tiles", 1)),
        time.perf_counter() - t0,
        peak_memory_mib(),
    )
    return 0


#: What to do about inputs of different geometries (the library's error names no flag).
MIXED_GEOMETRY_HINT = (
    "grid each geometry in a separate run, or pass --decompose to solve ascending and "
    "descending LOS for vertical and east-west"
)


def mixed_geometry_hint(groups) -> str:
    """The hint for these geometry groups: --decompose only where it applies (LOS of both
    pass directions); L3 Up with East, or LOS with L3, are gridded separately."""
    directions = {g.pass_direction for g in groups if g.component == "LOS"}
    if {"ascending", "descending"} <= directions:
        return MIXED_GEOMETRY_HINT
    return "grid each geometry in a separate run"


def check_geometries(inputs) -> None:
    """Refuse inputs of different geometries (exit 2) before reading them whole."""
    from insar_raster.io import egms
    from insar_raster.io.points import CSV_SUFFIXES, expand_inputs

    named = [g for f in expand_inputs(inputs) if f.suffix.lower() in CSV_SUFFIXES | {".zip"} for g in egms.probe(f)]
    with mixed_geometry_context():
        egms.check_single_geometry(named)


@contextlib.contextmanager
def mixed_geometry_context():
    """Give a mixed-geometry error found while reading (e.g. vector files) the CLI's hint."""
    from insar_raster.io.egms import MixedGeometryError

    try:
        yield
    except MixedGeometryError as exc:
        raise MixedGeometryError(exc.groups, hint=mixed_geometry_hint(exc.groups)) from None
