"""insar-raster: InSAR measurement points -> georeferenced cubes -> forecasts.

The public API mirrors the command line::

    from insar_raster import read_points, GridSpec, grid_points, write_cube, open_cube   # grid
    from insar_raster import TrainConfig, train_model, load_model, Forecaster            # train, forecast
    from insar_raster import evaluate_cube, write_report                                 # evaluate
    from insar_raster import export, write_geotiff, mean_velocity                        # export
    from insar_raster import describe                                                    # info

For example, the mean velocity of a cube, one value per cell:

>>> import insar_raster
>>> velocity = insar_raster.mean_velocity(cube)
>>> velocity.dims, velocity.attrs["units"]
(('y', 'x'), 'mm/yr')

Heavy dependencies (torch, lightgbm) are imported lazily by the modules that need them,
so gridding never pays for them.
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "read_points": "insar_raster.io.points",
    "write_points": "insar_raster.io.points",
    "make_scene": "insar_raster.synth",
    "GridSpec": "insar_raster.grid.spec",
    "grid_points": "insar_raster.grid.gridding",
    "make_gridder": "insar_raster.grid.gridders",
    "write_cube": "insar_raster.gis.write",
    "open_cube": "insar_raster.io.cube",
    "make_cube": "insar_raster.io.cube",
    "TrainConfig": "insar_raster.forecast.config",
    "Forecaster": "insar_raster.forecast.forecaster",
    "train_model": "insar_raster.forecast.forecaster",
    "load_model": "insar_raster.forecast.forecaster",
    "EvaluateConfig": "insar_raster.evaluate.config",
    "evaluate_cube": "insar_raster.evaluate.compare",
    "write_report": "insar_raster.evaluate.report",
    "format_table": "insar_raster.evaluate.report",
    "export": "insar_raster.gis.export",
    "write_geotiff": "insar_raster.gis.raster",
    "mean_velocity": "insar_raster.gis.derived",
    "cumulative_displacement": "insar_raster.gis.derived",
    "plot_cube": "insar_raster.gis.quicklook",
    "plot_forecast": "insar_raster.gis.quicklook",
    "describe": "insar_raster.info",
    "format_description": "insar_raster.info",
    "InputError": "insar_raster.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):  # PEP 562: keep `import insar_raster` cheap
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'insar_raster' has no attribute {name!r}")
