"""`insar-raster export CUBE`: GeoTIFF/COG/Zarr/NetCDF of a cube's epochs or derived layers."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from insar_raster.cli._checks import add_budget_options, check_raster_budget

log = logging.getLogger("insar_raster")


#: One-line summary, shown by ``insar-raster --help`` without building this command's parser.
HELP = "export epochs of a cube, its mean velocity or cumulative displacement as COG/GeoTIFF/Zarr/NetCDF"


def add_parser(subparsers, parents):
    p = subparsers.add_parser(
        "export",
        parents=parents,
        help=HELP,
        description=(
            "Write a cube (or forecast cube) for GIS use: selected epochs as one band per date, or a "
            "derived layer: mean velocity (mm/yr, least-squares line through the selected epochs) or "
            "cumulative displacement (mm, last minus first selected epoch). GeoTIFFs are Cloud "
            "Optimized by default, with band descriptions = dates and a QGIS .qml style beside them."
        ),
        epilog=(
            "Examples: insar-raster export cube.nc --layer velocity -o velocity.tif ; "
            "insar-raster export cube.nc --dates last -o latest.tif ; "
            "insar-raster export cube.nc --dates 2020-01-01:2020-12-31 --format zarr"
        ),
    )
    p.add_argument(
        "cube",
        metavar="CUBE",
        help="cube file (.nc, .zarr or multi-band .tif, bands dated YYYY-MM-DD or YYYYMMDD) from 'grid' or 'forecast'",
    )
    p.add_argument("-o", "--output", help="output file (default <cube>_<layer>.tif/.zarr/.nc by --format)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--format",
        choices=("cog", "geotiff", "zarr", "netcdf"),
        help="cog: tiled + overviews; geotiff: tiled, no overviews; zarr; netcdf (default: from -o's suffix, "
        "cog for .tif and without -o)",
    )
    p.add_argument(
        "--layer",
        default="displacement",
        choices=("displacement", "velocity", "cumulative"),
        help="displacement (mm, one band per epoch; default), velocity (mm/yr) or cumulative (mm)",
    )
    p.add_argument(
        "--dates",
        help="epochs to use: YYYY-MM-DD[,YYYY-MM-DD...], START:END (inclusive), first, last (default: all)",
    )
    p.add_argument(
        "--compress",
        default="deflate",
        choices=("deflate", "zstd", "lzw", "none"),
        help="GeoTIFF compression (default deflate)",
    )
    p.add_argument("--no-style", action="store_true", help="do not write the QGIS .qml style beside a GeoTIFF")
    from insar_raster.cli.options import add_variable_option

    add_budget_options(p, force=False)
    add_variable_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from insar_raster.gis.export import SUFFIX_OF_FORMAT, default_output, export, output_format
    from insar_raster.io.atomic import check_output_path
    from insar_raster.io.cube import open_cube

    t0 = time.perf_counter()
    if args.output:
        output = Path(args.output)
        fmt = output_format(output, args.format)
    else:
        fmt = args.format or "cog"
        output = default_output(args.cube, f"{args.variable}_{args.layer}" if args.variable else args.layer, fmt)
    check_output_path(output, args.overwrite)  # fail before reading anything large
    cube = open_cube(args.cube, chunks={}, variable=args.variable)  # lazy: written chunk by chunk
    epochs = cube.sizes["time"] if args.layer == "displacement" else 1  # at most: --dates may select fewer
    check_raster_budget(args, f"{args.layer} layer", cube.sizes["y"] * cube.sizes["x"], epochs, output)
    command = f"export {Path(args.cube).name} --layer {args.layer}" + (f" --dates {args.dates}" if args.dates else "")
    command += f" --variable {args.variable}" if args.variable else ""
    export(
        cube,
        output,
        fmt=fmt,
        layer=args.layer,
        dates=args.dates,
        overwrite=args.overwrite,
        style=not args.no_style,
        compress=args.compress,
        history=command,
    )
    extra = f" and {output.with_suffix('.qml').name}" if SUFFIX_OF_FORMAT[fmt] == ".tif" and not args.no_style else ""
    log.info("wrote %s%s in %.1f s", output, extra, time.perf_counter() - t0)
    return 0
