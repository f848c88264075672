"""grid --decompose: the EGMS L3 Ortho recipe recovers a known 3-D motion field."""

import numpy as np
import pytest
from cli_args import FAST_TRAINING_DEFAULT_PATCH

from insar_raster.errors import InputError
from insar_raster.grid.decompose import decompose_los, resample_matrix, time_grid
from insar_raster.synth_los import los_vector, make_los_scene


@pytest.fixture(scope="module")
def clean_scene():
    return make_los_scene(3000, (40, 40), 50, seed=1, atmosphere_mm=0.0, white_noise_mm=0.0)


def _errors(cube, truth):
    ref = truth.sel(x=cube.x, y=cube.y, time=cube.time)
    out = {}
    for got in ("vertical", "east_west"):
        for want in ("vertical", "east_west"):
            for sign in (1, -1):
                err = cube[got].values - sign * ref[want].values
                out[got, want, sign] = float(np.sqrt(np.nanmean(err**2)))
    return out


def test_los_vectors_follow_the_egms_convention():
    # Ground-to-satellite unit vectors; Sentinel-1 looks right of its track.
    e, n, u = los_vector([-9.0, 191.0], [38.0, 38.0])
    np.testing.assert_allclose(e**2 + n**2 + u**2, 1.0)
    assert e[0] < -0.5 and e[1] > 0.5  # ascending: satellite to the west; descending: to the east
    assert (u > 0.7).all() and (np.abs(n) < 0.15).all()
    # Uplift is motion towards the satellite in both geometries: a positive LOS value.
    assert (u * 10.0 > 0).all()


def test_noise_free_field_is_recovered_and_not_swapped_or_flipped(clean_scene):
    asc, desc, truth = clean_scene
    cube = decompose_los([asc, desc])
    assert cube["vertical"].dtype == np.float32 and cube["vertical"].dims == ("time", "y", "x")
    np.testing.assert_array_equal(cube.time.values, truth.time.values)
    np.testing.assert_allclose(np.mod(cube.x.values, 100), 50)  # EGMS cells: centres at xx50 m
    err = _errors(cube, truth)
    rms = {v: float(np.sqrt(np.nanmean(truth[v].values ** 2))) for v in ("vertical", "east_west")}
    assert min(rms.values()) > 3.0  # a field worth recovering
    # Only cell averaging and 6-day interpolation separate the result from the truth.
    assert err["vertical", "vertical", 1] < 0.3 and err["east_west", "east_west", 1] < 0.35
    # East and up swapped, or a LOS sign flipped, would be far off.
    for wrong in (
        ("vertical", "east_west", 1),
        ("east_west", "vertical", 1),
        ("vertical", "vertical", -1),
        ("east_west", "east_west", -1),
    ):
        assert err[wrong] > 10 * err["vertical", "vertical", 1], wrong
    np.testing.assert_array_equal(cube["vertical"].isel(time=0).values[np.isfinite(cube["vertical"].values[0])], 0)


def test_cells_need_both_pass_directions_and_counts_are_kept(clean_scene):
    asc, desc, _ = clean_scene
    cube = decompose_los([asc, desc])
    n_asc, n_desc = cube["mp_count_ascending"].values, cube["mp_count_descending"].values
    assert n_asc.sum() == asc.sizes["point"] and n_desc.sum() == desc.sizes["point"]
    valid = np.isfinite(cube["vertical"].values[-1])
    np.testing.assert_array_equal(valid, (n_asc > 0) & (n_desc > 0))
    assert ((n_asc > 0) != (n_desc > 0)).any()  # some cells have one geometry only: left NaN


def test_noisy_field_is_recovered_within_the_propagated_noise():
    atm, white = 1.5, 1.0
    asc, desc, truth = make_los_scene(3000, (40, 40), 50, seed=2, atmosphere_mm=atm, white_noise_mm=white)
    cube = decompose_los([asc, desc])
    err = _errors(cube, truth)
    le_a, lu_a = float(asc.los_east.mean()), float(asc.los_up.mean())
    le_d, lu_d = float(desc.los_east.mean()), float(desc.los_up.mean())
    det = abs(le_a * lu_d - le_d * lu_a)
    # Noise of a LOS series relative to its reference date: sqrt(2) x (atmosphere + one MP's white noise).
    sigma_los = np.sqrt(2 * (atm**2 + white**2))
    expected_up = np.hypot(le_a, le_d) / det * sigma_los
    expected_east = np.hypot(lu_a, lu_d) / det * sigma_los
    assert err["vertical", "vertical", 1] < 1.25 * expected_up
    assert err["east_west", "east_west", 1] < 1.25 * expected_east
    assert err["vertical", "east_west", 1] > 1.5 * expected_up  # the swapped field is not "within noise"


def test_other_resolution_works_the_same_way():
    asc, desc, truth = make_los_scene(
        2000, (24, 24), 30, seed=4, resolution=200.0, atmosphere_mm=0.0, white_noise_mm=0.0
    )
    cube = decompose_los([asc, desc], resolution=200.0)
    np.testing.assert_allclose(np.mod(cube.x.values, 200), 100)
    err = _errors(cube, truth)
    assert err["vertical", "vertical", 1] < 0.4 and err["east_west", "east_west", 1] < 0.5


def test_resampling_does_not_extrapolate_or_bridge_long_gaps():
    t0 = np.datetime64("2020-01-01")
    times = t0 + np.array([0, 12, 24, 150, 162]).astype("timedelta64[D]")
    grid = time_grid([times, t0 + np.array([-6, 170]).astype("timedelta64[D]")])
    assert grid[0] == t0 - np.timedelta64(6, "D") and (np.diff(grid) == np.timedelta64(6, "D")).all()
    matrix, valid = resample_matrix(times, grid)
    days = (grid - t0).astype(int)
    expect = (days >= 0) & (days <= 162) & ~((days > 24) & (days < 150))
    np.testing.assert_array_equal(valid, expect)
    series = np.array([0.0, 12.0, 24.0, 150.0, 162.0]) * 0.5  # linear: interpolation is exact
    np.testing.assert_allclose((matrix @ series)[valid], 0.5 * days[valid])
    assert (matrix[~valid] == 0).all()
    # A given origin puts the grid on its dates (e.g. an official L3 product's).
    shifted = time_grid([times], origin="2020-01-04")
    assert shifted[0] == np.datetime64("2019-12-29") and np.datetime64("2020-01-04") in shifted


def test_decomposition_refuses_what_it_cannot_solve(clean_scene):
    asc, desc, _ = clean_scene
    with pytest.raises(InputError, match="ascending and descending"):
        decompose_los([asc, asc.copy()])
    with pytest.raises(InputError, match="los_east"):
        decompose_los([asc, desc.drop_vars("los_east")])
    late = desc.assign_coords(time=desc.time.values + np.timedelta64(3000, "D"))
    with pytest.raises(InputError, match="fewer than 2 dates"):
        decompose_los([asc, late])


def test_cli_synth_los_then_grid_decompose(tmp_path, capsys):
    import xarray as xr

    from insar_raster.cli import main
    from insar_raster.io.cube import open_cube

    folder = tmp_path / "los"
    assert (
        main(
            [
                "synth",
                "--los",
                "-o",
                str(folder),
                "--points",
                "1500",
                "--shape",
                "24x24",
                "--epochs",
                "30",
                "--seed",
                "5",
                "-q",
            ]
        )
        == 0
    )
    zips = sorted(folder.glob("EGMS_L2b_*.zip"))
    assert [z.name[:12] for z in zips] == ["EGMS_L2b_015", "EGMS_L2b_139"]
    cube_path = tmp_path / "ortho.nc"
    assert main(["grid", *map(str, zips), "--decompose", "-o", str(cube_path)]) == 0
    err = capsys.readouterr().err
    assert "L2b track 15 ascending; L2b track 139 descending" in err
    with xr.open_dataset(cube_path) as cube, xr.open_dataset(folder / "truth.nc") as truth:
        assert {"vertical", "east_west", "mp_count_ascending", "mp_count_descending"} <= set(cube.data_vars)
        assert cube["vertical"].dtype == np.float32 and cube.rio.crs.to_epsg() == 3035
        # By default on the EGMS L3 products' dates: every 6 days from 2014-04-03.
        days = (cube.time.values.astype("datetime64[D]") - np.datetime64("2014-04-03")).astype(int)
        assert (days % 6 == 0).all() and not np.isin(cube.time.values, truth.time.values).all()
        ref = truth.sel(x=cube.x, y=cube.y).interp(time=cube.time)
        ref = ref - ref.isel(time=0)  # the cube is zero at its own first date
        for name in ("vertical", "east_west"):
            err_mm = float(np.sqrt(np.nanmean((cube[name].values - ref[name].values) ** 2)))
            assert err_mm < 3.0, name  # default noise: 1.5 mm atmosphere + 1 mm per MP
    # Consumers read either component as their displacement (vertical by default).
    assert open_cube(cube_path).attrs["component"] == "vertical"
    east = open_cube(cube_path, variable="east_west")
    assert east.attrs["component"] == "east_west" and "vertical" not in east
    with pytest.raises(InputError, match=r"no 'north' .*\(it has vertical, east_west\)"):
        open_cube(cube_path, variable="north")
    # --time-origin puts the 6-day grid on a given date; 'first' on the first acquisition.
    first = tmp_path / "first.nc"
    assert main(["grid", *map(str, zips), "--decompose", "--time-origin", "first", "-o", str(first), "-q"]) == 0
    with xr.open_dataset(folder / "truth.nc") as truth:
        np.testing.assert_array_equal(open_cube(first).time.values, truth.time.values)
    origin = np.datetime64(open_cube(cube_path).time.values[0], "D") + np.timedelta64(3, "D")
    shifted = tmp_path / "shifted.nc"
    assert main(["grid", *map(str, zips), "--decompose", "--time-origin", str(origin), "-o", str(shifted), "-q"]) == 0
    days = (open_cube(shifted).time.values.astype("datetime64[D]") - origin).astype(int)
    assert (days % 6 == 0).all()
    assert main(["grid", *map(str, zips), "--decompose", "--time-origin", "soon", "-o", str(tmp_path / "x.nc")]) == 2
    assert "--time-origin" in capsys.readouterr().err and not (tmp_path / "x.nc").exists()
    # One geometry alone cannot be decomposed: exit 2, nothing written.
    assert main(["grid", str(zips[0]), "--decompose", "-o", str(tmp_path / "one.nc")]) == 2
    assert "ascending and descending" in capsys.readouterr().err and not (tmp_path / "one.nc").exists()


def test_cli_forecast_and_export_take_either_component(tmp_path):
    import rasterio
    import xarray as xr

    from insar_raster.cli import main
    from insar_raster.gis.write import write_cube

    asc, desc, _ = make_los_scene(1500, (20, 20), 36, seed=6, atmosphere_mm=0.0, white_noise_mm=0.3)
    path = write_cube(decompose_los([asc, desc]), tmp_path / "ortho.nc")
    out = tmp_path / "east_forecast.nc"
    assert (
        main(
            [
                "forecast",
                str(path),
                "--variable",
                "east_west",
                "-o",
                str(out),
                *FAST_TRAINING_DEFAULT_PATCH,
                "-q",
            ]
        )
        == 0
    )
    with xr.open_dataset(path) as cube, xr.open_dataset(out) as fc:
        # The file says which component it forecasts (it is not LOS displacement).
        assert (
            fc.attrs["component"] == "east_west"
            and fc.attrs["title"] == "InSAR east-west displacement (east positive) forecast"
        )
        assert fc["displacement"].attrs["long_name"].startswith("east-west displacement (east positive) forecast")
        first = fc["displacement"].values[0]
        east, up = cube["east_west"].values[-1], cube["vertical"].values[-1]
        # The forecast continues the east-west series, not the vertical one.
        assert np.nanmean((first - east) ** 2) < 0.2 * np.nanmean((first - up) ** 2)
    assert main(["export", str(path), "--variable", "east_west", "--dates", "last", "-q"]) == 0
    with rasterio.open(tmp_path / "ortho_east_west_displacement.tif") as src:
        np.testing.assert_allclose(src.read(1), np.nan_to_num(east, nan=np.nan), equal_nan=True)
    assert main(["export", str(path), "--variable", "north", "-o", str(tmp_path / "n.tif"), "-q"]) == 2


def test_synth_los_onto_an_existing_file_is_refused_in_one_line(tmp_path, capsys):
    """Was: 'FileExistsError: [Errno 17] File exists' with exit 1 (our failure, not the user's)."""
    from insar_raster.cli import main

    taken = tmp_path / "sample.csv"
    taken.write_text("pid\n")
    argv = ["synth", "--los", "-o", str(taken), "--shape", "8x8", "--points", "40", "--epochs", "6"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"insar-raster synth: error: {taken}: is a file: --los writes a folder of bursts (name a folder with -o)"
    ]
    assert taken.read_text() == "pid\n"
