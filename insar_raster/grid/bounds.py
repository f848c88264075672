"""Grid bounds given in another CRS than the grid's (e.g. longitude/latitude degrees)."""

from __future__ import annotations

from pyproj import CRS, Transformer

from insar_raster.errors import InputError

GEOGRAPHIC = "EPSG:4326"


def looks_geographic(bounds) -> bool:
    """True when (west, south, east, north) are plausible longitudes/latitudes in degrees."""
    west, south, east, north = bounds
    return all(-180 <= v <= 180 for v in (west, east)) and all(-90 <= v <= 90 for v in (south, north))


def bounds_in_crs(bounds, crs, bounds_crs=None) -> tuple[tuple[float, float, float, float], CRS]:
    """Express ``bounds`` in the grid's ``crs``.

    Parameters
    ----------
    bounds : tuple of float
        (west, south, east, north) in ``bounds_crs`` units (m or degrees).
    crs : str or pyproj.CRS
        The grid's (projected) CRS.
    bounds_crs : str or pyproj.CRS, optional
        CRS of ``bounds``. Default: ``crs``, unless ``crs`` is projected and the numbers
        are plausible longitudes/latitudes (no projected grid of real data spans less
        than 180 m from its false origin), then EPSG:4326.

    Returns
    -------
    (bounds, bounds_crs)
        The bounding box of ``bounds`` in ``crs`` (edges densified, so a box in degrees
        becomes the projected box that covers it) and the CRS ``bounds`` were read in.
    """
    crs = CRS.from_user_input(crs)
    if bounds_crs is None:
        bounds_crs = CRS.from_user_input(GEOGRAPHIC) if crs.is_projected and looks_geographic(bounds) else crs
    else:
        try:
            bounds_crs = CRS.from_user_input(bounds_crs)
        except Exception:
            raise InputError(None, f"unknown CRS {bounds_crs!r} for the bounds", "use e.g. EPSG:4326") from None
    if bounds_crs == crs:
        return tuple(float(v) for v in bounds), bounds_crs
    transformer = Transformer.from_crs(bounds_crs, crs, always_xy=True)
    west, south, east, north = transformer.transform_bounds(*bounds, densify_pts=21)
    return (float(west), float(south), float(east), float(north)), bounds_crs
