"""`export` and derived layers; CF attributes of the NetCDF files we write."""

import netCDF4
import numpy as np
import pytest
import rasterio
import xarray as xr

from insar_raster.cli import main
from insar_raster.errors import InputError
from insar_raster.gis.derived import cumulative_displacement, mean_velocity, years_since_first
from insar_raster.gis.export import export, select_dates
from insar_raster.gis.raster import cog_layout_problems
from insar_raster.gis.write import write_cube
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube, open_cube

TIMES = np.datetime64("2020-01-01") + np.arange(9) * np.timedelta64(36, "D")


def _cube(seed=0):
    grid = GridSpec("EPSG:3035", 100.0, 3_500_000.0, 2_800_000.0, 7, 5)
    rng = np.random.default_rng(seed)
    years = years_since_first(TIMES)
    velocity = rng.uniform(-20, 10, (5, 7))
    values = velocity[None] * years[:, None, None] + rng.normal(0, 1, (9, 5, 7))
    values[0] = 0.0
    values[:, 0, 0] = np.nan  # masked cell
    values[3:5, 1, 1] = np.nan  # gap in a series
    return make_cube(values.astype("float32"), TIMES, grid), grid


def _polyfit_velocity(values, years):
    out = np.full(values.shape[1:], np.nan)
    for r in range(values.shape[1]):
        for c in range(values.shape[2]):
            ok = np.isfinite(values[:, r, c])
            if ok.sum() >= 2:
                out[r, c] = np.polyfit(years[ok], values[ok, r, c], 1)[0]
    return out


def test_mean_velocity_matches_polyfit_with_gaps_numpy_and_dask():
    cube, _ = _cube()
    expected = _polyfit_velocity(cube["displacement"].values.astype(float), years_since_first(TIMES))
    eager = mean_velocity(cube)
    lazy = mean_velocity(cube.chunk({"time": 4, "y": 2}))
    assert lazy.chunks is not None  # stays lazy until written
    np.testing.assert_allclose(eager.values, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(lazy.values, expected, rtol=1e-5, atol=1e-4)
    assert np.isnan(eager.values[0, 0]) and np.isfinite(eager.values[1, 1])
    assert eager.attrs["units"] == "mm/yr" and eager.rio.crs.to_epsg() == 3035


def test_cumulative_is_last_minus_first():
    cube, _ = _cube()
    d = cube["displacement"].values
    np.testing.assert_array_equal(cumulative_displacement(cube).values, d[-1] - d[0])


def test_select_dates():
    cube, _ = _cube()
    pick = lambda spec: [str(t)[:10] for t in select_dates(cube, spec)["time"].values]  # noqa: E731
    assert pick("first,last") == ["2020-01-01", "2020-10-15"]
    assert pick("2020-02-06") == ["2020-02-06"]
    assert pick("2020-03-01:2020-05-01") == ["2020-03-13", "2020-04-18"]
    assert pick(":2020-02-06,last") == ["2020-01-01", "2020-02-06", "2020-10-15"]
    with pytest.raises(InputError, match="nearest: 2020-02-06, 2020-03-13"):
        select_dates(cube, "2020-02-10")
    with pytest.raises(InputError, match="no epoch"):
        select_dates(cube, "2021-01-01:")
    with pytest.raises(InputError, match="not a date"):
        select_dates(cube, "yesterday")


def test_cli_velocity_cog_from_netcdf(tmp_path, capsys):
    cube, grid = _cube()
    write_cube(cube, tmp_path / "cube.nc")
    out = tmp_path / "velocity.tif"
    assert main(["export", str(tmp_path / "cube.nc"), "--layer", "velocity", "-o", str(out), "-q"]) == 0
    with rasterio.open(out) as src:
        assert src.count == 1 and src.units == ("mm/yr",)
        assert src.overviews(1)
        assert src.transform == grid.transform and src.crs.to_epsg() == 3035
        assert src.descriptions == ("mean_velocity 2020-01-01/2020-10-15",)
        band = src.read(1)
    expected = _polyfit_velocity(cube["displacement"].values.astype(float), years_since_first(TIMES))
    np.testing.assert_allclose(band, expected, rtol=1e-5, atol=1e-4)
    assert (tmp_path / "velocity.qml").exists()
    assert cog_layout_problems(out) == []


def test_cli_cumulative_over_a_period_and_default_name(tmp_path):
    cube, _ = _cube()
    write_cube(cube, tmp_path / "cube.nc")
    assert (
        main(
            [
                "export",
                str(tmp_path / "cube.nc"),
                "--layer",
                "cumulative",
                "--dates",
                "2020-02-06:2020-06-29",
                "--no-style",
                "-q",
            ]
        )
        == 0
    )
    out = tmp_path / "cube_cumulative.tif"
    d = cube["displacement"].values
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), d[5] - d[1])  # epochs 1..5 of the cube
        assert src.descriptions == ("cumulative_displacement 2020-02-06/2020-06-29",)
    assert not (tmp_path / "cube_cumulative.qml").exists()


def test_cli_selected_epochs_as_plain_geotiff(tmp_path):
    cube, _ = _cube()
    write_cube(cube, tmp_path / "cube.nc")
    out = tmp_path / "two.tif"
    assert (
        main(
            [
                "export",
                str(tmp_path / "cube.nc"),
                "--dates",
                "last,2020-02-06",
                "--format",
                "geotiff",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    with rasterio.open(out) as src:
        assert src.descriptions == ("2020-02-06", "2020-10-15")
        assert src.overviews(1) == []
        np.testing.assert_array_equal(src.read(), cube["displacement"].values[[1, 8]])


def test_cli_zarr_round_trip(tmp_path):
    cube, _ = _cube()
    write_cube(cube, tmp_path / "cube.nc")
    out = tmp_path / "sub.zarr"
    assert (
        main(["export", str(tmp_path / "cube.nc"), "--format", "zarr", "--dates", ":2020-03-13", "-o", str(out), "-q"])
        == 0
    )
    back = open_cube(out)
    assert back.sizes["time"] == 3 and back.rio.crs.to_epsg() == 3035
    np.testing.assert_array_equal(back["displacement"].values, cube["displacement"].values[:3])
    assert "export cube.nc" in back.attrs["history"].splitlines()[-1]
    vel = export(back, tmp_path / "v.zarr", layer="velocity")
    assert xr.open_zarr(vel)["mean_velocity"].attrs["units"] == "mm/yr"


def _attrs(var):
    return {k: var.getncattr(k) for k in var.ncattrs()}


def test_netcdf_cf_attributes_of_cube_and_derived_layer(tmp_path):
    cube, _ = _cube()
    write_cube(cube, tmp_path / "cube.nc")
    export(open_cube(tmp_path / "cube.nc", chunks={}), tmp_path / "velocity.nc", layer="velocity")
    for name, var in (("cube.nc", "displacement"), ("velocity.nc", "mean_velocity")):
        with netCDF4.Dataset(tmp_path / name) as nc:  # raw attributes, no xarray decoding
            g = {k: nc.getncattr(k) for k in nc.ncattrs()}
            assert g["Conventions"] == "CF-1.8" and g["history"] and g["title"]
            v = _attrs(nc[var])
            assert v["units"] in ("mm", "mm/yr") and v["long_name"] and v["grid_mapping"] == "spatial_ref"
            assert np.isnan(v["_FillValue"])
            gm = _attrs(nc["spatial_ref"])
            assert gm["grid_mapping_name"] == "lambert_azimuthal_equal_area" and "crs_wkt" in gm
            assert _attrs(nc["x"])["standard_name"] == "projection_x_coordinate" and _attrs(nc["x"])["units"] in (
                "m",
                "metre",
            )
            assert _attrs(nc["y"])["standard_name"] == "projection_y_coordinate"
            if var == "displacement":
                t = _attrs(nc["time"])
                assert t["standard_name"] == "time" and t["units"].startswith("days since") and t["axis"] == "T"
            else:
                assert len(g["history"].splitlines()) == 2  # provenance kept, export appended
                assert "_FillValue" not in _attrs(nc["x"]) and "_FillValue" not in _attrs(nc["y"])


def test_cli_errors_are_one_line_and_leave_nothing(tmp_path, capsys):
    cube, _ = _cube()
    write_cube(cube, tmp_path / "cube.nc")
    cases = [
        (["--dates", "2020-02-10", "-o", str(tmp_path / "a.tif")], "not an epoch"),
        (["--layer", "velocity", "--dates", "last", "-o", str(tmp_path / "b.tif")], "at least 2 epochs"),
        (["--format", "zarr", "-o", str(tmp_path / "c.tif")], "writes .zarr"),
        (["-o", str(tmp_path / "cube.nc")], "already exists"),
    ]
    for extra, message in cases:
        assert main(["export", str(tmp_path / "cube.nc"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.nc"]


def test_cli_velocity_of_a_one_epoch_cube_names_the_cube(tmp_path, capsys):
    """No --dates given: the cube has too few epochs, not the option (was: '--dates: ...')."""
    cube, _ = _cube()
    write_cube(cube.isel(time=[-1]), tmp_path / "last.nc")
    assert main(["export", str(tmp_path / "last.nc"), "--layer", "velocity", "-o", str(tmp_path / "v.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"insar-raster export: error: {tmp_path / 'last.nc'}: mean velocity needs at least 2 epochs, got 1"]
    assert main(["export", str(tmp_path / "last.nc"), "--layer", "velocity", "--dates", "last"]) == 2
    assert "error: --dates: mean velocity needs at least 2 epochs" in capsys.readouterr().err


def test_cli_empty_derived_layer_is_refused_not_written(tmp_path, capsys):
    """A cube whose last epoch is empty has no cumulative displacement anywhere: refused
    naming the cube and the dates (was: an all-NaN raster, exit 0); the same epochs chosen
    with --dates are about --dates; epochs with data still export."""
    cube, _ = _cube()
    cube["displacement"][-1] = np.nan
    write_cube(cube, tmp_path / "tail.nc")
    out = tmp_path / "c.tif"
    assert main(["export", str(tmp_path / "tail.nc"), "--layer", "cumulative", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"insar-raster export: error: {tmp_path / 'tail.nc'}: the cumulative layer would be empty: no cell has "
        f"data at both 2020-01-01 and {TIMES[-1]} (choose epochs with data: --dates START:END)"
    ]
    assert main(
        ["export", str(tmp_path / "tail.nc"), "--layer", "cumulative", "--dates", str(TIMES[-1]), "-o", str(out)]
    )
    assert "error: --dates: the cumulative layer would be empty" in capsys.readouterr().err
    assert not out.exists()
    assert (
        main(["export", str(tmp_path / "tail.nc"), "--layer", "cumulative", "--dates", f":{TIMES[-2]}", "-o", str(out)])
        == 0
    )
    with rasterio.open(out) as src:
        assert np.isfinite(src.read(1)).sum() == 5 * 7 - 1  # all but the masked cell
