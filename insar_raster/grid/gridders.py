"""Gridders: sparse measurement points -> dense cube, one sparse matrix for all epochs.

MPs do not move between epochs, so each gridder computes its interpolation weights
ONCE as a sparse matrix ``W`` (cells x points) in :meth:`fit`; gridding every epoch is
then ``W @ values``, applied to time chunks with dask so that peak memory is bounded by
the chunk size, not by the number of epochs. (The paper's way, ``griddata`` per epoch,
re-triangulates the same points for every epoch.)

Every gridder masks cells farther than ``max_gap`` metres from the nearest MP: linear
interpolation must not invent deformation across the sea, lakes or empty fields.
"""

from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import scipy.sparse as sp
import shapely
import xarray as xr
from scipy.spatial import cKDTree

from insar_raster.errors import InputError
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube

log = logging.getLogger("insar_raster")

METHODS = ("linear", "nearest", "idw", "mean")


#: Cell-triangle candidates rasterised at once by :meth:`Triangulation.locate_cells`
#: (~150 B each, so ~40 MB per tile task): bounds memory when a few long triangles
#: bridge a wide gap at fine resolution.
LOCATE_BATCH = 250_000


class Triangulation:
    """Delaunay triangulation of the MPs: vertex indices and barycentric transforms.

    Built by GEOS (:func:`shapely.delaunay_triangles`), whose in-circle test is robust:
    the result is *the* Delaunay triangulation (unique up to exact ties), the same for a
    tile's MPs as for all MPs wherever the tile check of :mod:`insar_raster.grid.tiled`
    passes. Qhull (SciPy), which the paper's ``griddata`` uses, decides near-cocircular
    quadrilaterals in floating point: on 200k random MPs at EPSG:3035 coordinates it
    returned 6 triangles whose circumcircle strictly contains another MP (checked in
    integer arithmetic). GEOS is also faster: 0.8-0.9 s for those 200k MPs, index
    extraction included, against Qhull's 1.6 s (benchmarks/README.md).

    Attributes
    ----------
    points : numpy.ndarray
        (n, 2) MP coordinates (m).
    simplices : numpy.ndarray
        (m, 3) int64 indices into ``points``; duplicate MPs appear once.
    transform : numpy.ndarray
        (m, 3, 2) affine maps to barycentric coordinates, as ``scipy.spatial.Delaunay.transform``.
    """

    def __init__(self, points_xy: np.ndarray):
        """Triangulate ``points_xy`` (n, 2), m; raises :class:`InputError` (with what to
        do instead) for fewer than 3 MPs or MPs all on one line."""
        points_xy = np.ascontiguousarray(points_xy, dtype=np.float64)
        if len(points_xy) < 3:
            raise InputError(
                None,
                f"linear interpolation needs at least 3 measurement points, got {len(points_xy)}",
                "use method='nearest'",
            )
        # GEOS keeps input coordinates exactly, Z included: Z carries each MP's index
        # through the triangulation (no coordinate lookup afterwards).
        xyz = np.column_stack([points_xy, np.arange(len(points_xy), dtype=np.float64)])
        triangles = shapely.delaunay_triangles(shapely.multipoints(xyz))
        # Straight from the collection: each triangle is a closed ring of 4 vertices
        # (no per-triangle Python objects).
        ring = shapely.get_coordinates(triangles, include_z=True)[:, 2].reshape(-1, 4)
        if len(ring) == 0:
            raise InputError(
                None, "measurement points are collinear or coincident; cannot triangulate", "use method='nearest'"
            )
        self.points = points_xy
        self.simplices = ring[:, :3].astype(np.int64)
        self.transform = _barycentric_transforms(points_xy[self.simplices])

    def locate_cells(self, grid_spec: GridSpec) -> tuple[np.ndarray, np.ndarray]:
        """Triangle containing each cell centre of ``grid_spec`` and its barycentric weights.

        Each triangle is rasterised over the cell centres inside its bounding box (the
        centres form a lattice, so no search structure is needed); a centre on an edge
        shared by two triangles takes the first, which gives the same interpolated value.

        Returns
        -------
        simplex : numpy.ndarray
            (n_cells,) triangle index per cell in row-major (y, x) order, -1 outside the hull.
        bary : numpy.ndarray
            (n_cells, 3) barycentric weights of the triangle's vertices (0 outside).
        """
        gs = grid_spec
        v = self.points[self.simplices]  # (m, 3, 2)
        # Fractional cell indices of the vertices: centre of cell (r, c) is at (c, r).
        u = (v[..., 0] - gs.west) / gs.resolution - 0.5
        w = (gs.north - v[..., 1]) / gs.resolution - 0.5
        # A small margin: centres on an edge must not be lost to round-off here; the
        # barycentric test below decides.
        pad = 1e-9
        c0 = np.maximum(np.ceil(u.min(1) - pad), 0).astype(np.int64)
        c1 = np.minimum(np.floor(u.max(1) + pad), gs.width - 1).astype(np.int64)
        r0 = np.maximum(np.ceil(w.min(1) - pad), 0).astype(np.int64)
        r1 = np.minimum(np.floor(w.max(1) + pad), gs.height - 1).astype(np.int64)
        ncol = np.maximum(c1 - c0 + 1, 0)
        count = ncol * np.maximum(r1 - r0 + 1, 0)
        count[~np.isfinite(self.transform[:, 0, 0])] = 0  # degenerate (zero-area) triangles
        n_cells = gs.width * gs.height
        simplex = np.full(n_cells, -1, np.int64)
        bary = np.zeros((n_cells, 3))
        eps = 100 * np.finfo(float).eps  # SciPy's find_simplex tolerance
        todo = np.flatnonzero(count)
        # Batches of about LOCATE_BATCH candidates: triangles whose running total of
        # candidates ends in the same multiple of it.
        batch = (np.cumsum(count[todo]) - 1) // LOCATE_BATCH
        for ids in np.split(todo, np.flatnonzero(np.diff(batch)) + 1):
            n = count[ids]
            tri_id = np.repeat(ids, n)
            offset = np.arange(len(tri_id)) - np.repeat(np.cumsum(n) - n, n)
            col = c0[tri_id] + offset % ncol[tri_id]
            row = r0[tri_id] + offset // ncol[tri_id]
            t = self.transform[tri_id]
            dx = gs.west + (col + 0.5) * gs.resolution - t[:, 2, 0]
            dy = gs.north - (row + 0.5) * gs.resolution - t[:, 2, 1]
            b0 = t[:, 0, 0] * dx + t[:, 0, 1] * dy
            b1 = t[:, 1, 0] * dx + t[:, 1, 1] * dy
            b2 = 1 - b0 - b1
            inside = np.flatnonzero((b0 >= -eps) & (b1 >= -eps) & (b2 >= -eps))
            cell = row[inside] * gs.width + col[inside]
            # A centre on a shared edge or vertex: the first triangle found keeps it.
            cell, first = np.unique(cell, return_index=True)
            new = simplex[cell] < 0
            cell, pick = cell[new], inside[first[new]]
            simplex[cell] = tri_id[pick]
            bary[cell] = np.column_stack([b0[pick], b1[pick], b2[pick]])
        return simplex, bary


def _barycentric_transforms(v: np.ndarray) -> np.ndarray:
    """Affine maps to barycentric coordinates of triangles ``v`` (m, 3, 2), as
    ``scipy.spatial.Delaunay.transform``: (m, 3, 2). Degenerate triangles get NaN."""
    a = v[:, 0, 0] - v[:, 2, 0]
    b = v[:, 1, 0] - v[:, 2, 0]
    c = v[:, 0, 1] - v[:, 2, 1]
    d = v[:, 1, 1] - v[:, 2, 1]
    det = a * d - b * c
    scale = np.maximum(np.abs(a * d), np.abs(b * c))
    with np.errstate(divide="ignore", invalid="ignore"):
        det = np.where(np.abs(det) > 1e3 * np.finfo(float).eps * scale, det, np.nan)
        out = np.empty((len(v), 3, 2))
        out[:, 0, 0], out[:, 0, 1] = d / det, -b / det
        out[:, 1, 0], out[:, 1, 1] = -c / det, a / det
    out[:, 2] = v[:, 2]
    return np.ascontiguousarray(out)


def _barycentric_weights(tri: Triangulation, grid_spec: GridSpec) -> tuple[sp.csr_matrix, np.ndarray]:
    """Barycentric weights of each cell centre of ``grid_spec`` in its triangle of ``tri``
    (rows outside the hull are empty), and the triangle index of each cell (-1 outside)."""
    simplex, bary = tri.locate_cells(grid_spec)
    inside = np.flatnonzero(simplex >= 0)
    cols = tri.simplices[simplex[inside]]
    rows = np.repeat(inside, 3)
    matrix = sp.csr_matrix((bary[inside].ravel(), (rows, cols.ravel())), shape=(len(simplex), len(tri.points)))
    return matrix, simplex


def _linear_weights(points_xy: np.ndarray, grid_spec: GridSpec) -> sp.csr_matrix:
    """Barycentric weights of each cell centre in its Delaunay triangle (rows outside the hull are empty)."""
    return _barycentric_weights(Triangulation(points_xy), grid_spec)[0]


class BaseGridder:
    """Common machinery: fit computes ``weights_`` once; grid applies it to all epochs.

    Parameters
    ----------
    grid_spec : GridSpec
        Output grid (projected CRS, metres).
    max_gap : float or None
        Cells farther than this (m) from the nearest MP are NaN. Default
        ``3 * resolution``; ``numpy.inf`` disables the gap mask. (Unlike verde, the
        default is resolved and checked here, so ``max_gap`` holds the distance used.)

    Attributes
    ----------
    weights_ : scipy.sparse.csr_matrix
        (cells, MPs) float32 weights, rows of masked cells empty.
    valid_ : numpy.ndarray
        (cells,) bool, cells with a value (weights and within ``max_gap``).
    distance_ : numpy.ndarray
        (rows, columns) float32 distance (m) from each cell centre to the nearest MP.
    mp_count_ : numpy.ndarray
        (rows, columns) MPs inside each cell.
    data_ : array-like
        The ``data`` given to :meth:`fit`, for :meth:`grid`.
    """

    method = "base"

    def __init__(self, grid_spec: GridSpec, max_gap: float | None = None):
        self.grid_spec = grid_spec
        self.max_gap = 3 * grid_spec.resolution if max_gap is None else float(max_gap)
        if not self.max_gap > 0:
            raise InputError(None, f"must be positive, got {max_gap}", param="max_gap")

    # Subclasses: (n_cells, n_points) sparse weights whose rows sum to 1 (or are empty).
    def _weights(self, points_xy: np.ndarray, cells_xy: np.ndarray) -> sp.csr_matrix:  # pragma: no cover
        raise NotImplementedError

    def fit(self, coordinates, data=None):
        """Compute interpolation weights for MPs at ``coordinates``.

        Parameters
        ----------
        coordinates : tuple of arrays (x, y)
            MP coordinates in the grid's CRS (m).
        data : array-like (n_points, n_times), optional
            Displacement (mm); numpy or dask. Kept for :meth:`grid`.
        """
        x, y = (np.asarray(c, dtype=np.float64) for c in coordinates)
        points_xy = np.column_stack([x, y])
        cx, cy = self.grid_spec.cell_centres()
        cells_xy = np.column_stack([cx, cy])
        distance, _ = cKDTree(points_xy).query(cells_xy, k=1, workers=-1)
        weights = self._weights(points_xy, cells_xy).tocsr()
        has_weight = np.diff(weights.indptr) > 0
        self.valid_ = has_weight & (distance <= self.max_gap)
        # Zero the masked rows so W @ v never reads them; NaN is set after the product.
        weights = sp.diags(self.valid_.astype(np.float64)) @ weights
        weights.eliminate_zeros()
        self.weights_ = weights.astype(np.float32).tocsr()
        self.distance_ = distance.reshape(self.grid_spec.shape).astype(np.float32)
        gs = self.grid_spec
        row, col = gs.cell_index(x, y)
        inside = (col >= 0) & (col < gs.width) & (row >= 0) & (row < gs.height)
        self.mp_count_ = (
            np.bincount(row[inside] * gs.width + col[inside], minlength=gs.width * gs.height)
            .reshape(gs.shape)
            .astype(np.int32)
        )
        self.data_ = data
        return self

    def _apply_block(self, block: np.ndarray) -> np.ndarray:
        """(n_points, t) -> (t, H, W): one time chunk through the sparse weights."""
        out = (self.weights_ @ np.asarray(block, dtype=np.float32)).T  # (t, n_cells)
        out[:, ~self.valid_] = np.nan
        return out.reshape((-1,) + self.grid_spec.shape).astype(np.float32, copy=False)

    def predict(self, data) -> da.Array:
        """Lazy (time, y, x) cube for ``data`` (n_points, n_times) at the fitted MPs."""
        if not isinstance(data, da.Array):
            data = da.from_array(np.asarray(data, dtype=np.float32), chunks=(-1, 32))
        data = data.rechunk({0: -1})  # all points in each block; chunks only along time
        h, w = self.grid_spec.shape
        return da.map_blocks(
            lambda b: self._apply_block(b),
            data,
            dtype=np.float32,
            chunks=(data.chunks[1], (h,), (w,)),
            drop_axis=0,
            new_axis=[1, 2],
            meta=np.empty((0, 0, 0), np.float32),
        )

    def grid(self, times, data=None, attrs: dict | None = None) -> xr.Dataset:
        """Cube Dataset (lazy, dask-backed) with ``mp_count`` and ``distance_to_mp`` layers.

        Parameters
        ----------
        times : array-like of datetime64
            Acquisition dates of the data columns.
        data : array-like (n_points, n_times), optional
            Defaults to the data given to :meth:`fit`.
        """
        data = self.data_ if data is None else data
        if data is None:
            raise ValueError("no data: pass it to fit() or grid()")
        cube = self.predict(data)
        return make_cube(
            cube,
            times,
            self.grid_spec,
            extra={"mp_count": self.mp_count_, "distance_to_mp": self.distance_},
            attrs={
                "method": self.method,
                "resolution": self.grid_spec.resolution,
                "max_gap": self.max_gap,
                **(attrs or {}),
            },
        )


class LinearGridder(BaseGridder):
    """Delaunay triangulation + barycentric (linear) weights, as in the paper."""

    method = "linear"

    def _weights(self, points_xy, cells_xy):
        return _linear_weights(points_xy, self.grid_spec)


class NearestGridder(BaseGridder):
    """Value of the nearest MP."""

    method = "nearest"

    def _weights(self, points_xy, cells_xy):
        _, idx = cKDTree(points_xy).query(cells_xy, k=1, workers=-1)
        n = len(cells_xy)
        return sp.csr_matrix((np.ones(n), (np.arange(n), idx)), shape=(n, len(points_xy)))


class IDWGridder(BaseGridder):
    """Inverse-distance weighting of the ``k`` nearest MPs (power ``power``).

    Parameters
    ----------
    grid_spec, max_gap
        As :class:`BaseGridder`.
    k : int
        Neighbours per cell.
    power : float
        Distance exponent; 2 is the usual choice.
    """

    method = "idw"

    def __init__(self, grid_spec, max_gap=None, k: int = 8, power: float = 2.0):
        super().__init__(grid_spec, max_gap)
        self.k, self.power = k, power

    def _weights(self, points_xy, cells_xy):
        k = min(self.k, len(points_xy))
        dist, idx = cKDTree(points_xy).query(cells_xy, k=k, workers=-1)
        dist, idx = dist.reshape(len(cells_xy), k), idx.reshape(len(cells_xy), k)
        # A cell centre sitting on an MP takes its value (avoid 1/0).
        w = 1.0 / np.maximum(dist, 1e-6 * self.grid_spec.resolution) ** self.power
        w /= w.sum(axis=1, keepdims=True)
        rows = np.repeat(np.arange(len(cells_xy)), k)
        return sp.csr_matrix((w.ravel(), (rows, idx.ravel())), shape=(len(cells_xy), len(points_xy)))


class BlockMeanGridder(BaseGridder):
    """Mean of the MPs inside each cell (like EGMS L3); empty cells interpolated linearly
    from the neighbouring cell means. Still one sparse matrix: ``W = L @ M`` where ``M``
    averages MPs into occupied cells and ``L`` interpolates between occupied cells."""

    method = "mean"

    def _weights(self, points_xy, cells_xy):
        gs = self.grid_spec
        col = np.floor((points_xy[:, 0] - gs.west) / gs.resolution).astype(np.int64)
        row = np.floor((gs.north - points_xy[:, 1]) / gs.resolution).astype(np.int64)
        inside = np.flatnonzero((col >= 0) & (col < gs.width) & (row >= 0) & (row < gs.height))
        cell = row[inside] * gs.width + col[inside]
        occupied, codes = np.unique(cell, return_inverse=True)
        counts = np.bincount(codes)
        mean = sp.csr_matrix((1.0 / counts[codes], (codes, inside)), shape=(len(occupied), len(points_xy)))
        if len(occupied) >= 3:
            try:
                interp = _linear_weights(cells_xy[occupied], gs)
            except InputError:  # occupied cells collinear: fall back to nearest occupied cell
                interp = NearestGridder(gs)._weights(cells_xy[occupied], cells_xy)
        else:
            interp = NearestGridder(gs)._weights(cells_xy[occupied], cells_xy)
        # Occupied cells keep their exact mean (barycentric weights already give that,
        # but make it explicit against round-off).
        interp = interp.tolil()
        for i, c in enumerate(occupied):
            interp.rows[c], interp.data[c] = [i], [1.0]
        return interp.tocsr() @ mean


_GRIDDERS = {g.method: g for g in (LinearGridder, NearestGridder, IDWGridder, BlockMeanGridder)}


def make_gridder(method: str, grid_spec: GridSpec, max_gap: float | None = None, **kwargs) -> BaseGridder:
    """Gridder object for ``method`` in ``linear``, ``nearest``, ``idw``, ``mean``."""
    try:
        cls = _GRIDDERS[method]
    except KeyError:
        raise InputError(
            None, f"unknown method {method!r}", f"choose one of {', '.join(METHODS)}", param="method"
        ) from None
    return cls(grid_spec, max_gap=max_gap, **kwargs)
