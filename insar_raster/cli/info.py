"""`insar-raster info FILE...`: CRS, extent, size, epochs, NaN share, model setup."""

from __future__ import annotations

import json

#: One-line summary, shown by ``insar-raster --help`` without building this command's parser.
HELP = "describe a points file, cube, GeoTIFF or model file"


def add_parser(subparsers, parents):
    from insar_raster.cli._checks import add_points_reading_options

    p = subparsers.add_parser(
        "info",
        parents=parents,
        help=HELP,
        description=(
            "Describe points files (EGMS CSV/zip, GeoPackage, GeoParquet), cubes (.nc, .zarr), "
            "GeoTIFFs and model files: CRS, extent, number of points or grid size, epochs and "
            "date range, sampling interval, NaN share, model architecture. Reads nothing it "
            "does not need; model files are never executed. With -q nothing is printed: the exit "
            "status alone says whether every file could be read."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="file(s) to describe")
    p.add_argument("--json", action="store_true", help="print JSON (one object, or a list for several files)")
    add_points_reading_options(p, "points files")
    p.set_defaults(func=_run)


def _run(args):
    from insar_raster.info import describe_inputs, format_description

    # A folder of several geometries (ascending + descending bursts) is described per geometry.
    infos = [
        info
        for path in args.files
        for info in describe_inputs(path, input_crs=args.input_crs, allow_dates=args.allow_dates)
    ]
    if args.quiet:  # -q: nothing on success; the exit status says every file could be read
        return 0
    if args.json:
        print(json.dumps(infos[0] if len(infos) == 1 else infos, indent=2, default=str))
    else:
        print("\n\n".join(format_description(info) for info in infos))
    return 0
