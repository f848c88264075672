"""``insar-raster forecast``: the epochs after a cube's last date, as a georeferenced raster."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from insar_raster.cli._checks import (
    add_budget_options,
    add_points_reading_options,
    check_raster_budget,
    points_reading_options,
)

log = logging.getLogger("insar_raster")


#: One-line summary, shown by ``insar-raster --help`` without building this command's parser.
HELP = "forecast the next epochs of a cube as a GeoTIFF or NetCDF"


def add_parser(subparsers, parents):
    from insar_raster.cli.options import add_plot_options, add_training_options, add_variable_option
    from insar_raster.forecast.config import TrainConfig

    p = subparsers.add_parser(
        "forecast",
        parents=parents,
        help=HELP,
        description=(
            "Forecast the --steps epochs after the cube's last date (dates follow the cube's current revisit, "
            "the median of its last 20 gaps: 12 days for EGMS after 2021; the model's own step where the cube's is "
            "1.5x finer, as when a 12-day record ends in Sentinel-1C's 6-day gaps). With --model, use a model from 'insar-raster train'; without, train one on the cube "
            "first (same defaults as 'train'). Output: a float32 Cloud Optimized GeoTIFF, one band per "
            "forecast epoch described by its ISO date, NaN nodata, the cube's CRS and transform (opens "
            "in QGIS), or with -o *.nc a CF NetCDF with a time axis."
        ),
        epilog="Example: insar-raster forecast cube.nc --model cube_model.ipt --steps 3 -o forecast.tif",
    )
    p.add_argument(
        "cube", help="displacement cube (.nc, .zarr, or .tif with one dated band per epoch) from 'insar-raster grid'"
    )
    p.add_argument("--model", help="model file from 'insar-raster train' (default: train one on the cube now)")
    p.add_argument(
        "--steps",
        type=int,
        help=f"epochs to forecast (default {TrainConfig.steps}, or the model's; at most the model's)",
    )
    p.add_argument(
        "-o",
        "--output",
        help="output .tif (default <cube>_forecast.tif) or .nc; with --points a point "
        "layer .gpkg (default <cube>_forecast_points.gpkg), .csv or .parquet",
    )
    p.add_argument(
        "--points",
        nargs="+",
        metavar="POINTS",
        help="measurement points (EGMS CSV/zip, .gpkg, .parquet; e.g. those the cube was gridded from): "
        "write the forecast at each MP instead of the raster: one row per MP with pid, easting, "
        "northing, mean_velocity and one field per forecast date (YYYYMMDD, mm, same reference as "
        "the input), combining each MP's own history with the cube's forecast (weights learned on "
        "the cube's last observed epochs; default: the raster only)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--save-model", metavar="PATH", help="when training here, also save the model to PATH (default: not saved)"
    )
    p.add_argument(
        "--no-style",
        action="store_true",
        help="do not write the QGIS .qml style beside the output (.tif: raster style; .nc: mesh style "
        "with displacement active and the time steps)",
    )
    add_budget_options(p, force=False)
    p.add_argument(
        "--interval",
        type=float,
        metavar="PERCENT",
        help="also write the calibrated PERCENT %% forecast interval (50-99): <stem>_lower.tif and "
        "<stem>_upper.tif beside a .tif output (same bands, dates, CRS and style), or the variables "
        "displacement_lower/displacement_upper in a .nc; split-conformal on the validation epochs, "
        "scaled by each cell's noise level, so PERCENT %% of future observations fall inside "
        "(default: no interval)",
    )
    add_plot_options(p)
    add_points_reading_options(p)
    add_training_options(p)
    add_variable_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from insar_raster.cli._common import load_cube, read_points_for_cube, report_training
    from insar_raster.cli.options import plot_output, training_config
    from insar_raster.errors import InputError
    from insar_raster.forecast.config import TrainConfig
    from insar_raster.forecast.forecaster import check_last_epoch_observed, load_model, train_model
    from insar_raster.gis.quicklook import check_plot_path, plot_forecast
    from insar_raster.gis.write import write_cube
    from insar_raster.io.atomic import check_output_path
    from insar_raster.io.formats import check_output_format

    t0 = time.perf_counter()
    default = "_forecast_points.gpkg" if args.points else "_forecast.tif"
    output = Path(args.output) if args.output else Path(args.cube).with_name(f"{Path(args.cube).stem}{default}")
    check_output_format(output, "point forecast" if args.points else "forecast")
    read_options = points_reading_options(args)
    if args.points:
        from insar_raster.io.points import expand_inputs

        expand_inputs(args.points)  # a missing file fails before the long work
    check_output_path(output, args.overwrite)  # fail before the long work
    plot_path = plot_output(args, output)
    if plot_path is not None:
        check_plot_path(plot_path, args.overwrite)
    elif args.plot_points:
        raise InputError("--plot-points", "only applies with --plot")
    if args.steps is not None and args.steps < 1:
        raise InputError("--steps", f"must be at least 1, got {args.steps}")
    bound_paths = {}
    if args.interval is not None:
        if not 50 <= args.interval <= 99:
            raise InputError("--interval", f"must be between 50 and 99 (percent), got {args.interval:g}")
        if output.suffix.lower() in (".tif", ".tiff"):
            bound_paths = {
                name: output.with_name(f"{output.stem}_{name}{output.suffix}") for name in ("lower", "upper")
            }
    if output.suffix.lower() in (".tif", ".tiff"):
        from insar_raster.gis.raster import check_geotiff_output

        # The forecast and its bounds appear together (the command's output group): each file
        # and its .qml style is checked before any work.
        for path in (output, *bound_paths.values()):
            check_geotiff_output(path, args.overwrite, style=not args.no_style)
    if args.model:
        _refuse_training_options(args)
        forecaster = load_model(args.model)  # before opening the cube: a bad model fails fast
        if args.interval is not None and not forecaster.has_intervals:
            raise InputError(
                args.model,
                "this model file has no interval calibration (trained before intervals "
                "existed, or without validation epochs)",
                "retrain it, or drop --interval",
            )
        if args.save_model:
            raise InputError("--save-model", "only applies when training here (no --model)")
    else:
        if args.save_model:
            check_output_format(args.save_model, "model")
            check_output_path(args.save_model, args.overwrite)
    cube = load_cube(args.cube, args.resample, variable=args.variable)
    if args.model:  # window, grid, empty last epoch and revisit, before reading points
        forecaster.check_input(cube)
    else:
        check_last_epoch_observed(cube)  # before any training
    check_raster_budget(args, "forecast", cube.sizes["y"] * cube.sizes["x"], args.steps or TrainConfig.steps, output)
    # Geometry and dates of --points refused before the training.
    points = read_points_for_cube(args.points, cube, args.resample, **read_options) if args.points else None
    plot_points = _plot_points(args.plot_points, cube, points) if plot_path is not None else None
    if not args.model:
        log.info("no --model given: training a %s model on %s first", args.arch, args.cube)
        forecaster = train_model(cube, training_config(args, args.steps or TrainConfig.steps), progress=not args.quiet)
        report_training(forecaster)
        if args.save_model:
            forecaster.save(args.save_model, overwrite=args.overwrite)
            log.info("wrote %s", args.save_model)
    # checked: above (a model trained here on this cube knows its revisit; forecast() still
    # reads a cube finer than the model's steps at the model's step).
    forecast = forecaster.forecast(
        cube, steps=args.steps, progress=not args.quiet, interval=args.interval, checked=True
    )
    if args.points:
        from insar_raster.forecast.points import forecast_points
        from insar_raster.io.pointsout import write_point_forecast

        at_points = forecast_points(
            forecaster, cube, points, forecast, name=", ".join(args.points), interval=args.interval
        )
        write_point_forecast(at_points, output, overwrite=args.overwrite)
        log.info(
            "wrote %s: %d measurement points (point forecast weights, every step: %s)",
            output,
            at_points.sizes["point"],
            at_points.attrs["point_model"]["weights"][0],
        )
    else:
        kwargs = {"style": not args.no_style}
        write_cube(forecast, output, overwrite=args.overwrite, **kwargs)
        for name, path in bound_paths.items():  # GeoTIFF: one file per bound, laid out as the forecast
            var = f"displacement_{name}"
            bound = forecast[[var]].rename({var: "displacement"})
            bound.attrs.update(
                forecast.attrs, title=f"{forecast.attrs['title']}, {name} bound of the {args.interval:g} % interval"
            )
            write_cube(bound, path, overwrite=args.overwrite, **kwargs)
            log.info("wrote %s", path)
    if plot_path is not None:
        plot_forecast(cube, forecast, plot_path, points=plot_points, overwrite=args.overwrite)
        log.info("wrote %s", plot_path)
    dates = [str(d)[:10] for d in forecast["time"].values]
    log.info(
        "%s: %d forecast epochs %s to %s (%d x %d cells, %.0f s)",
        output,
        len(dates),
        dates[0],
        dates[-1],
        forecast.sizes["y"],
        forecast.sizes["x"],
        time.perf_counter() - t0,
    )
    return 0


def _plot_points(items, cube, points):
    """``--plot-points`` as ``{label: (x, y)}``, checked before any work: x,y inside the
    grid, or pids of the ``--points`` file (None: the quicklook's default cells)."""
    from insar_raster.errors import InputError
    from insar_raster.gis.quicklook import resolve_points

    if not items:
        return None
    try:
        picks = resolve_points(items, cube["displacement"], points)
    except InputError as exc:
        hint = exc.hint.replace("the points file", "--points") if exc.hint else exc.hint
        raise InputError("--plot-points", exc.problem, hint) from None
    return {label: (x, y) for label, x, y in picks}


def _refuse_training_options(args) -> None:
    """With ``--model`` nothing is trained: a training option given (``--window 4``) would
    be silently ignored, so it is refused (``--device`` and ``--threads`` are left alone)."""
    import dataclasses

    from insar_raster.cli.options import TRAINING_FIELDS, flag_of
    from insar_raster.errors import InputError
    from insar_raster.forecast.config import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name in TRAINING_FIELDS:
        if name != "device" and getattr(args, name) != fields[name].default:
            raise InputError(
                flag_of(fields[name]),
                "only applies when training here (no --model)",
                "the model file fixes it: drop the option, or train a new model",
            )
