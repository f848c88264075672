"""A multi-band GeoTIFF is a cube to every command: ours and other tools' (YYYYMMDD bands)."""

import numpy as np
import pytest
import rasterio
from cli_args import FAST_TRAINING
from rasterio.transform import from_origin

from insar_raster.cli import main
from insar_raster.errors import InputError
from insar_raster.gis.write import write_cube
from insar_raster.io.cube import open_cube
from insar_raster.io.tifcube import parse_band_date
from insar_raster.synth import make_scene_cube


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    d = tmp_path_factory.mktemp("tifcube")
    cube, truth = make_scene_cube(shape=(16, 20), n_epochs=30, scene="bowl", seed=6)
    write_cube(cube, d / "cube.nc")
    write_cube(cube, d / "cube.tif")
    write_cube(truth, d / "truth.tif")
    return d, cube


def test_own_geotiff_cube_opens_like_the_netcdf(cubes):
    d, _ = cubes
    nc, tif = open_cube(d / "cube.nc"), open_cube(d / "cube.tif")
    assert tif["displacement"].dims == ("time", "y", "x")
    np.testing.assert_array_equal(tif["time"].values, nc["time"].values)
    np.testing.assert_array_equal(tif["x"].values, nc["x"].values)
    np.testing.assert_array_equal(tif["y"].values, nc["y"].values)
    np.testing.assert_allclose(tif["displacement"].values, nc["displacement"].values, equal_nan=True)
    assert tif.rio.crs == nc.rio.crs and tif.rio.transform() == nc.rio.transform()
    assert tif["displacement"].attrs["units"] == "mm"
    lazy = open_cube(d / "cube.tif", chunks={})
    assert lazy["displacement"].chunks[0] == (1,) * 30  # one epoch per chunk: export stays bounded


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2020-01-15", "2020-01-15"),
        ("20200115", "2020-01-15"),
        ("D20200115", "2020-01-15"),
        ("2020-01-15T10:30:00", "2020-01-15"),
        ("20200115T103000", "2020-01-15"),
        ("band 1", None),
        ("mean_velocity 2020-01-01/2020-12-31", None),
        ("20201399", None),
        ("", None),
    ],
)
def test_band_date_formats(text, expected):
    date = parse_band_date(text)
    assert (None if date is None else str(date)) == expected


def _foreign_tif(path, descriptions=None, tags=None, units="m", nodata=-9999.0):
    """A GeoTIFF as another tool writes it: metres, a nodata value, bands out of order."""
    values = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5) / 1000.0
    values[:, 0, 0] = nodata
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=5,
        height=4,
        count=3,
        dtype="float32",
        crs="EPSG:32629",
        transform=from_origin(600000, 5900000, 50, 50),
        nodata=nodata,
    ) as dst:
        dst.write(values)
        for b in range(1, 4):
            if descriptions:
                dst.set_band_description(b, descriptions[b - 1])
            if tags:
                dst.update_tags(b, **tags[b - 1])
            if units:
                dst.set_band_unit(b, units)
    return values


def test_foreign_geotiff_with_yyyymmdd_bands_in_metres(tmp_path):
    values = _foreign_tif(tmp_path / "mintpy.tif", descriptions=["20200127", "20200103", "20200115"])
    ds = open_cube(tmp_path / "mintpy.tif")
    assert [str(t)[:10] for t in ds["time"].values] == ["2020-01-03", "2020-01-15", "2020-01-27"]  # sorted
    disp = ds["displacement"].values
    assert np.isnan(disp[:, 0, 0]).all()  # nodata -> NaN, not -9999 m
    np.testing.assert_allclose(disp[0, 1:, 1:], values[1, 1:, 1:] * 1000, rtol=1e-6)  # m -> mm, 20200103 first
    assert ds.rio.crs.to_epsg() == 32629
    np.testing.assert_allclose(ds["x"].values, 600025 + 50 * np.arange(5))
    np.testing.assert_allclose(ds["y"].values, 5899975 - 50 * np.arange(4))


def test_foreign_geotiff_dated_by_band_tags(tmp_path):
    _foreign_tif(
        tmp_path / "tags.tif", tags=[{"DATE": d} for d in ("2021-03-01", "2021-03-13", "2021-03-25")], units="mm"
    )
    ds = open_cube(tmp_path / "tags.tif")
    assert str(ds["time"].values[-1])[:10] == "2021-03-25"


def test_not_a_cube_geotiff_is_one_clear_error(tmp_path, cubes, capsys):
    _foreign_tif(tmp_path / "bands.tif", descriptions=["20200103", "coherence", "20200127"])
    with pytest.raises(InputError, match=r"band 2 \('coherence'\) is not dated"):
        open_cube(tmp_path / "bands.tif")
    _foreign_tif(tmp_path / "kelvin.tif", descriptions=["20200103", "20200115", "20200127"], units="K")
    with pytest.raises(InputError, match="not a length"):
        open_cube(tmp_path / "kelvin.tif")
    d, _ = cubes
    assert main(["export", str(d / "cube.tif"), "--layer", "velocity", "-o", str(tmp_path / "v.tif"), "-q"]) == 0
    assert main(["forecast", str(tmp_path / "v.tif"), "-o", str(tmp_path / "f.tif"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "v.tif: not a cube: band 1" in err


def test_every_cube_command_accepts_a_geotiff_cube(cubes, tmp_path, capsys):
    d, cube = cubes
    tif = d / "cube.tif"
    assert main(["forecast", str(tif), "-o", str(tmp_path / "f.tif"), "-q", *FAST_TRAINING]) == 0
    with rasterio.open(tmp_path / "f.tif") as src:
        assert src.count == 2 and src.crs == cube.rio.crs
        assert src.descriptions[0] == str(cube["time"].values[-1].astype("datetime64[D]") + np.timedelta64(12, "D"))
    assert main(["export", str(tif), "--dates", "last", "-o", str(tmp_path / "last.tif"), "-q"]) == 0
    with rasterio.open(tmp_path / "last.tif") as src:
        np.testing.assert_allclose(src.read(1), cube["displacement"].values[-1], equal_nan=True)
    assert (
        main(
            [
                "evaluate",
                str(tif),
                "--truth",
                str(d / "truth.tif"),
                "--models",
                "persistence,trend",
                "--window",
                "6",
                "--steps",
                "2",
                "--permutation-repeats",
                "0",
                "-o",
                str(tmp_path / "rep"),
                "-q",
            ]
        )
        == 0
    )
    assert (tmp_path / "rep" / "metrics.json").exists()
    capsys.readouterr()
    assert main(["info", str(tif), "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "cube" and info["n_epochs"] == 30 and info["interval_days"]["median"] == 12


def test_info_reads_yyyymmdd_band_dates(tmp_path, capsys):
    _foreign_tif(tmp_path / "stack.tif", descriptions=["20200103", "20200115", "20200127"])
    assert main(["info", str(tmp_path / "stack.tif"), "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "cube" and info["first_epoch"] == "2020-01-03" and info["last_epoch"] == "2020-01-27"
