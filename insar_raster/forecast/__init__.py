"""Forecasting displacement cubes: windows, models, training, inference.

Modules
-------
config       ``TrainConfig``: every training default, one field each (the CLI options come from it)
estimator    the protocol every model follows: ``fit(cube, split)``, ``predict_windows(cube, starts)``
windows      chronological split of the sliding-window samples (shared by all models)
data         normalisation, input channels, the per-pixel history prior, block reader, target dates
train        the training loop; ``train_model(cube, config, split) -> Forecaster``
forecaster   ``Forecaster(config).fit(cube, split)``: ``forecast(cube)``, ``predict_windows``, ``save``
modelfile    ``load_model(path)``: JSON header + weights, never executes code
tiles        overlapping tiles and blending for large grids
resample     ``resample_cube(cube, "12D")``: regular time step

Example
-------
>>> from insar_raster.forecast.config import TrainConfig
>>> from insar_raster.forecast.forecaster import Forecaster
>>> forecaster = Forecaster(TrainConfig(steps=6)).fit(cube)       # doctest: +SKIP
>>> future = forecaster.forecast(cube)                             # doctest: +SKIP
>>> write_cube(future, "forecast.tif")                             # doctest: +SKIP
"""
