"""Train a forecaster on a cube, forecast the next epochs, write rasters and a quicklook.

    python examples/02_train_and_forecast.py                 # uses examples_out/cube.nc
    python examples/02_train_and_forecast.py my_cube.nc --epochs 30 --out work

Run ``01_points_to_cube.py`` first (or pass any cube from ``insar-raster grid``).
The defaults are small so that this finishes in a few minutes on a laptop CPU;
raise ``--epochs`` for a useful model.
"""

import argparse
from pathlib import Path

from insar_raster import TrainConfig, load_model, open_cube, plot_forecast, train_model, write_cube, write_geotiff


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cube", nargs="?", type=Path, default=Path("examples_out/cube.nc"))
    parser.add_argument("--out", type=Path, default=Path("examples_out"))
    parser.add_argument("--window", type=int, default=12, help="input epochs per forecast")
    parser.add_argument("--steps", type=int, default=6, help="forecast horizon (epochs)")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    cube = open_cube(args.cube)
    print(f"cube: {dict(cube.sizes)}, {str(cube.time.values[0])[:10]} to {str(cube.time.values[-1])[:10]}")

    # 1. Train. The chronological split keeps the last epochs for validation and test;
    #    the model file stores architecture, hyper-parameters and normalisation.
    config = TrainConfig(
        arch="convlstm",
        window=args.window,
        steps=args.steps,
        epochs=args.epochs,
        samples_per_epoch=64,
        patch_size=32,
        seed=0,
    )
    forecaster = train_model(cube, config)
    model_path = forecaster.save(args.out / "model.ipt", overwrite=True)
    print(
        "validation RMSE (mm):",
        forecaster.metadata.get("val_rmse_mm"),
        "| persistence:",
        forecaster.metadata.get("val_persistence_rmse_mm"),
    )

    # 2. Forecast from the end of the cube (a model file reloads without running code).
    forecaster = load_model(model_path)
    forecast = forecaster.forecast(cube)
    print("forecast epochs:", [str(t)[:10] for t in forecast.time.values])

    # 3. Outputs: CF NetCDF, COG (band descriptions = future dates) + .qml, quicklook.
    write_cube(forecast, args.out / "forecast.nc", overwrite=True)
    write_geotiff(forecast["displacement"], args.out / "forecast.tif", overwrite=True)
    plot_forecast(cube, forecast, args.out / "forecast.png", overwrite=True)
    for name in ("model.ipt", "forecast.nc", "forecast.tif", "forecast.qml", "forecast.png"):
        print("wrote", args.out / name)


if __name__ == "__main__":
    main()
