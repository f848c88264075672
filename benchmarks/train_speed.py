"""Training and forecasting speed (and, with --accuracy, held-out accuracy) on CPU.

Prints numbers and ratios to the targets of the forecasting issue; asserts nothing.

- training samples/s (random patches, default model) on 256x256 and 1024x1024 cubes;
- forecast time of a trained model on the same cubes (target: 1024x1024 < 10 s on CPU);
- the demo path: train + forecast a 128x128, 100-epoch cube with the defaults
  (target: < 180 s on 2 CPU cores);
- ``--accuracy``: on the synthetic scenes (mixed, bowl, seasonal), test-split RMSE of
  the model against persistence and per-pixel least-squares fits (targets:
  <= 0.6x persistence and below the trend + seasonal fit).

GPU: not measured (no GPU is available to this project's build machines); the code
uses CUDA when present (``--device auto``).

- ``--l3-tile``: a full EGMS L3 tile, 1000 x 700 cells of 100 m with ~19 % of them valid
  (clustered, as built-up areas are) and 300 epochs (1.25 GB of float64 input, 840 MB as a
  float32 cube, so training reads patches lazily from the .nc): the wall time and peak
  memory of ``insar-raster forecast cube.nc`` (train with the defaults, then forecast),
  run in a fresh process (targets: < 15 min, < 8 GB on the 2-core CPU).

Usage: python benchmarks/train_speed.py [--quick] [--accuracy] [--arch convlstm] [--l3-tile]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
from _args import add_cache_dir

warnings.filterwarnings("ignore")


def _synth(shape, n_epochs, scene="mixed", seed=0):
    from insar_raster.synth import make_scene_cube

    return make_scene_cube(shape=shape, n_epochs=n_epochs, scene=scene, seed=seed)


def speed(args):
    from insar_raster import TrainConfig, train_model

    sizes = [256] if args.quick else [256, 1024]
    for size in sizes:
        t0 = time.perf_counter()
        cube, _ = _synth((size, size), 48 if size > 512 else 60)
        t_synth = time.perf_counter() - t0
        config = TrainConfig(arch=args.arch, epochs=2, samples_per_epoch=64, patience=99, val_patches=8, seed=0)
        t0 = time.perf_counter()
        forecaster = train_model(cube, config, progress=False)
        t_train = time.perf_counter() - t0
        n = config.epochs * config.samples_per_epoch
        t0 = time.perf_counter()
        forecast = forecaster.forecast(cube)
        t_forecast = time.perf_counter() - t0
        print(
            f"{size}x{size} ({cube.sizes['time']} epochs, synth {t_synth:.1f} s): training "
            f"{n / t_train:.1f} samples/s ({config.patch_size}x{config.patch_size} patches, incl. validation), "
            f"forecast {forecast.sizes['time']} epochs in {t_forecast:.2f} s"
        )
        if size == 1024:
            print(f"  forecast 1024x1024 / 10 s target = {t_forecast / 10:.2f} (<= 1 meets it)")


def demo(args):
    from insar_raster import TrainConfig, train_model

    cube, _ = _synth((128, 128), 100)
    t0 = time.perf_counter()
    forecaster = train_model(cube, TrainConfig(arch=args.arch), progress=False)
    t_train = time.perf_counter() - t0
    forecaster.forecast(cube)
    total = time.perf_counter() - t0
    print(
        f"demo path 128x128x100 epochs: train {t_train:.1f} s ({forecaster.history[-1]['epoch']} epochs), "
        f"train+forecast {total:.1f} s; / 180 s target = {total / 180:.2f}"
    )


def lsq_forecast(values, days, starts, window, steps, seasonal=True, history="all"):
    """Per-pixel least squares (offset + trend [+ annual sin/cos]) extrapolated to targets."""
    out = np.full((len(starts), steps, *values.shape[1:]), np.nan, dtype=np.float32)
    for i, s in enumerate(starts):
        first = 0 if history == "all" else s
        d = days[first : s + window]
        future = days[s + window : s + window + steps]

        def design(t, d=d):
            cols = [np.ones_like(t), (t - d[-1]) / 365.25]
            if seasonal:
                cols += [np.sin(2 * np.pi * t / 365.25), np.cos(2 * np.pi * t / 365.25)]
            return np.stack(cols, 1)

        y = values[first : s + window].reshape(len(d), -1)
        ok = np.isfinite(y).all(0)
        coef = np.linalg.lstsq(design(d), y[:, ok], rcond=None)[0]
        flat = out[i].reshape(steps, -1)
        flat[:, ok] = design(future) @ coef
    return out


def prior_forecast(values, days, starts, window, steps, history=150):
    """The model's history prior alone: per-pixel trend + acceleration + annual fit."""
    from insar_raster.forecast.data import history_eval, history_fit

    out = np.empty((len(starts), steps, *values.shape[1:]), dtype=np.float32)
    for i, s in enumerate(starts):
        first = max(0, s + window - history)
        d = days[first : s + window]
        coef = history_fit(values[first : s + window], d, d[-1])
        out[i] = history_eval(coef, days[s + window : s + window + steps], d[-1])
    return out


def accuracy(args):
    from insar_raster import TrainConfig, train_model
    from insar_raster.forecast.data import times_in_days
    from insar_raster.forecast.windows import chronological_split

    def rmse(a, b):
        return float(np.sqrt(np.nanmean((a - b) ** 2)))

    for scene in ("mixed", "bowl", "seasonal"):
        cube, truth = _synth((64, 64), 100, scene=scene, seed=11)  # not a seed used in tests
        config = TrainConfig(arch=args.arch, seed=0, **({"lr": args.lr} if args.lr else {}))
        split = chronological_split(
            cube.sizes["time"], config.window, config.steps, config.val_fraction, config.test_fraction
        )
        t0 = time.perf_counter()
        forecaster = train_model(cube, config, split, progress=False)
        t_train = time.perf_counter() - t0
        observed = cube["displacement"].values
        true = truth["displacement"].values
        idx = split.target_indices("test")
        days = times_in_days(cube)
        preds = {
            "model": forecaster.predict_windows(cube, split.test),
            "persistence": np.repeat(observed[split.test + config.window - 1][:, None], config.steps, 1),
            "trend+seasonal LSQ (all past)": lsq_forecast(observed, days, split.test, config.window, config.steps),
            "trend+seasonal LSQ (window)": lsq_forecast(
                observed, days, split.test, config.window, config.steps, history="window"
            ),
            "trend LSQ (all past)": lsq_forecast(
                observed, days, split.test, config.window, config.steps, seasonal=False
            ),
            "history prior alone (+accel.)": prior_forecast(observed, days, split.test, config.window, config.steps),
        }
        base = rmse(preds["persistence"], observed[idx])
        print(
            f"scene {scene} (64x64, 100 epochs, seed 11, {args.arch}, trained {t_train:.0f} s, "
            f"{forecaster.history[-1]['epoch']} epochs, best {forecaster.metadata['best_epoch']}), test RMSE mm vs observed | vs noise-free truth | / persistence:"
        )
        for name, p in preds.items():
            r = rmse(p, observed[idx])
            print(f"  {name:32s} {r:7.3f} | {rmse(p, true[idx]):7.3f} | {r / base:5.2f}")


L3_SHAPE, L3_EPOCHS = (700, 1000), 300


def l3_tile_cube(cache_dir):
    """The synthetic L3-tile cube as a .nc file, built once and kept in ``cache_dir``.

    Building it (a 700 x 1000 x 300 ``mixed`` scene, then ~81 % of the cells masked in
    clusters) takes minutes; a rerun reuses the file (the name carries the settings)."""
    from pathlib import Path

    from scipy.ndimage import gaussian_filter

    from insar_raster.gis.write import write_cube

    shape, n_epochs = L3_SHAPE, L3_EPOCHS
    path = Path(cache_dir) / f"l3_tile_{shape[0]}x{shape[1]}x{n_epochs}_mixed_seed3_valid19.nc"
    if path.exists():
        print(f"L3-tile cube: reusing {path}", flush=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cube, _ = _synth(shape, n_epochs, scene="mixed", seed=3)
    # ~19 % valid cells, clustered (built-up areas and fields with scatterers).
    rng = np.random.default_rng(0)
    field = gaussian_filter(rng.standard_normal(shape), 6)
    valid = field > np.quantile(field, 0.81)
    cube["displacement"].values[:, ~valid] = np.nan
    write_cube(cube, path)  # atomic: an interrupted build leaves no partial file
    print(
        f"L3-tile cube {shape[0]}x{shape[1]} cells, {n_epochs} epochs, {valid.mean():.1%} valid, "
        f"{path.stat().st_size / 2**20:.0f} MiB .nc, built in {time.perf_counter() - t0:.0f} s -> {path}",
        flush=True,
    )
    return path


def l3_tile(args):
    """Train + forecast on a cube the size of a full EGMS L3 tile, through the CLI."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _measure import measure

    path = l3_tile_cube(args.cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "forecast.tif"
        result = measure(
            f"from insar_raster.cli import main\n"
            f"raise SystemExit(main(['forecast', {str(path)!r}, '-o', {str(out)!r}, "
            f"'--arch', {args.arch!r}]))",
            "forecast (train + forecast), CLI",
        )
        print(
            f"L3 tile train + forecast: {result['wall_s'] / 60:.1f} min wall (target < 15), "
            f"{result['cpu_s'] / 60:.1f} min CPU, peak RSS {result['peak_rss_mib'] / 1024:.2f} GiB (target < 8)"
        )
        if result["stderr"].strip():
            print("stderr of the run (last lines):\n" + "\n".join(result["stderr"].strip().splitlines()[-15:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256x256 only, no demo path")
    parser.add_argument("--accuracy", action="store_true", help="also measure held-out accuracy on synthetic scenes")
    parser.add_argument("--only-accuracy", action="store_true", help="accuracy only")
    parser.add_argument("--arch", default="convlstm")
    parser.add_argument("--lr", type=float, help="learning rate for the accuracy runs (default: TrainConfig's)")
    parser.add_argument("--l3-tile", action="store_true", help="only the full EGMS L3 tile case (1000x700, 300 epochs)")
    add_cache_dir(parser, "where the built L3-tile cube is kept for reruns")
    args = parser.parse_args()
    import torch

    print(
        f"CPU: {os.cpu_count()} cores visible, torch {torch.__version__}, "
        f"CUDA {'available' if torch.cuda.is_available() else 'not available (GPU not measured)'}"
    )
    if args.l3_tile:
        l3_tile(args)
        return
    if not args.only_accuracy:
        speed(args)
        if not args.quick:
            demo(args)
    if args.accuracy or args.only_accuracy:
        accuracy(args)


if __name__ == "__main__":
    main()
