"""``insar-raster train``: fit a forecasting model on a cube and save it."""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger("insar_raster")


#: One-line summary, shown by ``insar-raster --help`` without building this command's parser.
HELP = "train a forecasting model on a displacement cube"


def add_parser(subparsers, parents):
    from insar_raster.cli.options import add_config_options, add_training_options
    from insar_raster.forecast.config import TrainConfig

    p = subparsers.add_parser(
        "train",
        parents=parents,
        help=HELP,
        description=(
            "Train a model that forecasts the next --steps epochs of a cube from its last --window epochs. "
            "Samples are split chronologically (train on the earliest epochs, validate on the next, hold out "
            "the latest); training uses random spatial patches, masked MSE, Adam and early stopping. "
            "The model file holds the weights and a JSON header (architecture, normalisation, training grid); "
            "loading it never executes code."
        ),
    )
    p.add_argument(
        "cube", help="displacement cube (.nc, .zarr, or .tif with one dated band per epoch) from 'insar-raster grid'"
    )
    p.add_argument("-o", "--output", help="model file (default <cube>_model.ipt)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_config_options(p, TrainConfig, ("steps",))
    add_training_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from insar_raster.cli._common import load_cube, report_training
    from insar_raster.cli.options import training_config
    from insar_raster.forecast.forecaster import train_model
    from insar_raster.io.atomic import check_output_path
    from insar_raster.io.formats import check_output_format

    t0 = time.perf_counter()
    output = Path(args.output) if args.output else Path(args.cube).with_name(f"{Path(args.cube).stem}_model.ipt")
    check_output_format(output, "model")  # fail before the long work
    check_output_path(output, args.overwrite)
    config = training_config(args, args.steps)
    cube = load_cube(args.cube, args.resample)
    forecaster = train_model(cube, config, progress=not args.quiet)
    from insar_raster.forecast.train import is_main_process

    if not is_main_process():  # under torchrun every rank ends with the same weights; rank 0 writes
        return 0
    forecaster.save(output, overwrite=args.overwrite)
    log.info("wrote %s (%s, %.0f s)", output, forecaster.config.arch, time.perf_counter() - t0)
    report_training(forecaster)
    return 0
