"""insar-raster: InSAR measurement points -> georeferenced cubes -> forecasts.

The public API mirrors the command line::

    from insar_raster import read_points, GridSpec, grid_points, write_cube, open_cube

Heavy dependencies (torch, lightgbm) are imported lazily by the modules that need them,
so gridding never pays for them.
"""
from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "read_points": "insar_raster.io.points",
    "GridSpec": "insar_raster.grid.spec",
    "grid_points": "insar_raster.grid.gridders",
    "make_gridder": "insar_raster.grid.gridders",
    "write_cube": "insar_raster.io.cube",
    "open_cube": "insar_raster.io.cube",
    "InputError": "insar_raster.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):  # PEP 562: keep `import insar_raster` cheap
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'insar_raster' has no attribute {name!r}")
