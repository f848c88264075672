"""The evaluation repeated across grid sizes, as the paper did (128, 256 and 512 cells)."""

from __future__ import annotations

import logging

import numpy as np
import xarray as xr

from insar_raster.evaluate.compare import evaluate_cube

log = logging.getLogger("insar_raster")


def resample_cube(cube: xr.Dataset, size: int) -> xr.Dataset:
    """The cube on a ``size`` x ``size`` grid over the same extent (bilinear, NaN-aware).

    Used by :func:`evaluate_resolutions` to repeat the study across grid sizes as the paper did
    (it regridded the points at 128, 256 and 512 cells). Cells whose bilinear
    neighbours include a masked cell stay masked.
    """
    from insar_raster.grid.spec import GridSpec
    from insar_raster.io.cube import CUBE_VARIABLE, grid_transform, make_cube

    transform = grid_transform(cube)
    height, width = cube.sizes["y"], cube.sizes["x"]
    extent = max(height * abs(transform.e), width * abs(transform.a))
    resolution = extent / size
    spec = GridSpec(
        cube.rio.crs,
        resolution,
        transform.c,
        transform.f,
        max(1, int(round(width * abs(transform.a) / resolution))),
        max(1, int(round(height * abs(transform.e) / resolution))),
    )
    da = cube[CUBE_VARIABLE].interp(x=spec.x, y=spec.y, method="linear", kwargs={"fill_value": None})
    return make_cube(
        np.asarray(da.values, dtype=np.float32),
        cube["time"].values,
        spec,
        attrs={k: v for k, v in cube.attrs.items() if k in ("source", "method")},
    )


def evaluate_resolutions(cube: xr.Dataset, sizes, truth: xr.Dataset | None = None, **options) -> tuple[list, dict]:
    """Repeat :func:`evaluate_cube` with the cube resampled to each grid size.

    Parameters
    ----------
    cube, truth : xarray.Dataset
    sizes : iterable of int
        Cells along the longer side, e.g. ``(128, 256, 512)`` as in the paper.
    **options
        Passed to :func:`evaluate_cube` (the permutation test is skipped).

    Returns
    -------
    study : list of dict
        Per size: ``size``, ``resolution_m``, ``shape``, ``rmse`` (per model, mm, vs
        the resampled observations).
    full : dict
        Per size (as a string): the JSON-ready results of that run.
    """
    from insar_raster.progress import StageBar

    sizes = list(sizes)
    bar = StageBar(len(sizes), "evaluate grid sizes", disable=not options.get("progress"))
    # One bar for the study: the runs at each size draw none of their own under it.
    options = {
        **options,
        "permutation_repeats": 0,
        "keep_arrays": False,
        "progress": bool(options.get("progress")) and not bar.active,
    }
    study, full = [], {}
    with bar:
        for size in sizes:
            log.info("evaluate: grid size %d", size)
            bar.stage(f"grid size {size}")
            small = resample_cube(cube, int(size))
            small_truth = resample_cube(truth, int(size)) if truth is not None else None
            res = evaluate_cube(small, truth=small_truth, **options)
            study.append(
                {
                    "size": int(size),
                    "resolution_m": res["cube"]["resolution_m"],
                    "shape": res["cube"]["shape"][1:],
                    "rmse": {n: m["observed"]["overall"]["rmse"] for n, m in res["models"].items()},
                }
            )
            full[str(size)] = res
    return study, full
