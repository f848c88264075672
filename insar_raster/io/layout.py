"""The cube layout's grid: CF attributes of its coordinates and its affine transform,
shared by every cube reader and writer (and the GeoTIFF writer)."""

from __future__ import annotations

import warnings

import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

#: ``long_name`` of the ``displacement`` variable.
DISPLACEMENT_LONG_NAME = "displacement relative to the first epoch"


def is_geographic(crs) -> bool:
    """True for a geographic CRS (coordinates in degrees, e.g. EPSG:4326); False for a
    projected one (metres) or none."""
    if crs is None:
        return False
    from pyproj import CRS

    return bool(CRS.from_user_input(crs).is_geographic)


def cell_size_text(size: float, crs) -> str:
    """A cell size in the CRS's unit: ``"100 m"``, or ``"0.001°"`` in a geographic CRS."""
    return f"{size:g}°" if is_geographic(crs) else f"{size:g} m"


def xy_attrs(ds: xr.Dataset) -> xr.Dataset:
    """Set the CF attributes of the x/y (and time) coordinates; returns ``ds``: projected
    x/y in metres, or longitude/latitude in degrees for a cube in a geographic CRS."""
    if is_geographic(ds.rio.crs):
        ds["x"].attrs.update(standard_name="longitude", long_name="longitude", units="degrees_east", axis="X")
        ds["y"].attrs.update(standard_name="latitude", long_name="latitude", units="degrees_north", axis="Y")
    else:
        ds["x"].attrs.update(
            standard_name="projection_x_coordinate", long_name="x coordinate of projection", units="m", axis="X"
        )
        ds["y"].attrs.update(
            standard_name="projection_y_coordinate", long_name="y coordinate of projection", units="m", axis="Y"
        )
    if "time" in ds.coords:
        ds["time"].attrs.update(standard_name="time", long_name="acquisition date", axis="T")
    return ds


def grid_transform(data):
    """Affine transform of a DataArray/Dataset on a regular grid, from its coordinates.

    Recomputed from the coordinates when possible (a stored GeoTransform is stale after
    slicing); a 1-cell axis has no spacing, so the stored one is used then.
    """
    recalc = data.sizes[data.rio.y_dim] > 1 and data.sizes[data.rio.x_dim] > 1
    with warnings.catch_warnings():
        # rioxarray composes Affines with `*`, which affine>=2.4 flags as pending deprecation.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return data.rio.transform(recalc=recalc)
