"""Write forecasts at the measurement points as a QGIS point layer (GeoPackage, GeoParquet)
or an EGMS-layout CSV.

One row per MP: ``pid``, ``easting``, ``northing`` (the cube's CRS, metres),
``mean_velocity`` (mm/yr) and one field per forecast date named ``YYYYMMDD`` (mm, same
reference as the MP's input series: its own first epoch), as the EGMS time-series tools
(e.g. QGIS InSAR Explorer) read them. When the forecast carries intervals
(``forecast_lower`` / ``forecast_upper`` variables), each date also gets
``YYYYMMDD_lower`` and ``YYYYMMDD_upper`` fields. GeoPackage and GeoParquet carry point
geometries in the cube's CRS; the CSV carries them as the ``easting``/``northing``
columns. Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from insar_raster.io.formats import write_geopackage

#: Layer name inside a GeoPackage.
LAYER = "point_forecast"
#: Interval variables and their field suffixes, when present.
INTERVALS = (("forecast_lower", "_lower"), ("forecast_upper", "_upper"))


def date_fields(times) -> list[str]:
    """``YYYYMMDD`` field names of the forecast dates."""
    return [str(d).replace("-", "") for d in np.asarray(times).astype("datetime64[D]")]


def point_forecast_frame(ds: xr.Dataset) -> pd.DataFrame:
    """The attribute table: pid, easting, northing, mean_velocity, date fields (+ intervals)."""
    names = date_fields(ds["time"].values)
    columns = {
        "pid": np.asarray(ds["pid"].values).astype(str),
        "easting": np.round(np.asarray(ds["x"].values, np.float64), 2),
        "northing": np.round(np.asarray(ds["y"].values, np.float64), 2),
        "mean_velocity": np.round(np.asarray(ds["mean_velocity"].values, np.float64), 3),
    }
    values = np.asarray(ds["forecast"].values, np.float64)
    bounds = [(suffix, np.asarray(ds[var].values, np.float64)) for var, suffix in INTERVALS if var in ds]
    for j, name in enumerate(names):
        columns[name] = np.round(values[:, j], 2)
        for suffix, array in bounds:
            columns[name + suffix] = np.round(array[:, j], 2)
    return pd.DataFrame(columns)


def write_point_forecast(ds: xr.Dataset, path, overwrite: bool = False) -> Path:
    """Write point forecasts (from :func:`insar_raster.forecast.points.forecast_points`).

    Parameters
    ----------
    ds : xarray.Dataset
        Dims (point, time): ``forecast`` (mm), ``mean_velocity`` (mm/yr), coordinates
        ``pid``, ``x``, ``y`` (CRS attached with rioxarray), optional
        ``forecast_lower`` / ``forecast_upper``.
    path : str or Path
        ``.gpkg`` (layer ``point_forecast``), ``.parquet`` (GeoParquet) or ``.csv``.
    overwrite : bool
        Replace an existing file.
    """
    from insar_raster.io.atomic import atomic_path
    from insar_raster.io.formats import check_output_format

    path = check_output_format(path, "point forecast")
    suffix = path.suffix.lower()
    frame = point_forecast_frame(ds)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            import geopandas as gpd

            crs = ds.rio.crs
            gdf = gpd.GeoDataFrame(
                frame,
                geometry=gpd.points_from_xy(ds["x"].values, ds["y"].values),
                crs=None if crs is None else crs.to_wkt(),
            )
            if suffix == ".gpkg":
                write_geopackage(gdf, tmp, LAYER)
            else:
                gdf.to_parquet(tmp)
    return path
