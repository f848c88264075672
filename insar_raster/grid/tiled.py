"""Tiled gridding: country-sized grids with bounded memory, one dask task per tile.

The grid is cut into square tiles. Each tile takes the MPs inside its bounds plus a
*halo*, computes its own sparse weights (Delaunay, KD-tree...) and applies them to every
time chunk of the values matrix. Weights are local, so no task ever triangulates all
MPs, and a tile's output block depends only on its weights and one time chunk of values:
memory per task is ``tile cells x time_chunk + n_points x time_chunk`` floats.

Seams are invisible by construction, not by luck: a tile grows its halo (doubling) until
its result provably equals what one global computation would give for every cell that is
not masked:

- linear: every triangle that covers a needed cell is checked to be a triangle of the
  *global* Delaunay triangulation (its circumcircle holds no MP, including MPs outside
  the halo), and every needed cell inside the global convex hull must be covered;
- nearest / idw: the k-th nearest MP of every needed cell is closer than the halo width,
  so no MP outside the halo could be nearer.

"Needed" cells are those within ``max_gap`` of an MP (the others are NaN anyway). The
tiles are plain dask tasks, so the same graph runs on the local threaded scheduler (all
cores) or on a ``dask.distributed`` cluster.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import scipy.sparse as sp
import xarray as xr
from dask.highlevelgraph import HighLevelGraph
from scipy.spatial import ConvexHull, QhullError, cKDTree

from insar_raster.errors import InputError
from insar_raster.grid.gridders import BaseGridder, Triangulation, _barycentric_weights, make_gridder
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube

log = logging.getLogger("insar_raster")

#: Tile edge in cells: 256 x 256 x 32 epochs x 4 B = 8 MiB per output block, and a town
#: of 200k MPs already splits into several tiles to keep all cores busy.
DEFAULT_TILE_SIZE = 256
#: Methods whose weights can be computed tile by tile with exact seams.
TILED_METHODS = ("linear", "nearest", "idw")
#: Bytes of values (n_points x time_chunk float32) one task may hold; bounds time_chunk.
DEFAULT_SLAB_BYTES = 256 * 2**20


class PointIndex:
    """MP coordinates bucketed on square blocks, to select a rectangle's MPs quickly.

    Parameters
    ----------
    x, y : numpy.ndarray
        MP coordinates (m).
    block_size : float
        Block edge (m); about a quarter of a tile's extent works well.
    """

    def __init__(self, x, y, block_size: float):
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.n = len(x)
        self.bounds = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
        self.block = float(block_size)
        self.nbx = int((self.bounds[2] - self.bounds[0]) // self.block) + 1
        self.nby = int((self.bounds[3] - self.bounds[1]) // self.block) + 1
        key = self._by(y) * self.nbx + self._bx(x)
        self.order = np.argsort(key, kind="stable")
        self.x, self.y = x[self.order], y[self.order]
        self.starts = np.searchsorted(key[self.order], np.arange(self.nbx * self.nby + 1))
        self._token = dask.base.tokenize(x, y, self.block)

    def __dask_tokenize__(self):
        return ("PointIndex", self._token)

    def _bx(self, x):
        return np.clip(((np.asarray(x) - self.bounds[0]) // self.block).astype(np.int64), 0, self.nbx - 1)

    def _by(self, y):
        return np.clip(((np.asarray(y) - self.bounds[1]) // self.block).astype(np.int64), 0, self.nby - 1)

    def covers_all(self, west, south, east, north) -> bool:
        """Whether the rectangle contains every MP."""
        w, s, e, n = self.bounds
        return west <= w and south <= s and east >= e and north >= n

    def select(self, west, south, east, north) -> np.ndarray:
        """Indices (into the original arrays, ascending) of MPs inside the rectangle (inclusive)."""
        w, s, e, n = self.bounds
        if east < w or west > e or north < s or south > n:
            return np.empty(0, np.int64)
        bx0, bx1 = self._bx(west), self._bx(east)
        by0, by1 = self._by(south), self._by(north)
        # Blocks of one block-row are consecutive in the sorted order: one slice per row.
        rows = np.arange(by0, by1 + 1)
        lo = self.starts[rows * self.nbx + bx0]
        hi = self.starts[rows * self.nbx + bx1 + 1]
        pos = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if len(rows) else np.empty(0, np.int64)
        px, py = self.x[pos], self.y[pos]
        keep = (px >= west) & (px <= east) & (py >= south) & (py <= north)
        return np.sort(self.order[pos[keep]])

    def xy(self, idx) -> np.ndarray:
        """(n, 2) coordinates of MPs ``idx`` (original indices)."""
        inv = self._inverse()
        return np.column_stack([self.x[inv[idx]], self.y[inv[idx]]])

    def _inverse(self):
        if not hasattr(self, "_inv"):
            inv = np.empty(self.n, np.int64)
            inv[self.order] = np.arange(self.n)
            self._inv = inv
        return self._inv


@dataclass
class TileWeights:
    """Weights of one tile: ``displacement[tile] = weights @ values[point_index]``."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    weights: sp.csr_matrix  # (tile cells, len(point_index)) float32, masked rows empty
    point_index: np.ndarray  # global MP indices the weights read
    valid: np.ndarray  # (h, w) bool
    distance: np.ndarray  # (h, w) float32, m (exact up to the halo width)
    mp_count: np.ndarray  # (h, w) int32
    halo: float  # halo width finally used (m)
    n_local: int  # MPs inside tile + halo

    @property
    def shape(self):
        return (self.rows[1] - self.rows[0], self.cols[1] - self.cols[0])


def plan_tiles(grid_spec: GridSpec, tile_size: int = DEFAULT_TILE_SIZE) -> list[tuple[int, int, int, int]]:
    """Tiles as (row0, row1, col0, col1) cell ranges, row-major."""
    h, w = grid_spec.shape
    return [
        (r, min(r + tile_size, h), c, min(c + tile_size, w))
        for r in range(0, h, tile_size)
        for c in range(0, w, tile_size)
    ]


def _circumcircles(tri_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (m, 2) and radii (m,) of triangles (m, 3, 2)."""
    a, b, c = tri_xy[:, 0], tri_xy[:, 1], tri_xy[:, 2]
    b, c = b - a, c - a  # relative to a, for precision with large projected coordinates
    d = 2 * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
    b2, c2 = (b**2).sum(1), (c**2).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ux = (c[:, 1] * b2 - b[:, 1] * c2) / d
        uy = (b[:, 0] * c2 - c[:, 0] * b2) / d
    centre = np.column_stack([ux, uy])
    return centre + a, np.hypot(ux, uy)


def _in_hull(hull_equations: np.ndarray | None, xy: np.ndarray, tol: float) -> np.ndarray:
    if hull_equations is None:
        return np.ones(len(xy), bool)
    return (xy @ hull_equations[:, :2].T + hull_equations[:, 2] <= tol).all(axis=1)


def _linear_ok(index, local_idx, local_xy, spec, cells_xy, need, region, halo, hull_equations, resolution):
    """Linear weights for a tile, whether they provably equal the global ones, and (when
    not) a halo width (m) that would contain the triangles in doubt."""
    covers_all = index.covers_all(*region)
    try:
        tri = Triangulation(local_xy)
    except InputError:
        if covers_all:
            raise
        return None, False, None
    weights, simplex = _barycentric_weights(tri, spec)
    if covers_all:
        return weights, True, None
    # A needed cell inside the global hull must be covered by a local triangle.
    uncovered = need & (simplex < 0)
    if uncovered.any() and _in_hull(hull_equations, cells_xy[uncovered], 1e-9 * resolution).any():
        return weights, False, None
    used = np.unique(simplex[need & (simplex >= 0)])
    if len(used) == 0:
        return weights, True, None
    centre, radius = _circumcircles(local_xy[tri.simplices[used]])
    west, south, east, north = region
    dw, ds, de, dn = index.bounds
    # The part of a circle outside the MPs' bounding box holds no MP: clip to it.
    lo_x, hi_x = np.maximum(centre[:, 0] - radius, dw), np.minimum(centre[:, 0] + radius, de)
    lo_y, hi_y = np.maximum(centre[:, 1] - radius, ds), np.minimum(centre[:, 1] + radius, dn)
    inside = (lo_x >= west) & (hi_x <= east) & (lo_y >= south) & (hi_y <= north)
    # Circles inside the region hold no MP (every MP there is local and the local
    # triangulation is Delaunay). The others are checked against MPs outside the region.
    sus = np.flatnonzero(~inside & np.isfinite(radius))
    if (~np.isfinite(radius)).any():
        return weights, False, None
    if len(sus) == 0:
        return weights, True, None
    box = (lo_x[sus].min(), lo_y[sus].min(), hi_x[sus].max(), hi_y[sus].max())
    cand = index.select(*box)
    failing = sus
    if len(cand) <= max(4 * len(local_idx), 200_000):
        pxy = index.xy(cand)
        outside = ~((pxy[:, 0] >= west) & (pxy[:, 0] <= east) & (pxy[:, 1] >= south) & (pxy[:, 1] <= north))
        if not outside.any():
            return weights, True, None
        d, _ = cKDTree(pxy[outside]).query(centre[sus], k=1, workers=1)
        failing = sus[d < radius[sus] * (1 - 1e-9)]
        if len(failing) == 0:
            return weights, True, None
    # Halo that contains the failing circles (clipped to the MPs' extent).
    need_halo = np.max(
        np.maximum.reduce([west - lo_x[failing], hi_x[failing] - east, south - lo_y[failing], hi_y[failing] - north])
    )
    return weights, False, halo + max(need_halo, 0) + 2 * resolution


def tile_weights(
    index: PointIndex,
    grid_spec: GridSpec,
    tile,
    gridder: BaseGridder,
    halo: float,
    hull_equations: np.ndarray | None = None,
) -> TileWeights:
    """Weights of one tile, growing the halo until they equal the global ones (module doc).

    Parameters
    ----------
    index : PointIndex
        All MPs.
    grid_spec : GridSpec
        The whole output grid.
    tile : (row0, row1, col0, col1)
        Cell ranges of the tile.
    gridder : BaseGridder
        Unfitted gridder carrying method and parameters (``max_gap``, ``k``...).
    halo : float
        Initial halo width (m).
    hull_equations : numpy.ndarray, optional
        Convex hull of all MPs (``scipy.spatial.ConvexHull.equations``), for ``linear``.
    """
    r0, r1, c0, c1 = tile
    res = grid_spec.resolution
    spec = GridSpec(grid_spec.crs, res, grid_spec.west + c0 * res, grid_spec.north - r0 * res, c1 - c0, r1 - r0)
    cx, cy = spec.cell_centres()
    cells_xy = np.column_stack([cx, cy])
    tw, ts, te, tn = spec.bounds
    max_gap = gridder.max_gap
    while True:
        region = (tw - halo, ts - halo, te + halo, tn + halo)
        covers_all = index.covers_all(*region)
        local_idx = index.select(*region)
        if len(local_idx) == 0:
            if covers_all:
                raise InputError(None, "no measurement points to grid")
            halo *= 2
            continue
        local_xy = index.xy(local_idx)
        k_needed = gridder.k if gridder.method == "idw" else 1
        dist, _ = cKDTree(local_xy).query(cells_xy, k=min(k_needed, len(local_idx)), workers=1)
        dist = dist.reshape(len(cells_xy), -1)
        nearest = dist[:, 0]
        need = nearest <= max_gap
        suggested = None
        if gridder.method == "linear":
            weights, ok, suggested = _linear_ok(
                index, local_idx, local_xy, spec, cells_xy, need, region, halo, hull_equations, res
            )
        else:
            # Any MP outside the region is farther than the halo from every tile cell.
            enough = len(local_idx) >= k_needed
            ok = covers_all or (enough and (dist[need, -1] <= halo).all())
            weights = gridder._weights(local_xy, cells_xy) if ok else None
        if ok:
            break
        # Grow at least twofold (termination), or at once to what the doubtful triangles need.
        halo = max(2 * halo, suggested or 0.0)
    weights = weights.tocsr()
    valid = (np.diff(weights.indptr) > 0) & need
    weights = (sp.diags(valid.astype(np.float64)) @ weights).tocsr()
    weights.eliminate_zeros()
    # Keep only the MPs the weights read: a task then gathers fewer rows of values.
    used = np.unique(weights.indices)
    weights = weights[:, used].astype(np.float32).tocsr()
    # MP count per cell, with the same cell assignment as the untiled gridder.
    in_tile = index.select(tw, ts, te, tn)
    pxy = index.xy(in_tile)
    row, col = grid_spec.cell_index(pxy[:, 0], pxy[:, 1])
    row, col = row - r0, col - c0
    ok_cell = (col >= 0) & (col < c1 - c0) & (row >= 0) & (row < r1 - r0)
    count = np.bincount(row[ok_cell] * (c1 - c0) + col[ok_cell], minlength=len(cells_xy)).astype(np.int32)
    return TileWeights(
        rows=(r0, r1),
        cols=(c0, c1),
        weights=weights,
        point_index=local_idx[used],
        valid=valid.reshape(spec.shape),
        distance=nearest.reshape(spec.shape).astype(np.float32),
        mp_count=count.reshape(spec.shape),
        halo=float(halo),
        n_local=len(local_idx),
    )


def _apply(tile: TileWeights, slab) -> np.ndarray:
    """(n_points, t) values -> (t, h, w) block of the cube."""
    values = np.asarray(slab, dtype=np.float32)[tile.point_index]
    out = np.asarray(tile.weights @ values).T  # (t, cells)
    out[:, ~tile.valid.ravel()] = np.nan
    return np.ascontiguousarray(out.reshape((-1,) + tile.shape), dtype=np.float32)


def _layer(tile: TileWeights, name: str) -> np.ndarray:
    return getattr(tile, name)


def choose_time_chunk(n_points: int, time_chunk: int = 32, slab_bytes: int = DEFAULT_SLAB_BYTES) -> int:
    """Largest power of two <= ``time_chunk`` such that a values slab fits ``slab_bytes``."""
    fit = max(1, slab_bytes // max(1, 4 * n_points))
    tc = min(time_chunk, fit)
    return 2 ** int(math.floor(math.log2(max(1, tc))))


def grid_points_tiled(
    points: xr.Dataset,
    grid_spec: GridSpec,
    method: str = "linear",
    max_gap: float | None = None,
    time_chunk: int = 32,
    tile_size: int = DEFAULT_TILE_SIZE,
    halo: float | None = None,
    slab_bytes: int = DEFAULT_SLAB_BYTES,
    attrs: dict | None = None,
    **gridder_kwargs,
) -> xr.Dataset:
    """Grid a points Dataset tile by tile into a lazy cube (dask graph; nothing computed yet).

    Parameters
    ----------
    points : xarray.Dataset
        Points layout of :mod:`insar_raster.io.points`; ``displacement`` may be numpy or
        dask (e.g. from the Zarr cache of :mod:`insar_raster.io.cache`).
    grid_spec : GridSpec
        Output grid.
    method : {"linear", "nearest", "idw"}
        Interpolation (see :mod:`insar_raster.grid.gridders`).
    max_gap : float, optional
        Gap mask distance (m); default ``3 * resolution``.
    time_chunk : int
        Upper bound on epochs per block; lowered so that ``n_points x time_chunk`` float32
        values fit ``slab_bytes``.
    tile_size : int
        Tile edge in cells.
    halo : float, optional
        Initial halo width (m); default ``max(2 * max_gap, 10 * resolution)`` when
        ``max_gap`` is finite. Tiles grow it as needed.

    Returns
    -------
    xarray.Dataset
        Cube layout of :mod:`insar_raster.io.cube`, all variables dask-backed; the attrs
        ``tiles`` and ``tile_size`` record the tiling.
    """
    if method not in TILED_METHODS:
        raise InputError(
            None, f"method {method!r} cannot be tiled", f"use one of {', '.join(TILED_METHODS)}", param="method"
        )
    if tile_size < 16:
        raise InputError(None, f"must be at least 16 cells, got {tile_size}", param="tile_size")
    gridder = make_gridder(method, grid_spec, max_gap=max_gap, **gridder_kwargs)
    x, y = np.asarray(points.x.values, np.float64), np.asarray(points.y.values, np.float64)
    n_points, n_times = points.sizes["point"], points.sizes["time"]
    res = grid_spec.resolution
    if halo is None:
        halo = max(2 * gridder.max_gap, 10 * res) if math.isfinite(gridder.max_gap) else 50 * res
    index = PointIndex(x, y, block_size=max(tile_size * res / 4, halo))
    hull_equations = None
    if method == "linear":
        if n_points < 3:
            Triangulation(np.column_stack([x, y]))  # raises the user-facing error
        try:
            hull_equations = ConvexHull(np.column_stack([x, y])).equations
        except QhullError:
            raise InputError(
                None, "measurement points are collinear or coincident; cannot triangulate", "use method='nearest'"
            ) from None

    tiles = plan_tiles(grid_spec, tile_size)
    index_d = dask.delayed(index, pure=True)
    tile_tasks = [
        dask.delayed(tile_weights, pure=True)(index_d, grid_spec, t, gridder, halo, hull_equations) for t in tiles
    ]
    tc = choose_time_chunk(n_points, time_chunk, slab_bytes)
    values = points.displacement.data
    if not isinstance(values, da.Array):
        values = da.from_array(np.asarray(values, dtype=np.float32), chunks=(-1, tc))
    values = values.astype(np.float32).rechunk({0: -1, 1: tc})
    slab_keys = list(values.__dask_keys__()[0])  # one (n_points, tc) block per time chunk

    # One graph layer each: blocks (time chunk, tile row, tile col) and the (y, x) layers.
    ty_chunks = tuple(t[1] - t[0] for t in tiles[:: len(range(0, grid_spec.width, tile_size))])
    tx_chunks = tuple(t[3] - t[2] for t in tiles[: len(range(0, grid_spec.width, tile_size))])
    n_tx = len(tx_chunks)
    token = dask.base.tokenize(index, grid_spec, tiles, gridder.method, gridder.max_gap, halo, values.name)
    name = f"grid-tiles-{token}"
    dsk = {}
    for it, slab_key in enumerate(slab_keys):
        for j, task in enumerate(tile_tasks):
            dsk[(name, it, j // n_tx, j % n_tx)] = (_apply, task.key, slab_key)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[values, *tile_tasks])
    cube = da.Array(
        graph,
        name,
        chunks=(values.chunks[1], ty_chunks, tx_chunks),
        dtype=np.float32,
        meta=np.empty((0, 0, 0), np.float32),
    )

    def layer(attr, dtype):
        lname = f"grid-tiles-{attr}-{token}"
        ldsk = {(lname, j // n_tx, j % n_tx): (_layer, task.key, attr) for j, task in enumerate(tile_tasks)}
        lgraph = HighLevelGraph.from_collections(lname, ldsk, dependencies=tile_tasks)
        return da.Array(lgraph, lname, chunks=(ty_chunks, tx_chunks), dtype=dtype, meta=np.empty((0, 0), dtype))

    ds = make_cube(
        cube,
        points.time.values,
        grid_spec,
        extra={"mp_count": layer("mp_count", np.int32), "distance_to_mp": layer("distance", np.float32)},
        attrs={
            "method": method,
            "resolution": res,
            "max_gap": gridder.max_gap,
            "tiles": len(tiles),
            "tile_size": tile_size,
            **(attrs or {}),
        },
    )
    log.debug(
        "tiled gridding: %d MPs x %d epochs, %d tiles of %d cells, time chunk %d, initial halo %g m",
        n_points,
        n_times,
        len(tiles),
        tile_size,
        tc,
        halo,
    )
    return ds
