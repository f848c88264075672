"""``insar-raster evaluate``: the paper's comparison (baselines, deep models, metrics,
lag importance) on any cube, written as ``metrics.json``, ``report.md`` and figures."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

log = logging.getLogger("insar_raster")


#: One-line summary, shown by ``insar-raster --help`` without building this command's parser.
HELP = "compare forecasting models (deep and baselines) on a cube and write a report"


def _parse_sizes(text: str) -> list[int]:
    from insar_raster.errors import InputError

    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError("--resolutions", f"expected grid sizes such as 128,256,512, got {text!r}") from None
    if not sizes or min(sizes) < 8:
        raise InputError("--resolutions", f"grid sizes must be at least 8 cells, got {text!r}")
    return sizes


def add_parser(subparsers, parents):
    import dataclasses

    from insar_raster.cli._checks import add_points_reading_options
    from insar_raster.cli.options import add_config_options, add_resample_option
    from insar_raster.evaluate import ALL_MODELS, EvaluateConfig

    p = subparsers.add_parser(
        "evaluate",
        parents=parents,
        help=HELP,
        description=(
            "Fit persistence, per-pixel trend and trend + seasonal fits (on the window), a per-pixel harmonic fit "
            "on the whole past (history_fit), LASSO and LightGBM on pixel lags, DLinear and a causal TCN "
            "per pixel, and the deep models (the paper's CNN-LSTM, the default ConvLSTM, its CNN-only "
            "ablation and a SimVP/TAU-style translator) on "
            "one chronological split of the cube; score every model on the same test epochs and cells "
            "(RMSE, MAE, R², skill vs persistence, overall and per step; also against --truth); measure "
            "which input epochs each model uses; write metrics.json, report.md and PNG figures to a folder."
        ),
    )
    p.add_argument(
        "cube",
        help="displacement cube (.nc, .zarr, or .tif with one dated band per epoch), e.g. from 'insar-raster grid'",
    )
    p.add_argument("-o", "--output", help="report folder (default <cube>_report); written atomically")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    p.add_argument(
        "--models",
        default=",".join(ALL_MODELS),
        help=f"comma-separated models (default all: {','.join(ALL_MODELS)}); persistence is always included",
    )
    p.add_argument(
        "--truth",
        help="noise-free truth cube on the same grid and dates (synthetic scenes; default: none, scores "
        "against the observations only)",
    )
    p.add_argument(
        "--points",
        nargs="+",
        metavar="POINTS",
        help="measurement points (EGMS CSV/zip, .gpkg, .parquet; e.g. those the cube was gridded from): "
        "also score every model at the MPs against their own held-out values (the forecast raster "
        "sampled at each MP), beside per-MP persistence, a per-MP history fit and the point forecast "
        "(default: cells only)",
    )
    p.add_argument(
        "--holdout-blocks",
        type=int,
        metavar="CELLS",
        help="spatial hold-out: blocks of CELLS x CELLS cells (one block in four) are never a training "
        "target of any model, and are scored apart, so skill from having seen the same cells/MPs "
        "shows (default: no hold-out)",
    )
    p.add_argument(
        "--point-base",
        metavar="MODEL",
        help="with --points: the model whose grid forecast the point forecast uses (default convlstm "
        "when evaluated, else history_fit)",
    )
    p.add_argument(
        "--model",
        action="append",
        metavar="MODEL_FILE",
        help="score this trained model file (from 'insar-raster train'/'forecast --save-model') instead of "
        "training its architecture here; repeatable. It must use the same window/steps and split "
        "(default: every deep model trained here)",
    )
    add_config_options(p, EvaluateConfig, [f.name for f in dataclasses.fields(EvaluateConfig)])
    p.add_argument(
        "--resolutions",
        type=_parse_sizes,
        help="also repeat the study on these grid sizes in cells, e.g. 128,256,512 (cube resampled over its "
        "extent; default: the cube's grid only)",
    )
    p.set_defaults(func=run, param_flags={"pretrained": "--model"})  # evaluate_cube(pretrained=...)
    add_resample_option(p)
    add_points_reading_options(p)


def run(args) -> int:
    import dataclasses

    from insar_raster.cli._checks import points_reading_options
    from insar_raster.cli._common import load_cube, resample_hint
    from insar_raster.cli.options import config_from_args
    from insar_raster.errors import InputError
    from insar_raster.evaluate import (
        EvaluateConfig,
        evaluate_cube,
        evaluate_resolutions,
        format_table,
        parse_models,
        write_report,
    )
    from insar_raster.io.atomic import check_output_path
    from insar_raster.io.cube import open_cube

    t0 = time.perf_counter()
    models = parse_models(args.models)
    for name in ("window", "steps", "max_rows"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')}", f"must be at least 1, got {getattr(args, name)}")
    if args.epochs is not None and args.epochs < 1:
        raise InputError("--epochs", f"must be at least 1, got {args.epochs}")
    for name in ("val_fraction", "test_fraction"):
        if not 0 <= getattr(args, name) < 0.5:
            raise InputError(f"--{name.replace('_', '-')}", f"must be in [0, 0.5), got {getattr(args, name)}")
    if args.test_fraction == 0:
        raise InputError("--test-fraction", "must be above 0: evaluation needs test epochs")
    output = Path(args.output) if args.output else Path(args.cube).with_name(f"{Path(args.cube).stem}_report")
    check_output_path(output, args.overwrite)  # refuse before the long work
    if args.holdout_blocks is not None and args.holdout_blocks < 1:
        raise InputError("--holdout-blocks", f"must be at least 1 cell, got {args.holdout_blocks}")
    if args.holdout_blocks and args.model:
        raise InputError(
            "--holdout-blocks",
            "cannot be used with --model: a trained model has seen every cell",
            "let evaluate train the models",
        )
    if args.point_base and not args.points:
        raise InputError("--point-base", "only applies with --points")
    read_options = points_reading_options(args)
    if args.point_base and args.point_base not in models:
        raise InputError("--point-base", f"{args.point_base!r} is not among --models ({', '.join(models)})")
    if args.points:
        from insar_raster.io.points import expand_inputs

        expand_inputs(args.points)  # a missing file fails before the long work
    cube = load_cube(args.cube, args.resample)
    _warn_finer_test_steps(cube, args)
    truth = open_cube(args.truth) if args.truth else None
    if truth is not None and args.resample:
        from insar_raster.io.cube import cube_date_index

        # The truth is read on the cube's dates, never interpolated.
        cube_date_index(cube, truth, "truth cube", args.truth, resample_hint(args.resample, "truth cube's"))
    pretrained = {}
    for path in args.model or []:
        from insar_raster.forecast.forecaster import load_model

        forecaster = load_model(path)
        with warnings.catch_warnings():  # rioxarray's Affine `*` pending deprecation
            warnings.filterwarnings("ignore", message=".*matmul.*", category=PendingDeprecationWarning)
            forecaster.check_grid(cube, path)
        forecaster.check_revisit(cube)  # a model at another revisit or component, as forecast --model
        forecaster.check_geometry(cube)
        pretrained[forecaster.config_.arch] = forecaster
    options = {
        **dataclasses.asdict(config_from_args(EvaluateConfig, args)),
        "models": models,
        "progress": not args.quiet,
    }
    log.info(
        "evaluating %s on %s (%d epochs, %dx%d cells), window %d, steps %d",
        ", ".join(models),
        args.cube,
        cube.sizes["time"],
        cube.sizes["y"],
        cube.sizes["x"],
        args.window,
        args.steps,
    )
    points = None
    if args.points:
        from insar_raster.cli._common import read_points_for_cube

        # Geometry and dates refused before the models; each MP is scored on its own values at the
        # cube's dates, so a resampled date must be one of its acquisitions.
        points = read_points_for_cube(args.points, cube, args.resample, **read_options)
        log.info("scoring at %d measurement points from %s", points.sizes["point"], ", ".join(args.points))
    results = evaluate_cube(
        cube,
        truth=truth,
        pretrained=pretrained,
        points=points,
        holdout_block=args.holdout_blocks,
        point_base=args.point_base,
        **options,
    )
    if args.resolutions:
        results["resolution_study"], results["resolutions"] = evaluate_resolutions(
            cube, args.resolutions, truth=truth, **options
        )
    write_report(results, output, overwrite=args.overwrite)
    log.info("wrote %s (metrics.json, report.md, figures) in %.1f s", output, time.perf_counter() - t0)
    if not args.quiet:
        print(format_table(results))
        if results.get("points"):
            from insar_raster.evaluate.points import points_table

            print(
                "\nAt the measurement points (MPs: against each MP's own values; cells: against the gridded "
                "observations):"
            )
            print(points_table(results))
    return 0


def _warn_finer_test_steps(cube, args) -> None:
    """Warn when the cube's latest revisit is 1.5x finer than its training epochs' (a
    12-day record ending in Sentinel-1C's 6-day gaps): the test samples step 6 days, but a
    model trained on this cube forecasts 12-day steps (``forecast.cadence``)."""
    from insar_raster.forecast.cadence import forecast_step_change
    from insar_raster.forecast.data import acquisition_step_days
    from insar_raster.forecast.windows import chronological_split

    try:
        split = chronological_split(cube.sizes["time"], args.window, args.steps, args.val_fraction, args.test_fraction)
    except ValueError:
        return  # too short: evaluate_cube says so
    change = forecast_step_change(cube, split)
    current = acquisition_step_days(cube)
    if change is None or current >= change[1]:
        return
    step = f"{change[1]:g}D"
    warnings.warn(
        f"{args.cube}: its latest revisit is {current:g} days, finer than its training epochs' {change[1]:g}: the test"
        f" samples are scored at {current:g}-day steps, while a forecast from a model trained on it takes"
        f" {change[1]:g}-day steps; --resample {step} scores those",
        stacklevel=2,
    )
