"""NetCDF cubes compressed on all cores: same file contents as netCDF4's own writer."""

import netCDF4
import numpy as np
import pytest
import rasterio
import xarray as xr

from insar_raster.gis.write import write_cube
from insar_raster.grid.gridding import grid_points
from insar_raster.grid.spec import GridSpec
from insar_raster.io import ncwrite
from insar_raster.io.cube import netcdf_encoding
from insar_raster.io.points import make_points


@pytest.fixture(scope="module")
def tiled_cube():
    """A lazy tiled cube whose sizes are not multiples of the NetCDF chunks (edge chunks)."""
    rng = np.random.default_rng(3)
    n = 3000
    x, y = rng.uniform(0, 5000, n) + 3_200_000, rng.uniform(0, 4000, n) + 3_400_000
    times = np.datetime64("2021-01-01") + np.arange(21) * np.timedelta64(6, "D")  # 21 = 16 + 5
    values = (np.sin(x / 700)[:, None] * np.arange(21) + rng.normal(0, 1, (n, 21))).astype(np.float32)
    points = make_points(x, y, values, times, "EPSG:3035")
    gs = GridSpec.from_points(x, y, points.rio.crs, resolution=100)
    return grid_points(points, grid_spec=gs, tile_size=16, time_chunk=8)  # 51 x 41 cells, 16-cell tiles


def test_parallel_writer_matches_netcdf4(tiled_cube, tmp_path):
    plain = tmp_path / "plain.nc"
    tiled_cube.to_netcdf(plain, engine="netcdf4", encoding=netcdf_encoding(tiled_cube))
    fast = tmp_path / "fast.nc"
    assert ncwrite.to_netcdf_parallel(tiled_cube, fast, netcdf_encoding(tiled_cube)) is True
    with xr.open_dataset(plain) as want, xr.open_dataset(fast) as got:
        assert np.isfinite(want.displacement.values).mean() > 0.5
        xr.testing.assert_identical(got.load(), want.load())  # values, NaNs, coords, attrs
        assert got.displacement.encoding["chunksizes"] == want.displacement.encoding["chunksizes"]
    # The chunks carry HDF5's own filters, so any reader decodes them: netCDF-C and GDAL.
    with netCDF4.Dataset(fast) as nc:
        var = nc["displacement"]
        assert var.filters()["zlib"] and var.filters()["shuffle"]
        last = np.ma.filled(var[20], np.nan)  # the edge chunk in time (epochs 16-20)
    with rasterio.open(f"netcdf:{fast}:displacement") as src:
        assert src.count == 21 and src.crs.to_epsg() == 3035
        np.testing.assert_array_equal(src.read(21), last)


def test_write_cube_uses_it_and_falls_back_on_a_cluster(tiled_cube, tmp_path, monkeypatch):
    calls = []
    original = ncwrite.ChunkWriter.__setitem__

    def spy(self, key, block):
        calls.append(key)
        return original(self, key, block)

    monkeypatch.setattr(ncwrite.ChunkWriter, "__setitem__", spy)
    write_cube(tiled_cube, tmp_path / "local.nc")
    chunks = netcdf_encoding(tiled_cube)["displacement"]["chunksizes"]
    assert chunks == (8, 16, 16)  # inside the dask blocks: 8 epochs x 16 x 16-cell tiles
    assert len(calls) == 3 * 4 * 3  # each chunk written once: 21 epochs, 51 x 41 cells
    from distributed import Client, LocalCluster

    calls.clear()
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        assert ncwrite.to_netcdf_parallel(tiled_cube, tmp_path / "x.nc", netcdf_encoding(tiled_cube)) is False
        write_cube(tiled_cube, tmp_path / "cluster.nc")
    assert calls == []
    with xr.open_dataset(tmp_path / "local.nc") as a, xr.open_dataset(tmp_path / "cluster.nc") as b:
        xr.testing.assert_identical(a.load(), b.load())


def test_packed_layer_falls_back_to_netcdf4(tiled_cube, tmp_path):
    """A layer packed on write (scale_factor, as a cube opened from another tool may carry)
    must go through xarray's encoder, not be written raw."""
    cube = tiled_cube.copy()
    cube["distance_to_mp"] = cube.distance_to_mp.copy()
    encoding = netcdf_encoding(cube)
    encoding["distance_to_mp"].update(dtype="int16", scale_factor=0.5, _FillValue=-1)
    assert ncwrite.to_netcdf_parallel(cube, tmp_path / "c.nc", encoding) is False
    write_cube(cube, tmp_path / "ok.nc")  # the normal encoding: direct path, raw layer
    with xr.open_dataset(tmp_path / "ok.nc") as back:
        np.testing.assert_array_equal(back.distance_to_mp.values, tiled_cube.distance_to_mp.values)
