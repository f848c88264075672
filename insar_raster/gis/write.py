"""Write a cube in any output format: the suffix picks the writer.

``.nc`` and ``.zarr`` are written by :func:`insar_raster.io.cube.write_cube_store`,
``.tif`` by :func:`insar_raster.gis.raster.write_geotiff` (one band per epoch, COG
layout); a ``.qml`` QGIS style goes beside it (:mod:`insar_raster.gis.style`). This
dispatch sits in ``gis`` so that ``io`` never imports the GIS outputs: a new cube format
is a writer plus one branch here (and its suffix in :mod:`insar_raster.io.formats`).
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from insar_raster.io.cube import CUBE_VARIABLE, write_cube_store
from insar_raster.io.formats import check_output_format


def write_cube(ds: xr.Dataset, path, overwrite: bool = False, style: bool | None = None, **raster_kwargs) -> Path:
    """Write a cube atomically as NetCDF (``.nc``), Zarr (``.zarr``) or GeoTIFF (``.tif``).

    Parameters
    ----------
    ds : xarray.Dataset
        A cube (layout of :mod:`insar_raster.io.cube`), in memory or dask-backed.
    path : path
        Output file; its suffix picks the format.
    overwrite : bool
        Replace an existing output.
    style : bool, optional
        Write a ``.qml`` QGIS style beside a GeoTIFF (raster route) or a NetCDF cube (mesh
        route: :func:`insar_raster.gis.style.write_cube_style`); the default (None) styles
        GeoTIFFs only.
    **raster_kwargs
        Options of :func:`insar_raster.gis.raster.write_geotiff` (GeoTIFF only).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    check_output_format(path, "cube")
    if suffix in (".tif", ".tiff"):
        from insar_raster.gis.raster import write_geotiff

        return write_geotiff(ds[CUBE_VARIABLE], path, overwrite=overwrite, style=style is not False, **raster_kwargs)
    write_cube_store(ds, path, overwrite=overwrite)
    if style and suffix == ".nc" and CUBE_VARIABLE in ds and "time" in ds[CUBE_VARIABLE].dims:
        from insar_raster.gis.style import write_cube_style

        write_cube_style(path, overwrite=overwrite)
    return path
