"""Gridding a points Dataset into a cube: the one entry point, :func:`grid_points`.

It chooses between one global computation (a gridder of :mod:`.gridders` fitted on
all MPs) and tiles with halos (:mod:`.tiled`) by the size of the grid and the point
set, and applies the bounds.
"""

from __future__ import annotations

import logging
import warnings

import dask.array as da
import numpy as np
import xarray as xr

from insar_raster.errors import InputError
from insar_raster.grid.gridders import make_gridder
from insar_raster.grid.spec import GridSpec
from insar_raster.grid.tiled import DEFAULT_TILE_SIZE, TILED_METHODS, grid_points_tiled

log = logging.getLogger("insar_raster")

#: Above these sizes grid_points tiles by default (small inputs keep the simple path:
#: at 200k MPs one global triangulation took 7.8 s CPU against 11.6 s for tiles with
#: halos, benchmarks/grid_speed.py; tiles pay off in memory and cores at scale).
AUTO_TILE_CELLS = 1024 * 1024
AUTO_TILE_POINTS = 500_000


def use_tiling(grid_spec: GridSpec, n_points: int, method: str, tile_size: int | None = None) -> int:
    """Tile edge (cells) to use, or 0 for one global computation.

    ``tile_size`` 0 forces the global path, a positive value forces tiling; ``None``
    tiles when the grid exceeds :data:`AUTO_TILE_CELLS` cells or the points
    :data:`AUTO_TILE_POINTS`, for methods that can be tiled exactly.
    """
    if tile_size is not None:
        if tile_size and method not in TILED_METHODS:
            raise InputError(
                None, f"method {method!r} cannot be tiled", f"use one of {', '.join(TILED_METHODS)}", param="tile_size"
            )
        return int(tile_size)
    if method not in TILED_METHODS:
        return 0
    big = grid_spec.width * grid_spec.height > AUTO_TILE_CELLS or n_points > AUTO_TILE_POINTS
    return DEFAULT_TILE_SIZE if big else 0


def grid_points(
    points: xr.Dataset,
    grid_spec: GridSpec | None = None,
    method: str = "linear",
    resolution: float | None = 100.0,
    shape: tuple[int, int] | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    max_gap: float | None = None,
    time_chunk: int = 32,
    tile_size: int | None = None,
) -> xr.Dataset:
    """Grid a points Dataset (see :mod:`insar_raster.io.points`) into a lazy cube.

    Parameters
    ----------
    points : xarray.Dataset
        Measurement points in a projected CRS.
    grid_spec : GridSpec, optional
        Output grid; built from ``resolution``/``shape``/``bounds`` when omitted.
    method : str
        ``linear`` (the paper), ``nearest``, ``idw`` or ``mean`` (block mean + linear fill).
    max_gap : float, optional
        Gap mask distance (m); default ``3 * resolution``.
    time_chunk : int
        Epochs per dask chunk: peak memory is about
        ``time_chunk * 4 B * (n_points + n_cells)`` (tiled: ``n_cells`` of one tile, and
        ``time_chunk`` lowered for very many MPs).
    tile_size : int, optional
        Tile edge in cells for tiled gridding (:mod:`insar_raster.grid.tiled`); ``0``
        disables tiling. Default: tiles of :data:`~insar_raster.grid.tiled.DEFAULT_TILE_SIZE`
        when the grid or the point set is large (:func:`use_tiling`), else one global
        computation.

    Returns
    -------
    xarray.Dataset
        Cube layout of :mod:`insar_raster.io.cube`, dask-backed ``displacement``.
    """
    crs = points.rio.crs
    x, y = points.x.values, points.y.values
    if grid_spec is None:
        grid_spec = GridSpec.from_points(x, y, crs, resolution=resolution, shape=shape, bounds=bounds)
    if bounds is not None:
        west, south, east, north = bounds
        row, col = grid_spec.cell_index(x, y)  # on the grid: a point on its east/south edge is not
        inside = (x >= west) & (x <= east) & (y >= south) & (y <= north)
        inside &= (row >= 0) & (row < grid_spec.height) & (col >= 0) & (col < grid_spec.width)
        if not inside.any():
            raise InputError(
                None,
                f"bounds {tuple(bounds)} contain no measurement point",
                f"the points span {x.min():.0f},{y.min():.0f},{x.max():.0f},{y.max():.0f}",
                param="bounds",
            )
        if not inside.all():
            box = ",".join(f"{v:.10g}" for v in bounds)
            warnings.warn(f"ignored {int((~inside).sum())} measurement point(s) outside bounds={box}", stacklevel=2)
            points = points.isel(point=np.flatnonzero(inside))
            x, y = x[inside], y[inside]
    attrs = {
        "source": points.attrs.get("source", ""),
        "product": points.attrs.get("product", ""),
        **{k: points.attrs[k] for k in ("product_level", "track", "pass_direction") if k in points.attrs},
    }
    # Provenance of the bad rows dropped by the readers (insar_raster.io.sanitize).
    attrs.update({k: v for k, v in points.attrs.items() if k.startswith("coordinate_outliers_")})
    tile_size = use_tiling(grid_spec, len(x), method, tile_size)
    if tile_size:
        cube = grid_points_tiled(
            points, grid_spec, method=method, max_gap=max_gap, time_chunk=time_chunk, tile_size=tile_size, attrs=attrs
        )
        log.info(
            "gridding %d MPs x %d epochs onto %dx%d cells at %g m (%s) in %d tiles of %d cells",
            len(x),
            points.sizes["time"],
            grid_spec.height,
            grid_spec.width,
            grid_spec.resolution,
            method,
            cube.attrs["tiles"],
            tile_size,
        )
        return cube
    gridder = make_gridder(method, grid_spec, max_gap=max_gap)
    gridder.fit((x, y))
    if not gridder.valid_.any():
        # A cube of NaN only (a grid whose cell centres all miss the points' triangles,
        # e.g. shape 20x1 over a strip of MPs) was written with exit 0; forecast refused it later.
        raise InputError(
            None,
            f"no cell of the {grid_spec.height}x{grid_spec.width} grid at {grid_spec.resolution:g} m gets a value "
            f"({method} interpolation, cells farther than {gridder.max_gap:g} m from every MP left empty)",
            "use method='nearest', or a grid with more cells over the points",
        )
    values = points.displacement.data
    values = values if isinstance(values, da.Array) else da.from_array(values, chunks=(-1, time_chunk))
    cube = gridder.grid(points.time.values, values.rechunk({0: -1, 1: time_chunk}), attrs=attrs)
    valid = float(gridder.valid_.mean())
    log.info(
        "gridded %d MPs x %d epochs onto %dx%d cells at %g m (%s); %.0f%% of cells have a value (max gap %g m)",
        len(x),
        points.sizes["time"],
        grid_spec.height,
        grid_spec.width,
        grid_spec.resolution,
        method,
        100 * valid,
        gridder.max_gap,
    )
    return cube
