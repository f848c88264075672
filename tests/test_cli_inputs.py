"""What users type: negative --bounds, degrees as bounds, unwritable outputs refused first,
info on a geographic points file showing both CRSs."""

import json

import numpy as np
import pytest
import xarray as xr

from insar_raster.cli import _join_negative_values, main
from insar_raster.io.points import write_points
from insar_raster.synth import make_scene


@pytest.fixture(scope="module")
def lonlat_points(tmp_path_factory):
    """A GeoPackage in EPSG:4326 (as many GIS exports are), around -7.2 E, 53.1 N."""
    import geopandas as gpd

    d = tmp_path_factory.mktemp("inputs")
    points, _ = make_scene(400, (20, 20), 8, seed=2)
    write_points(points, d / "p.gpkg")
    gpd.read_file(d / "p.gpkg").to_crs(4326).to_file(d / "lonlat.gpkg")
    return d / "lonlat.gpkg"


def test_negative_number_lists_reach_their_option():
    argv = ["grid", "p.gpkg", "--bounds", "-7.2,53.0,-7.1,53.1", "--max-gap", "300", "-q"]
    assert _join_negative_values(argv) == ["grid", "p.gpkg", "--bounds=-7.2,53.0,-7.1,53.1", "--max-gap", "300", "-q"]
    assert _join_negative_values(["-q", "-v"]) == ["-q", "-v"]  # flags stay flags


def test_grid_with_negative_degree_bounds(lonlat_points, tmp_path, capsys):
    import geopandas as gpd
    from pyproj import Transformer

    out = tmp_path / "cube.nc"
    assert main(["grid", str(lonlat_points), "--bounds", "-7.22,53.1,-7.2,53.11", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "read in WGS 84" in err
    cube = xr.open_dataset(out, decode_coords="all")
    assert cube.rio.crs.to_epsg() == 32629  # gridded in UTM, the box converted from degrees
    lon, lat = Transformer.from_crs(32629, 4326, always_xy=True).transform(
        *np.meshgrid(cube["x"].values, cube["y"].values)
    )
    assert lon.min() > -7.221 and lon.max() < -7.199 and lat.min() > 53.099 and lat.max() < 53.111
    gdf = gpd.read_file(lonlat_points)
    inside = (
        (gdf.geometry.x > -7.22) & (gdf.geometry.x < -7.2) & (gdf.geometry.y > 53.1) & (gdf.geometry.y < 53.11)
    ).sum()
    assert 0 < inside < len(gdf)
    # The same box in metres (explicit CRS) gives the same grid.
    west, south, east, north = Transformer.from_crs(4326, 32629, always_xy=True).transform_bounds(
        -7.22, 53.1, -7.2, 53.11, densify_pts=21
    )
    out2 = tmp_path / "cube_m.nc"
    assert (
        main(
            [
                "grid",
                str(lonlat_points),
                "--bounds",
                f"{west},{south},{east},{north}",
                "--bounds-crs",
                "EPSG:32629",
                "-o",
                str(out2),
                "-q",
            ]
        )
        == 0
    )
    cube2 = xr.open_dataset(out2)
    np.testing.assert_array_equal(cube2["x"].values, cube["x"].values)
    np.testing.assert_array_equal(cube2["y"].values, cube["y"].values)


@pytest.mark.parametrize(
    "argv, output",
    [
        (["grid", "{garbage}", "-o", "{d}/cube.csv"], "cube.csv"),
        (["forecast", "{garbage}", "-o", "{d}/forecast.csv"], "forecast.csv"),
        (["train", "{garbage}", "-o", "{d}/model.nc"], "model.nc"),
        (["synth", "-o", "{d}/points.xyz"], "points.xyz"),
    ],
)
def test_unwritable_output_format_refused_before_reading_input(tmp_path, capsys, argv, output):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\xff not a file anyone could read")
    argv = [a.format(garbage=garbage, d=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and output in err[0] and "output format" in err[0]  # not a complaint about the input
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.csv"]  # nothing written


def test_info_points_shows_file_crs_and_grid_crs(lonlat_points, capsys):
    assert main(["info", str(lonlat_points)]) == 0
    out = capsys.readouterr().out
    assert "crs (file)" in out and "EPSG:4326" in out
    assert "crs (grid)" in out and "EPSG:32629" in out
    assert main(["info", str(lonlat_points), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["crs"].startswith("EPSG:4326") and info["grid_crs"].startswith("EPSG:32629")
    west, south, east, north = info["extent"]
    assert -7.3 < west < east < -7.1 and 53.0 < south < north < 53.2  # degrees, in the file's CRS
    assert info["grid_extent"][0] > 100_000  # metres


def _ramp_cube(n_epochs=6):
    """A 4 x 5 cube whose cells move -1 mm per 12-day epoch (mm = -epoch index)."""
    from pyproj import CRS

    from insar_raster.grid.spec import GridSpec
    from insar_raster.io.cube import make_cube

    spec = GridSpec(CRS.from_epsg(3035), 100.0, 3_180_000.0, 3_470_000.0, 5, 4)
    times = np.datetime64("2020-01-01") + np.arange(n_epochs) * np.timedelta64(12, "D")
    values = -np.arange(n_epochs, dtype=np.float32)[:, None, None] * np.ones((1, 4, 5), np.float32)
    values[:, 0, :] += np.arange(5, dtype=np.float32)  # row 0 tells x apart
    return make_cube(values, times, spec)


def test_cube_from_another_tool_in_any_order_is_read_in_date_and_grid_order(tmp_path):
    """Another tool's NetCDF may list its dates in any order and its x descending: the cube
    is read in date order, x ascending (was: a cumulative of first-listed minus last-listed
    date, a forecast stepping back in time, a GeoTIFF with a negative pixel width)."""
    import rasterio

    cube = _ramp_cube()
    shuffled = cube.isel(time=[0, 5, 2, 1, 4, 3], x=slice(None, None, -1))
    shuffled.to_netcdf(tmp_path / "other.nc")
    cube.to_netcdf(tmp_path / "cube.nc")
    for name in ("other", "cube"):
        argv = ["export", str(tmp_path / f"{name}.nc"), "--layer", "cumulative", "-o", str(tmp_path / f"{name}.tif")]
        assert main([*argv, "-q"]) == 0
    with rasterio.open(tmp_path / "other.tif") as got, rasterio.open(tmp_path / "cube.tif") as want:
        assert got.transform == want.transform and got.transform.a > 0
        np.testing.assert_array_equal(got.read(), want.read())
        assert np.all(got.read() == -5.0)  # last date minus first: 5 epochs of -1 mm


def test_cube_with_a_repeated_date_is_refused_in_one_line(tmp_path, capsys):
    cube = _ramp_cube()
    cube.isel(time=[0, 1, 2, 2, 3, 4, 5]).to_netcdf(tmp_path / "twice.nc")
    assert main(["export", str(tmp_path / "twice.nc"), "--layer", "velocity", "-o", str(tmp_path / "v.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "twice.nc" in err[0] and "more than once (first: 2020-01-25)" in err[0], err
    assert not (tmp_path / "v.tif").exists()


@pytest.mark.parametrize("times", [np.arange(6) * 12, [f"d{i}" for i in range(6)]], ids=["days", "labels"])
def test_cube_whose_time_holds_no_dates_is_refused_in_one_line(tmp_path, capsys, times):
    """Was: 'TypeError: input must have type NumPy datetime' / 'ValueError: Error parsing
    datetime string' with exit 1."""
    _ramp_cube().assign_coords(time=times).to_netcdf(tmp_path / "nodates.nc")
    assert main(["export", str(tmp_path / "nodates.nc"), "--layer", "velocity", "-o", str(tmp_path / "v.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nodates.nc: not a cube: its time coordinate holds no dates" in err[0], err


def test_cube_stored_as_y_x_time_is_read_as_a_cube(tmp_path):
    """Another tool's (y, x, time) displacement (was: 'no displacement (time, y, x) variable')."""
    import rasterio

    cube = _ramp_cube()
    cube.transpose("y", "x", "time").to_netcdf(tmp_path / "yxt.nc")
    assert main(["export", str(tmp_path / "yxt.nc"), "--layer", "cumulative", "-o", str(tmp_path / "c.tif"), "-q"]) == 0
    with rasterio.open(tmp_path / "c.tif") as src:
        assert np.all(src.read(1) == -5.0)


@pytest.mark.parametrize("extra", [["-o", "{d}/p.gpkg"], ["-o", "{d}/p.parquet"], ["--los", "-o", "{d}/los"]])
def test_synth_layout_is_refused_where_it_would_be_ignored(tmp_path, capsys, extra):
    """Was: a GeoPackage/GeoParquet (or --los bursts) written in its one layout, --layout L3UD ignored."""
    argv = ["synth", "--layout", "L3UD", "--points", "40", "--shape", "8x8", "--epochs", "6"]
    argv += [a.format(d=tmp_path) for a in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["insar-raster synth: error: --layout: only applies to a .csv output (drop it, or write a .csv)"]
    assert list(tmp_path.iterdir()) == []


def test_synth_layout_l3ud_writes_an_l3_csv(tmp_path):
    out = tmp_path / "u.csv"
    assert (
        main(["synth", "--layout", "L3UD", "-o", str(out), "--points", "40", "--shape", "8x8", "--epochs", "6", "-q"])
        == 0
    )
    header = out.read_text().splitlines()[0].split(",")
    assert "latitude" not in header and "easting" in header


def _value_options():
    """(command, option, default, help) of every option of every command that takes a value."""
    import argparse

    from insar_raster.cli import COMMANDS, build_parser

    for command in COMMANDS:
        parser = build_parser([command])
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for action in sub.choices[command]._actions:
            if action.option_strings and action.nargs != 0:
                yield command, action.option_strings[-1], action.default, action.help or ""


def test_every_option_help_states_its_default():
    """README's promise that --help explains every option: each option that takes a value says
    its default in its help, and an argparse default is the one the help states."""
    missing, wrong = [], []
    for command, option, default, text in _value_options():
        if "default" not in text.lower():
            missing.append(f"{command} {option}")
        elif default is not None and not isinstance(default, bool):
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            if option == "--max-output-size":  # bytes, shown as GB
                shown = f"{default / 1e9:g} GB"
            if shown not in text:
                wrong.append(f"{command} {option}: default {shown!r} not in {text!r}")
    assert not missing, f"help without a default: {missing}"
    assert not wrong, wrong
