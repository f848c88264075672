"""Options and checks shared by the commands that read points or write outputs:
bad rows (``--keep-outliers``, ``--allow-dates``) and size before work
(``--max-output-size``, ``--force``); see :mod:`insar_raster.io.sanitize` and
:mod:`insar_raster.io.budget` (:mod:`insar_raster.grid.budget` for the cube)."""

from __future__ import annotations

import logging

log = logging.getLogger("insar_raster")


def add_input_checks(parser) -> None:
    """``--keep-outliers`` and ``--allow-dates`` for commands that read points."""
    g = parser.add_argument_group("bad rows")
    g.add_argument(
        "--keep-outliers",
        action="store_true",
        help="keep MPs at (0, 0) or far outside the bulk of the points (default: dropped with a "
        "warning, so a few bad rows never set the grid's extent)",
    )
    g.add_argument(
        "--allow-dates",
        action="store_true",
        help="accept epochs before Sentinel-1 (2014-04) or after today, for non-Sentinel data",
    )


#: ``--input-crs`` as ``grid`` and every command that reads points explain it.
INPUT_CRS_HELP = (
    "CRS of the points' coordinates when the file does not declare one (default: EPSG:3035 for "
    "easting/northing columns, EPSG:4326 for latitude/longitude; x/y columns and other "
    "files without a CRS are refused without it)"
)


def add_points_reading_options(parser, title: str = "with --points") -> None:
    """``--input-crs`` and ``--allow-dates`` for reading points files: ``--points`` of
    ``forecast``/``evaluate`` (points that needed them to be gridded need them to be read
    again) and ``info``'s points files, in an argument group named ``title``."""
    g = parser.add_argument_group(title)
    g.add_argument("--input-crs", help=INPUT_CRS_HELP)
    g.add_argument(
        "--allow-dates",
        action="store_true",
        help="accept epochs before Sentinel-1 (2014-04) or after today, for non-Sentinel data",
    )


def points_reading_options(args) -> dict:
    """:func:`add_points_reading_options`'s values as ``read_points`` parameters; either
    given without ``--points`` is refused."""
    if not args.points and (args.input_crs or args.allow_dates):
        from insar_raster.errors import InputError

        raise InputError("--input-crs" if args.input_crs else "--allow-dates", "only applies with --points")
    return {"input_crs": args.input_crs, "allow_dates": args.allow_dates}


def add_budget_options(parser, force: bool = True) -> None:
    """``--max-output-size`` (and ``--force`` where a grid is made) for commands that write."""
    from insar_raster.io.budget import DEFAULT_MAX_OUTPUT_SIZE, MAX_CELLS_PER_MP, format_size, parse_size

    g = parser.add_argument_group("size before work")
    g.add_argument(
        "--max-output-size",
        type=parse_size,
        default=DEFAULT_MAX_OUTPUT_SIZE,
        metavar="SIZE",
        help=f"refuse outputs estimated above this size, e.g. 500MB, 2TB "
        f"(default {format_size(DEFAULT_MAX_OUTPUT_SIZE)}); the free space of the target folder "
        "is always checked",
    )
    if force:
        g.add_argument(
            "--force",
            action="store_true",
            help=f"compute a grid with more than {MAX_CELLS_PER_MP:,} cells per MP (refused by default: "
            "mostly empty cells, hours of work)",
        )


def check_raster_budget(args, what: str, cells: int, epochs: int, output, peak_memory: int | None = None) -> None:
    """Refuse a raster output (forecast, exported layer, truth cube) that would not fit."""
    from insar_raster.io.budget import check_budget, estimate_raster

    est = estimate_raster(what, cells, epochs, peak_memory)
    log.debug("%s", est.describe())
    check_budget(est, output, max_output_size=args.max_output_size, force=True)


def check_cube_budget(args, points, output, bounds=None):
    """The grid spec of ``grid``, after checking the cube it makes fits (else InputError).
    ``bounds`` in the points' CRS (the command's ``--bounds`` converted)."""
    from insar_raster.grid.budget import estimate_cube
    from insar_raster.grid.spec import GridSpec
    from insar_raster.io.budget import check_budget

    spec = GridSpec.from_points(
        points.x.values,
        points.y.values,
        points.rio.crs,
        resolution=None if args.shape else args.resolution,
        shape=args.shape,
        bounds=bounds,
    )
    n_points = points.sizes["point"]
    if bounds is not None:
        w, s, e, n = bounds
        x, y = points.x.values, points.y.values
        n_points = int(((x >= w) & (x <= e) & (y >= s) & (y <= n)).sum()) or n_points
    est = estimate_cube(
        spec,
        points.sizes["time"],
        n_points,
        output,
        max_gap=args.max_gap,
        time_chunk=args.time_chunk,
        points_in_memory="cache" not in points.attrs,
    )
    log.info("%s", est.describe())
    check_budget(est, output, max_output_size=args.max_output_size, force=args.force)
    return spec


def check_synth_budget(args, output, shape) -> None:
    """Refuse a synthetic sample (points file and truth cube) that would not fit."""
    from insar_raster.io.budget import Estimate, check_budget, estimate_points

    pts = estimate_points(args.points, args.epochs, output)
    cells = shape[0] * shape[1]
    cube = 0 if args.no_truth else cells * (args.epochs * 4 + 8)
    # make_scene holds the truth field and the points' series a few times over.
    peak = 4 * (cells + args.points) * args.epochs * 4 + 200 * 2**20
    est = Estimate(
        "synthetic points and truth cube",
        pts.raw_bytes + cube,
        pts.raw_bytes + cube,
        peak,
        cells,
        args.epochs,
        args.points,
    )
    log.debug("%s", est.describe())
    check_budget(est, output, max_output_size=args.max_output_size, force=True)
