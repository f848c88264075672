"""GeoTIFF / COG output: reopen with rasterio and check layout, georeferencing, values."""

import os
import warnings

import numpy as np
import pytest
import rasterio

from insar_raster.errors import InputError, OutputExistsError
from insar_raster.gis.raster import cog_layout_problems, write_geotiff
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube


def small_cube(n_epochs=3, height=280, width=300, seed=0):
    """A cube larger than one 256-px tile, so GDAL builds an overview level."""
    grid = GridSpec("EPSG:3035", 100.0, 4_000_000.0, 3_000_000.0, width, height)
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 5, (n_epochs, height, width)).astype("float32")
    values[:, :12, :7] = np.nan  # a masked corner
    times = np.datetime64("2021-03-05") + np.arange(n_epochs) * np.timedelta64(6, "D")
    return make_cube(values, times, grid), grid


def test_cog_layout_georeferencing_and_values(tmp_path):
    cube, grid = small_cube()
    path = write_geotiff(cube["displacement"], tmp_path / "cube.tif")
    assert path == tmp_path / "cube.tif"
    with rasterio.open(path) as src:
        assert src.driver == "GTiff"
        assert src.profile["tiled"] and src.block_shapes[0] == (256, 256)
        assert src.interleaving.name == "band"  # one date = one band's tiles
        assert src.compression.name == "deflate"
        assert all(src.overviews(b) == [2] for b in src.indexes)
        assert src.count == 3 and src.dtypes == ("float32",) * 3
        assert src.crs.to_epsg() == 3035
        assert src.transform == grid.transform
        assert np.isnan(src.nodata)
        assert src.descriptions == ("2021-03-05", "2021-03-11", "2021-03-17")
        assert src.units == ("mm",) * 3
        assert src.tags(1)["units"] == "mm"
        np.testing.assert_array_equal(src.read(), cube["displacement"].values)
    assert cog_layout_problems(path) == []


def test_dask_backed_cube_is_written_chunkwise_with_same_result(tmp_path):
    cube, _ = small_cube(n_epochs=5)
    lazy = cube["displacement"].chunk({"time": 2, "y": 100, "x": 300})
    write_geotiff(lazy, tmp_path / "lazy.tif")
    with rasterio.open(tmp_path / "lazy.tif") as src:
        np.testing.assert_array_equal(src.read(), cube["displacement"].values)
        assert len(src.descriptions) == 5


def test_single_layer_with_numeric_nodata_and_units(tmp_path):
    cube, grid = small_cube(n_epochs=2, height=40, width=30)
    layer = cube["displacement"].isel(time=-1)
    layer.attrs.update(units="mm/yr", long_name="mean velocity")
    write_geotiff(layer, tmp_path / "v.tif", nodata=-9999.0)
    with rasterio.open(tmp_path / "v.tif") as src:
        assert src.count == 1 and src.nodata == -9999.0
        assert src.units == ("mm/yr",)
        assert src.descriptions == ("2021-03-11",)  # the epoch of the slice
        band = src.read(1)
    assert (band[:12, :7] == -9999.0).all()
    np.testing.assert_array_equal(band[12:], layer.values[12:])


def test_window_subset_and_south_up_input_are_georeferenced(tmp_path):
    cube, grid = small_cube(n_epochs=1, height=50, width=60)
    sub = cube["displacement"].isel(x=slice(10, 20), y=slice(5, 15))
    write_geotiff(sub.isel(y=slice(None, None, -1)), tmp_path / "sub.tif", style=False)
    with rasterio.open(tmp_path / "sub.tif") as src:
        assert src.transform.c == grid.west + 10 * 100.0
        assert src.transform.f == grid.north - 5 * 100.0
        assert src.transform.e == -100.0
        np.testing.assert_array_equal(src.read(), sub.values)  # rows back north-up


def test_plain_tiled_geotiff_and_zstd(tmp_path):
    cube, _ = small_cube(n_epochs=2)
    write_geotiff(cube["displacement"], tmp_path / "plain.tif", cog=False, compress="zstd")
    with rasterio.open(tmp_path / "plain.tif") as src:
        assert src.profile["tiled"]
        assert src.compression.name == "zstd"
        assert src.overviews(1) == []


def test_refuses_existing_output_and_leaves_no_temporaries(tmp_path):
    cube, _ = small_cube(n_epochs=2, height=20, width=20)
    out = tmp_path / "c.tif"
    write_geotiff(cube["displacement"], out)
    before = (out.stat().st_mtime_ns, (tmp_path / "c.qml").read_bytes())
    with pytest.raises(OutputExistsError):
        write_geotiff(cube["displacement"], out)
    assert (out.stat().st_mtime_ns, (tmp_path / "c.qml").read_bytes()) == before
    write_geotiff(cube["displacement"] * 2, out, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["c.qml", "c.tif"]


def test_existing_style_is_not_clobbered(tmp_path):
    cube, _ = small_cube(n_epochs=1, height=20, width=20)
    (tmp_path / "c.qml").write_text("<qgis/>")
    with pytest.raises(OutputExistsError):
        write_geotiff(cube["displacement"], tmp_path / "c.tif")
    assert not (tmp_path / "c.tif").exists()
    write_geotiff(cube["displacement"], tmp_path / "c.tif", style=False)
    assert (tmp_path / "c.qml").read_text() == "<qgis/>"


def test_bad_inputs_raise_input_error(tmp_path):
    cube, _ = small_cube(n_epochs=1, height=20, width=20)
    with pytest.raises(InputError, match="compression"):
        write_geotiff(cube["displacement"], tmp_path / "a.tif", compress="jpeg")
    no_crs = cube["displacement"].drop_vars("spatial_ref")
    no_crs.attrs.pop("grid_mapping", None)
    with pytest.raises(InputError, match="CRS"):
        write_geotiff(no_crs, tmp_path / "b.tif")
    assert list(tmp_path.iterdir()) == []


def test_grid_smaller_than_one_tile_still_gets_overviews(tmp_path):
    cube, _ = small_cube(n_epochs=2, height=48, width=64)
    write_geotiff(cube["displacement"], tmp_path / "small.tif")
    with rasterio.open(tmp_path / "small.tif") as src:
        assert src.overviews(1) == src.overviews(2) == [2]
        # The overview is the nodata-aware average of 2x2 blocks.
        overview = src.read(1, out_shape=(24, 32))
    full = cube["displacement"].values[0].astype(float)
    blocks = full.reshape(24, 2, 32, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks -> NaN, as GDAL
        expected = np.nanmean(blocks, axis=(1, 3))
    np.testing.assert_allclose(overview, expected, rtol=1e-5, equal_nan=True)
    assert cog_layout_problems(tmp_path / "small.tif") == []


def test_dask_cube_is_computed_once_per_chunk_never_whole(tmp_path):
    """Each chunk is computed exactly once and no step holds more than one chunk slab."""
    import dask.array as dsa

    cube, _ = small_cube(n_epochs=6)
    calls = []

    def produce(block):
        calls.append(block.shape)
        return block

    source = dsa.from_array(cube["displacement"].values, chunks=(2, 100, 300))
    lazy = cube["displacement"].copy(
        data=dsa.map_blocks(produce, source, dtype="float32", meta=np.array((), "float32"))
    )
    write_geotiff(lazy, tmp_path / "lazy.tif", style=False)
    assert len(calls) == 3 * 3  # 3 time chunks x 3 row chunks, none recomputed
    assert max(np.prod(s) for s in calls) == 2 * 100 * 300
    with rasterio.open(tmp_path / "lazy.tif") as src:
        np.testing.assert_array_equal(src.read(), cube["displacement"].values)


def test_cog_check_rejects_files_that_are_not_cogs(tmp_path):
    from rasterio.enums import Resampling

    cube, grid = small_cube(n_epochs=2, height=600, width=640)
    values = cube["displacement"].values
    profile = dict(
        driver="GTiff", width=640, height=600, count=2, dtype="float32", crs="EPSG:3035", transform=grid.transform
    )
    with rasterio.open(tmp_path / "striped.tif", "w", **profile) as dst:
        dst.write(values)
    assert "not tiled" in cog_layout_problems(tmp_path / "striped.tif")
    assert "no internal overviews" in cog_layout_problems(tmp_path / "striped.tif")
    # Tiled, but overviews added afterwards: their IFDs and data come after the image.
    with rasterio.open(tmp_path / "late.tif", "w", **profile, tiled=True, blockxsize=256, blockysize=256) as dst:
        dst.write(values)
    with rasterio.open(tmp_path / "late.tif", "r+") as dst:
        dst.build_overviews([2, 4], Resampling.average)
    problems = cog_layout_problems(tmp_path / "late.tif")
    assert any("IFDs" in p for p in problems) and any("overview data" in p for p in problems)


def test_dask_cube_write_memory_is_bounded_by_the_chunk_not_the_cube(tmp_path, monkeypatch):
    """NumPy memory held while writing a lazy cube stays a few slabs, not the cube."""
    import tracemalloc

    import dask.array as dsa

    import insar_raster.gis.raster as raster

    # The style keeps a sample of at most this many values (2 million by default, i.e.
    # all of a small test cube); shrink it so only the writer's own memory is measured.
    monkeypatch.setattr(raster, "_STYLE_SAMPLE", 10_000)

    grid = GridSpec("EPSG:3035", 100.0, 4_000_000.0, 3_000_000.0, 256, 256)
    n_epochs = 48
    # Generated chunk by chunk (dask's random module would pre-allocate the whole cube).
    epoch = dsa.arange(n_epochs, chunks=2, dtype="float32")[:, None, None]
    ramp = dsa.linspace(-1, 1, 256, chunks=256, dtype="float32")
    lazy = epoch * ramp[None, :, None] * ramp[None, None, :] - epoch
    times = np.datetime64("2020-01-01") + np.arange(n_epochs) * np.timedelta64(6, "D")
    cube = make_cube(lazy, times, grid)
    cube_bytes = n_epochs * 256 * 256 * 4  # 12 MiB
    write_geotiff(cube["displacement"][:2], tmp_path / "warm-up.tif")  # lazy imports are not the writer's memory
    tracemalloc.start()
    try:
        write_geotiff(cube["displacement"], tmp_path / "lazy.tif")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < cube_bytes / 3, f"peak {peak / 2**20:.1f} MiB for a {cube_bytes / 2**20:.0f} MiB cube"


def test_band_axis_last_is_moved_first(tmp_path):
    cube, _ = small_cube(n_epochs=3, height=20, width=30)
    write_geotiff(cube["displacement"].transpose("y", "x", "time"), tmp_path / "t.tif", style=False)
    with rasterio.open(tmp_path / "t.tif") as src:
        assert src.count == 3 and src.descriptions[0] == "2021-03-05"
        np.testing.assert_array_equal(src.read(), cube["displacement"].values)
