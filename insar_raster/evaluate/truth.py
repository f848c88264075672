"""The noise-free truth of a synthetic scene, on the evaluated cube's cells and dates."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from insar_raster.errors import InputError


def align_truth(cube: xr.Dataset, truth: xr.Dataset) -> np.ndarray:
    """The truth displacement on the cube's grid and dates, (time, y, x) float32 mm.

    A truth cube on the very same grid is used as is. A truth cube on another grid in
    the same CRS (e.g. the scene grid of ``insar-raster synth`` while the cube was
    gridded from its points, with its own bounds) is interpolated bilinearly onto the
    cube's cell centres, with a warning; cells outside the truth's extent are NaN and
    not scored against truth.

    Raises
    ------
    InputError
        Different CRS, a cube date missing from the truth, or no overlap.
    """
    from pyproj import CRS

    from insar_raster.io.cube import CUBE_VARIABLE, cube_date_index

    if CUBE_VARIABLE not in truth or truth[CUBE_VARIABLE].dims != ("time", "y", "x"):
        raise InputError(None, f"no '{CUBE_VARIABLE}' (time, y, x) variable in the truth cube", param="truth")
    index = cube_date_index(cube, truth, "truth cube", hint="use the truth written with the same scene", param="truth")
    da = truth[CUBE_VARIABLE].isel(time=index)
    same_grid = (
        da.shape[1:] == cube[CUBE_VARIABLE].shape[1:]
        and np.allclose(truth["x"].values, cube["x"].values)
        and np.allclose(truth["y"].values, cube["y"].values)
    )
    if same_grid:
        return np.asarray(da.values, dtype=np.float32)
    crs_cube, crs_truth = cube.rio.crs, truth.rio.crs
    if (
        crs_cube is not None
        and crs_truth is not None
        and CRS.from_user_input(crs_cube) != CRS.from_user_input(crs_truth)
    ):
        raise InputError(None, "truth cube CRS differs from the cube's", param="truth")
    warnings.warn(
        f"truth grid ({da.shape[1]}x{da.shape[2]}) differs from the cube grid "
        f"({cube.sizes['y']}x{cube.sizes['x']}); truth interpolated onto the cube's cells",
        stacklevel=2,
    )
    values = np.asarray(da.interp(x=cube["x"].values, y=cube["y"].values, method="linear").values, dtype=np.float32)
    if not np.isfinite(values).any():
        raise InputError(None, "truth cube does not overlap the cube", param="truth")
    return values
