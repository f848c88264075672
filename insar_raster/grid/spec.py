"""Grid specification: a north-up raster grid in a projected CRS."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pyproj import CRS
from rasterio.transform import Affine

from insar_raster.errors import InputError

# Sparse weight matrices, rasterio and GDAL index cells with 32-bit integers; a grid this
# large is also far beyond any machine's memory. Refuse it up front with a clear message
# instead of failing deep inside NumPy/SciPy (or swapping for hours).
MAX_CELLS = 2**31 - 1


@dataclass(frozen=True)
class GridSpec:
    """A north-up grid of square cells.

    Attributes
    ----------
    crs : pyproj.CRS
        Projected CRS of the grid (metres).
    resolution : float
        Cell size in metres.
    west, north : float
        Coordinates of the outer upper-left corner, metres.
    width, height : int
        Number of columns and rows.
    """

    crs: CRS
    resolution: float
    west: float
    north: float
    width: int
    height: int

    def __repr__(self) -> str:
        return (
            f"GridSpec(crs={CRS.from_user_input(self.crs).to_string()!r}, resolution={self.resolution:g}, "
            f"west={self.west:g}, north={self.north:g}, width={self.width}, height={self.height})"
        )

    def __post_init__(self):
        if not (self.resolution > 0 and math.isfinite(self.resolution)):
            raise InputError(None, f"must be a positive number of metres, got {self.resolution}", param="resolution")
        if self.width < 1 or self.height < 1:
            raise InputError(None, f"grid must have at least 1x1 cells, got {self.height}x{self.width}", param="shape")
        _check_size(self.height, self.width, "shape")

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in cells."""
        return (self.height, self.width)

    @property
    def transform(self) -> Affine:
        """Affine transform from (col, row) to (x, y) of the cell corner."""
        return Affine(self.resolution, 0.0, self.west, 0.0, -self.resolution, self.north)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in metres."""
        return (
            self.west,
            self.north - self.height * self.resolution,
            self.west + self.width * self.resolution,
            self.north,
        )

    @property
    def x(self) -> np.ndarray:
        """Cell-centre x coordinates (m), ascending."""
        return self.west + (np.arange(self.width) + 0.5) * self.resolution

    @property
    def y(self) -> np.ndarray:
        """Cell-centre y coordinates (m), descending (north-up)."""
        return self.north - (np.arange(self.height) + 0.5) * self.resolution

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Flattened (x, y) of all cell centres in row-major (y, x) order."""
        xx, yy = np.meshgrid(self.x, self.y)
        return xx.ravel(), yy.ravel()

    @classmethod
    def from_points(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        crs,
        resolution: float | None = 100.0,
        shape: tuple[int, int] | None = None,
        bounds: tuple[float, float, float, float] | None = None,
    ) -> "GridSpec":
        """Grid covering ``bounds`` (default: the points' extent).

        With ``resolution`` the corners snap outward to multiples of it, so grids of
        neighbouring runs line up (as EGMS L3 does); given ``bounds`` on multiples of it are
        the grid's edges (cells are half-open: a point on the east or south edge belongs to
        the next grid). With ``shape=(H, W)`` (the paper's
        256x256) the square cell size is the smallest that covers the extent.
        """
        crs = CRS.from_user_input(crs)
        given = bounds is not None
        if bounds is None:
            if len(x) == 0:
                raise InputError(None, "no measurement points to grid")
            bounds = (float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y)))
        west, south, east, north = map(float, bounds)
        if not (east >= west and north >= south):
            raise InputError(
                None, f"expected west,south,east,north with east>=west and north>=south, got {bounds}", param="bounds"
            )
        if shape is not None:
            height, width = shape
            if height < 1 or width < 1:
                raise InputError(None, f"grid must have at least 1x1 cells, got {height}x{width}", param="shape")
            _check_size(height, width, "shape")
            res = max((east - west) / width, (north - south) / height)
            res = res if res > 0 else 1.0
            # Centre the grid on the extent. With the exact fit the extent's east/south
            # edges fall ON the grid edge, outside the last cell (floor((east-west)/res) == W),
            # so those MPs would be missing from mp_count and the block means: widen the cells
            # by the least amount that puts every edge inside a cell.
            cx, cy = (west + east) / 2, (south + north) / 2
            bump = 2.0**-40
            while not _inside(
                west, south, east, north, cx - width * res / 2, cy + height * res / 2, res, width, height
            ):
                res *= 1 + bump
                bump *= 4
            return cls(crs, res, cx - width * res / 2, cy + height * res / 2, width, height)
        if resolution is None or not (resolution > 0 and math.isfinite(resolution)):
            raise InputError(None, f"must be a positive number of metres, got {resolution}", param="resolution")
        res = float(resolution)
        west_s = math.floor(west / res) * res
        north_s = math.ceil(north / res) * res
        # floor(...) + 1 so that a point on the east/south edge still falls in a cell.
        # Float rounding can put the snapped corner a hair inside the extent: step out.
        # (Compared directly: a difference of a subnormal number divided by res underflows to 0.)
        if west_s > west or math.floor((west - west_s) / res) < 0:
            west_s -= res
        if north_s < north or math.floor((north_s - north) / res) < 0:
            north_s += res
        if given:
            # Bounds given: the grid ends at them (snapped outward), so bounds on multiples
            # of the resolution (an EGMS 100 km tile: 3200000,3400000,3300000,3500000) give
            # exactly their cells (1000 x 1000), not one more column and row.
            width_f = max(1, math.ceil((east - west_s) / res - 1e-9))
            height_f = max(1, math.ceil((north_s - south) / res - 1e-9))
        else:
            # The points' own extent: floor(...) + 1 so a point on the east/south edge still
            # falls in a cell.
            width_f = math.floor((east - west_s) / res) + 1
            height_f = math.floor((north_s - south) / res) + 1
        _check_size(
            height_f,
            width_f,
            "resolution",
            f"{res:g} m over an extent of {east - west:.6g} x {north - south:.6g} m",
            "use a coarser resolution or smaller bounds",
        )
        return cls(crs, res, west_s, north_s, int(width_f), int(height_f))

    @classmethod
    def from_cube(cls, cube) -> "GridSpec":
        """The grid of a cube (or any north-up gridded Dataset/DataArray with a CRS)."""
        from insar_raster.io.layout import grid_transform

        transform = grid_transform(cube)
        return cls(cube.rio.crs, abs(transform.a), transform.c, transform.f, cube.sizes["x"], cube.sizes["y"])

    def cell_index(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) int64 of the cells holding points ``x``, ``y`` (metres); outside the
        grid they fall below 0 or at/after ``height``/``width``. A point on a cell's west or
        north edge belongs to that cell: the one cell-assignment rule of every gridder."""
        col = np.floor((np.asarray(x) - self.west) / self.resolution).astype(np.int64)
        row = np.floor((self.north - np.asarray(y)) / self.resolution).astype(np.int64)
        return row, col


def _check_size(height, width, param: str, what: str | None = None, hint: str | None = None) -> None:
    if height * width > MAX_CELLS:
        what = f"{what} gives" if what else "grid of"
        raise InputError(
            None,
            f"{what} {height:.0f} x {width:.0f} cells, more than a grid may have ({MAX_CELLS})",
            hint or "use fewer, larger cells",
            param=param,
        )


def _inside(west, south, east, north, grid_west, grid_north, res, width, height) -> bool:
    """Whether the extent's corners fall in cells, by the gridders' own cell-index formula."""
    cols = [math.floor((v - grid_west) / res) for v in (west, east)]
    rows = [math.floor((grid_north - v) / res) for v in (north, south)]
    return all(0 <= c < width for c in cols) and all(0 <= r < height for r in rows)
