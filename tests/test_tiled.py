"""Tiled gridding: tiles with halos must give exactly the global result (no seams)."""

import numpy as np
import pytest
import xarray as xr

from insar_raster.errors import InputError
from insar_raster.gis.write import write_cube
from insar_raster.grid.gridders import make_gridder
from insar_raster.grid.gridding import grid_points, use_tiling
from insar_raster.grid.spec import GridSpec
from insar_raster.grid.tiled import PointIndex, grid_points_tiled, plan_tiles, tile_weights
from insar_raster.io.cube import open_cube
from insar_raster.io.points import make_points

RES = 100.0


@pytest.fixture(scope="module")
def coastal_points():
    """MPs with a deep bay, a lake and a sparse field: triangles that cross tile borders
    and span gaps wider than the initial halo."""
    rng = np.random.default_rng(11)
    n = 6000
    x = rng.uniform(0, 7000, n)
    y = rng.uniform(0, 6000, n)
    bay = (x > 2500) & (x < 4500) & (y > 3000)  # opens to the north edge
    lake = (x - 5500) ** 2 + (y - 1500) ** 2 < 800**2
    sparse = (x < 1500) & (y < 2000) & (rng.random(n) < 0.9)
    keep = ~(bay | lake | sparse)
    x, y = x[keep] + 3_200_000, y[keep] + 3_400_000
    times = np.datetime64("2020-01-01") + np.arange(20) * np.timedelta64(12, "D")
    values = (np.sin(x / 900.0)[:, None] * np.arange(20) + (y / 1000.0)[:, None]).astype(np.float32)
    values += rng.normal(0, 0.5, values.shape).astype(np.float32)
    return make_points(x, y, values, times, "EPSG:3035")


def _grid_spec(points):
    return GridSpec.from_points(points.x.values, points.y.values, points.rio.crs, resolution=RES)


@pytest.mark.parametrize("method,max_gap", [("linear", None), ("linear", 2000.0), ("nearest", None), ("idw", 400.0)])
def test_tiles_equal_global_computation(coastal_points, method, max_gap):
    gs = _grid_spec(coastal_points)
    ref = grid_points(coastal_points, grid_spec=gs, method=method, max_gap=max_gap, tile_size=0).compute()
    # 16-cell tiles: every fourth row/column of cells is next to a seam.
    tiled = grid_points_tiled(coastal_points, gs, method=method, max_gap=max_gap, tile_size=16, time_chunk=8).compute()
    assert tiled.attrs["tiles"] == len(plan_tiles(gs, 16)) > 9
    got, want = tiled.displacement.values, ref.displacement.values
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isfinite(want).mean() > 0.5
    np.testing.assert_allclose(got, want, atol=1e-4, equal_nan=True)
    np.testing.assert_array_equal(tiled.mp_count.values, ref.mp_count.values)
    near = ref.distance_to_mp.values <= ref.attrs["max_gap"]
    np.testing.assert_allclose(tiled.distance_to_mp.values[near], ref.distance_to_mp.values[near], rtol=1e-6)
    # Same georeferencing as the untiled cube.
    assert tiled.rio.crs == ref.rio.crs and tiled.rio.transform() == ref.rio.transform()


@pytest.mark.parametrize("spacing,resolution", [(70.0, 100.0), (100.0, 50.0)])
def test_tiles_equal_global_on_a_regular_lattice(spacing, resolution):
    """EGMS L3 ships MPs on a regular grid: every square of four MPs is cocircular, so both
    of its diagonals are Delaunay. Tile and global triangulations must still pick the same
    ones, or noisy values differ by millimetres along the seams (Qhull did: 2943 cells)."""
    rng = np.random.default_rng(1)
    xx, yy = np.meshgrid(np.arange(0, 6000, spacing), np.arange(0, 5000, spacing))
    keep = rng.random(xx.size) < 0.8  # holes: empty cells are interpolated across squares
    x, y = xx.ravel()[keep] + 3_200_000.0, yy.ravel()[keep] + 3_400_000.0
    times = np.datetime64("2020-01-01") + np.arange(3) * np.timedelta64(12, "D")
    values = rng.normal(0, 3, (len(x), 3)).astype(np.float32)  # far from planar across a square
    points = make_points(x, y, values, times, "EPSG:3035")
    gs = GridSpec.from_points(x, y, points.rio.crs, resolution=resolution)
    want = grid_points(points, grid_spec=gs, tile_size=0).compute().displacement.values
    got = grid_points_tiled(points, gs, tile_size=16).compute().displacement.values
    assert np.isfinite(want).mean() > 0.9
    np.testing.assert_allclose(got, want, atol=1e-4, equal_nan=True)


def test_halo_grows_across_a_gap_wider_than_the_initial_halo(coastal_points):
    """With a 200 m initial halo, tiles next to the 2 km bay must grow it to reproduce the
    big global triangles spanning the bay; a fixed small halo would leave seams."""
    gs = _grid_spec(coastal_points)
    x, y = coastal_points.x.values, coastal_points.y.values
    index = PointIndex(x, y, 800.0)
    from scipy.spatial import ConvexHull

    hull = ConvexHull(np.c_[x, y]).equations
    gridder = make_gridder("linear", gs, max_gap=2000.0)
    tiles = [tile_weights(index, gs, t, gridder, 200.0, hull) for t in plan_tiles(gs, 16)]
    assert max(t.halo for t in tiles) >= 800.0
    assert min(t.halo for t in tiles) == 200.0  # dense interior tiles keep the small halo
    ref = grid_points(coastal_points, grid_spec=gs, max_gap=2000.0, tile_size=0).compute()
    values = coastal_points.displacement.values[:, 7]
    for t in tiles:
        block = np.asarray(t.weights @ values[t.point_index]).reshape(t.shape)
        block[~t.valid] = np.nan
        want = ref.displacement.values[7, t.rows[0] : t.rows[1], t.cols[0] : t.cols[1]]
        np.testing.assert_allclose(block, want, atol=1e-4, equal_nan=True)


def test_distributed_cluster_writes_identical_cube(coastal_points, tmp_path):
    from distributed import Client, LocalCluster

    gs = _grid_spec(coastal_points)
    cube = grid_points_tiled(coastal_points, gs, tile_size=24, time_chunk=8)
    write_cube(cube, tmp_path / "local.zarr")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        cube = grid_points_tiled(coastal_points, gs, tile_size=24, time_chunk=8)
        write_cube(cube, tmp_path / "cluster.zarr")
        write_cube(cube, tmp_path / "cluster.nc")
    local, remote, nc = (open_cube(tmp_path / n) for n in ("local.zarr", "cluster.zarr", "cluster.nc"))
    for ds in (remote, nc):
        xr.testing.assert_equal(local.displacement.load(), ds.displacement.load())  # bitwise, NaN-aware
        assert ds.displacement.dtype == np.float32
        np.testing.assert_array_equal(local.mp_count.values, ds.mp_count.values)
        assert ds.rio.crs == local.rio.crs


def test_tiling_is_chosen_for_large_inputs_only():
    big = GridSpec("EPSG:3035", 100.0, 0.0, 300_000.0, 2000, 2000)
    small = GridSpec("EPSG:3035", 100.0, 0.0, 5000.0, 50, 50)
    assert use_tiling(big, 1000, "linear") > 0
    assert use_tiling(small, 5_000_000, "nearest") > 0
    assert use_tiling(small, 1000, "linear") == 0
    assert use_tiling(big, 1000, "mean") == 0  # block mean is not tiled: global path
    assert use_tiling(big, 1000, "linear", tile_size=0) == 0
    with pytest.raises(InputError, match="cannot be tiled"):
        use_tiling(small, 1000, "mean", tile_size=64)
