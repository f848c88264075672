"""Forecasting displacement cubes: windows, models, training, inference.

Modules
-------
config       ``TrainConfig``: every training default, one field each (the CLI options come from it)
estimator    the protocol every model follows: ``fit(cube, split)``, ``predict_windows(cube, starts)``
windows      chronological split of the sliding-window samples (shared by all models)
data         normalisation, input channels, the per-pixel history prior, block reader, target dates
train        the training loop (``fit_network``), devices, ``torchrun``
forecaster   ``Forecaster(config).fit(cube, split)``: ``forecast(cube)``, ``predict_windows``, ``save``;
             ``train_model``, ``load_model``
modelfile    the model file: JSON header + weights (``save_model``, ``read_model``), never executes code
tiles        overlapping tiles and blending for large grids
resample     ``resample_cube(cube, "12D")``: regular time step

Example
-------
>>> from insar_raster import Forecaster, TrainConfig, write_cube
>>> config = TrainConfig(window=6, steps=2, epochs=1, samples_per_epoch=8, batch_size=4, patch_size=16,
...                      val_patches=4, device="cpu", threads=1)
>>> forecaster = Forecaster(config).fit(cube)
>>> future = forecaster.forecast(cube)
>>> future["displacement"].shape
(2, 16, 16)
>>> write_cube(future, tmp / "forecast.tif")
PosixPath('.../forecast.tif')
"""
