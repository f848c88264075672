"""Forecasting displacement cubes: windows, models, training, inference.

Modules
-------
windows      chronological split of the sliding-window samples (shared by all models)
data         normalisation, input channels, the per-pixel history prior, block reader
train        ``TrainConfig`` and ``train_model(cube, config, split) -> Forecaster``
forecaster   ``Forecaster``: ``forecast(cube)``, ``predict_windows(cube, starts)``, ``save``
modelfile    ``load_model(path)``: JSON header + weights, never executes code
tiles        overlapping tiles and blending for large grids
resample     ``resample_cube(cube, "12D")``: regular time step

Example
-------
>>> from insar_raster.forecast.train import TrainConfig, train_model
>>> forecaster = train_model(cube, TrainConfig(steps=6))          # doctest: +SKIP
>>> future = forecaster.forecast(cube)                             # doctest: +SKIP
>>> write_cube(future, "forecast.tif")                             # doctest: +SKIP
"""
