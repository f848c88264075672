"""``insar-raster train``: fit a forecasting model on a cube and save it."""
from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger("insar_raster")


#: One-line summary, shown by ``insar-raster --help`` without building this command's parser.
HELP = "train a forecasting model on a displacement cube"


def add_training_options(p) -> None:
    """Options shared by ``train`` and ``forecast`` (which trains when given no model)."""
    from insar_raster.forecast.train import TrainConfig
    from insar_raster.models import ARCHITECTURES

    d = TrainConfig()
    g = p.add_argument_group("training")
    g.add_argument("--arch", default=d.arch, choices=ARCHITECTURES,
                   help="convlstm: fully convolutional, any grid (default); paper: the reference CNN-LSTM "
                        "(fixed input size); cnn: convlstm without its recurrent core (ablation)")
    g.add_argument("--window", type=int, default=d.window, help=f"past epochs per forecast (default {d.window})")
    g.add_argument("--epochs", type=int, default=d.epochs, help=f"maximum training epochs (default {d.epochs})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"patches per step (default {d.batch_size})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr:g})")
    g.add_argument("--seed", type=int, default=d.seed, help="random seed; results are reproducible on CPU (default 0)")
    g.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"),
                   help="auto uses CUDA when available (default auto)")
    g.add_argument("--patch-size", type=int, default=d.patch_size,
                   help=f"training patch side in cells (default {d.patch_size}; paper: its input size)")
    g.add_argument("--paper-size", type=int, default=d.paper_input_size,
                   help=f"fixed input size of the paper model, cells (default {d.paper_input_size}, clipped to the grid)")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"share of the latest epochs before the test part used for validation (default {d.val_fraction})")
    g.add_argument("--test-fraction", type=float, default=d.test_fraction,
                   help=f"share of the latest epochs held out, never trained or validated on (default {d.test_fraction})")
    g.add_argument("--samples-per-epoch", type=int, default=d.samples_per_epoch,
                   help=f"random patches per training epoch (default {d.samples_per_epoch})")
    g.add_argument("--patience", type=int, default=d.patience, help=f"early stopping patience, epochs (default {d.patience})")
    g.add_argument("--prior", default=d.prior, choices=("auto", "harmonic", "none"),
                   help="per-pixel trend+seasonal history fit given to the network (default auto: on except for paper)")
    g.add_argument("--significance", type=float, default=d.significance, metavar="Z",
                   help="new weights must lower the validation loss by this many standard errors of the per-date "
                        f"gains, besides 1%% overall (default {d.significance:g}; 0 keeps any 1%% gain)")
    g.add_argument("--resample", metavar="STEP",
                   help="first interpolate the cube to a regular time step, e.g. 12D (default: keep the "
                        "acquisition dates; the model is given the time gaps)")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: available cores, at most 8)")


def config_from_args(args, steps: int):
    from insar_raster.forecast.train import TrainConfig

    return TrainConfig(
        arch=args.arch, window=args.window, steps=steps, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, device=args.device, patch_size=args.patch_size,
        paper_input_size=args.paper_size, val_fraction=args.val_fraction, test_fraction=args.test_fraction,
        patience=args.patience, prior=args.prior, samples_per_epoch=args.samples_per_epoch, threads=args.threads,
        significance=args.significance,
    )


def load_cube(path, resample: str | None):
    """Open a cube and optionally resample it; say when its epochs are irregular."""
    from insar_raster.forecast.resample import irregularity, resample_cube
    from insar_raster.io.cube import open_cube

    cube = open_cube(path)
    if resample:
        return resample_cube(cube, resample)
    lo, hi = irregularity(cube)
    if hi > 1.5 * lo:
        log.info("%s: irregular epochs (gaps %g to %g days); the model is given the time gaps "
                 "(use --resample 12D for a regular step)", path, lo, hi)
    return cube


def report_training(forecaster) -> None:
    """The final line: validation RMSE against persistence (and the history fit)."""
    meta = forecaster.metadata
    rmse, pers = meta.get("val_rmse_mm"), meta.get("val_persistence_rmse_mm")
    if rmse is None or pers is None:
        return
    text = (f"validation RMSE {rmse:.3f} mm vs persistence {pers:.3f} mm "
            f"({rmse / pers:.2f}x), weights kept from epoch {meta.get('best_epoch')} of {forecaster.history[-1]['epoch']}")
    fit = meta.get("val_history_fit_rmse_mm")
    if fit:
        text += f"; per-pixel history fit alone {fit:.3f} mm"
    stage = meta.get("prior_filter")
    if stage and stage.get("kept"):
        text += f", with its learned spatial filter {stage['val_rmse_filtered_mm']:.3f} mm"
    print(text)


def add_parser(subparsers, parents):
    p = subparsers.add_parser(
        "train", parents=parents,
        help=HELP,
        description=(
            "Train a model that forecasts the next --steps epochs of a cube from its last --window epochs. "
            "Samples are split chronologically (train on the earliest epochs, validate on the next, hold out "
            "the latest); training uses random spatial patches, masked MSE, Adam and early stopping. "
            "The model file holds the weights and a JSON header (architecture, normalisation, training grid); "
            "loading it never executes code."
        ),
    )
    p.add_argument("cube", help="displacement cube (.nc, .zarr, or .tif with one dated band per epoch) from 'insar-raster grid'")
    p.add_argument("-o", "--output", help="model file (default <cube>_model.ipt)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--steps", type=int, default=6, help="epochs forecast at once (default 6; the paper did 1)")
    add_training_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from insar_raster.forecast.train import train_model
    from insar_raster.io.atomic import check_output_path
    from insar_raster.io.formats import check_output_format

    t0 = time.perf_counter()
    output = Path(args.output) if args.output else Path(args.cube).with_name(f"{Path(args.cube).stem}_model.ipt")
    check_output_format(output, "model")  # fail before the long work
    check_output_path(output, args.overwrite)
    config = config_from_args(args, args.steps)
    cube = load_cube(args.cube, args.resample)
    forecaster = train_model(cube, config, progress=not args.quiet)
    from insar_raster.forecast.train import is_main_process

    if not is_main_process():  # under torchrun every rank ends with the same weights; rank 0 writes
        return 0
    forecaster.save(output, overwrite=args.overwrite)
    log.info("wrote %s (%s, %.0f s)", output, forecaster.config.arch, time.perf_counter() - t0)
    report_training(forecaster)
    return 0
