"""Forecasts and scores at the measurement points (MPs)."""

import numpy as np
import pandas as pd
import pytest

from insar_raster.evaluate.baselines import cube_values, make_baseline
from insar_raster.evaluate.points import evaluate_points, holdout_blocks
from insar_raster.forecast.data import times_in_days
from insar_raster.forecast.points import (
    MPHistoryFit,
    PointForecaster,
    _mixture_half_width,
    forecast_points,
    mp_persistence,
    points_on_cube,
    rolling_point_forecast,
    sample_grid,
)
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.gridding import grid_points
from insar_raster.io.pointsout import write_point_forecast
from insar_raster.synth import make_scene

WINDOW, STEPS = 12, 6


@pytest.fixture(scope="module")
def scene():
    """A realistic scene (AR(1) atmosphere, processes) with per-MP behaviour, gridded."""
    points, truth = make_scene(2500, (32, 32), 100, scene="realistic", seed=2)
    cube = grid_points(points).compute()
    return points, cube


def test_sample_grid_bilinear_where_four_cells_valid_else_nearest():
    rows_, cols_ = np.mgrid[0:4, 0:5].astype(np.float32)
    ramp = 10 * rows_ + cols_  # bilinear is exact on a plane
    got = sample_grid(ramp, np.array([0.5, 2.25, 3.4]), np.array([0.5, 1.75, 3.9]))
    # (3.4, 3.9) lies in the outer half of the last row: held at that row.
    np.testing.assert_allclose(got, [5.5, 24.25, 30.0 + 3.9], rtol=1e-6)
    holed = ramp.copy()
    holed[1, 1] = np.nan
    # One of the four cells is masked: the nearest cell's value (1, 0) -> 10, not NaN.
    assert sample_grid(holed, np.array([0.6]), np.array([0.4]))[0] == 10.0
    # The nearest cell itself masked: NaN. Outside the grid: NaN.
    assert np.isnan(sample_grid(holed, np.array([0.9]), np.array([1.1]))[0])
    assert np.isnan(sample_grid(ramp, np.array([-0.6]), np.array([1.0]))[0])
    # Leading axes are kept: (2, 3, n).
    assert sample_grid(np.stack([np.stack([ramp] * 3)] * 2), np.array([1.0]), np.array([2.0])).shape == (2, 3, 1)


def _fitted_history(cube, split):
    return make_baseline("history_fit", WINDOW, STEPS).fit(cube, split)


def test_mp_scores_are_on_exactly_the_held_out_epochs_and_never_learn_from_them(scene):
    points, cube = scene
    split = chronological_split(cube.sizes["time"], WINDOW, STEPS, 0.15, 0.15)
    model = _fitted_history(cube, split)
    mps = points_on_cube(points, cube)
    days, grid = times_in_days(cube), cube_values(cube)
    preds = {
        "persistence": model.predict_windows(cube, split.test) * 0 + grid[split.test + WINDOW - 1][:, None],
        "history_fit": model.predict_windows(cube, split.test),
    }
    val = model.predict_windows(cube, split.val)
    res, arrays = evaluate_points(mps, days, grid, split, preds, "history_fit", val)
    targets = split.target_indices("test")
    assert res["target_epochs"] == targets.tolist()
    assert np.all(targets >= split.val_end)
    # Independent per-MP persistence on those epochs.
    values = mps["values"]
    expected = (values[:, targets] - values[:, split.test + WINDOW - 1][:, :, None]).transpose(1, 2, 0)
    common = arrays["common"]  # (sample, step, MP) where every model forecasts
    assert common.shape == expected.shape and common.mean() > 0.9
    np.testing.assert_array_equal(arrays["observed"], values[:, targets].transpose(1, 2, 0))
    assert res["models"]["mp_persistence"]["observed"]["overall"]["rmse"] == pytest.approx(
        float(np.sqrt(np.mean(expected[common] ** 2))), rel=1e-5
    )
    assert set(res["models"]) == {"persistence", "history_fit", "mp_persistence", "mp_history_fit", "point_forecast"}
    # Corrupting the MPs' held-out values changes the scores but not what was learned.
    bad = dict(mps, values=values.copy())
    bad["values"][:, split.val_end :] += 50.0
    res_bad, _ = evaluate_points(bad, days, grid, split, preds, "history_fit", val)
    assert res_bad["point_model"]["weights"] == res["point_model"]["weights"]
    assert res_bad["mp_history_fit"] == res["mp_history_fit"]
    assert res_bad["models"]["mp_history_fit"]["observed"]["overall"]["rmse"] > 10


def test_point_forecast_beats_both_per_mp_baselines(scene):
    points, cube = scene
    split = chronological_split(cube.sizes["time"], WINDOW, STEPS, 0.15, 0.15)
    model = _fitted_history(cube, split)
    mps = points_on_cube(points, cube)
    days, grid, values = times_in_days(cube), cube_values(cube), mps["values"]
    observed = values[:, split.target_indices("test")].transpose(1, 2, 0)

    series = sample_grid(grid, mps["rows"], mps["cols"]).T

    def cell(starts):
        return sample_grid(model.predict_windows(cube, starts), mps["rows"], mps["cols"])

    point = PointForecaster(WINDOW, STEPS).fit(values, days, split.val, cell(split.val), series)
    scores = {
        "point": point.predict(values, days, split.test, cell(split.test), series),
        "persistence": mp_persistence(values, split.test, WINDOW, STEPS),
        "history": MPHistoryFit(WINDOW, STEPS).fit(values, days, split.val).predict(values, days, split.test),
    }
    rmse = {k: float(np.sqrt(np.mean((v - observed) ** 2))) for k, v in scores.items()}
    print(rmse, point.details())
    assert rmse["point"] < 0.95 * min(rmse["history"], rmse["persistence"])
    # The AR(1) atmosphere shared by neighbours is carried: the cube's last residual gets weight.
    assert np.all(point.carry_[:2, 0] > 0.3)
    # With all weight on the MP's own history fit and nothing carried: the per-MP history fit.
    point.weights_ = np.tile(np.eye(2)[0], (STEPS, 1))
    point.carry_ = np.zeros_like(point.carry_)
    np.testing.assert_allclose(
        point.predict(values, days, split.test, cell(split.test), series), scores["history"], atol=1e-3
    )


def test_holdout_blocks_hold_out_one_block_in_four():
    mask = holdout_blocks((32, 40), 8)
    assert mask.shape == (32, 40) and mask.mean() == pytest.approx(0.25, abs=0.05)
    assert mask[8:16, 8:16].all() and not mask[:8].any()
    with pytest.raises(ValueError):
        holdout_blocks((10, 40), 8)


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet", ".csv"])
def test_point_forecast_round_trips_with_crs_pids_and_date_fields(tmp_path, scene, suffix):
    import geopandas as gpd

    points, cube = scene
    n_times = cube.sizes["time"]
    split = chronological_split(n_times, WINDOW, STEPS, 0.15, 0.15)
    model = _fitted_history(cube, split)
    future = model.predict_windows(cube, [n_times - WINDOW])[0]
    step = np.timedelta64(12, "D")
    times = cube["time"].values[-1] + step * np.arange(1, STEPS + 1)
    forecast = cube.isel(time=slice(0, STEPS)).assign_coords(time=times)
    forecast["displacement"] = (("time", "y", "x"), future)
    ds = forecast_points(model, cube, points, forecast, interval=80)
    assert ds.sizes["time"] == STEPS and np.isfinite(ds["forecast"].values).all()
    path = write_point_forecast(ds, tmp_path / f"forecast{suffix}")
    names = [str(t)[:10].replace("-", "") for t in np.asarray(times, "datetime64[D]")]
    if suffix == ".csv":
        back = pd.read_csv(path, dtype={"pid": str})
    else:
        back = gpd.read_parquet(path) if suffix == ".parquet" else gpd.read_file(path, layer="point_forecast")
        assert back.crs == cube.rio.crs
        assert (back.geometry.geom_type == "Point").all()
        np.testing.assert_allclose(back.geometry.x, ds["x"].values)
    if suffix == ".gpkg":
        import sqlite3

        # GeoPackage 1.2 (user_version 10200): what QGIS 3.22/3.28 (GDAL < 3.7) open without a warning.
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
    assert list(back.columns[:4]) == ["pid", "easting", "northing", "mean_velocity"]
    assert [c for c in back.columns if c.isdigit()] == names
    # Each date is followed by its interval fields, as written by the forecast.
    for j, name in enumerate(names):
        for var, suffix in (("forecast_lower", "_lower"), ("forecast_upper", "_upper")):
            np.testing.assert_allclose(back[name + suffix].to_numpy(), ds[var].values[:, j], atol=0.006)
    assert (back[[n + "_lower" for n in names]].to_numpy() < back[names].to_numpy()).all()
    assert (back[names].to_numpy() < back[[n + "_upper" for n in names]].to_numpy()).all()
    assert back.columns.get_loc(names[0] + "_lower") == back.columns.get_loc(names[0]) + 1
    np.testing.assert_array_equal(back["pid"].astype(str), ds["pid"].values)
    assert sorted(back["pid"]) == sorted(points["pid"].values.astype(str))
    np.testing.assert_allclose(back[names].to_numpy(), ds["forecast"].values, atol=0.006)
    # Same reference as the input: the first forecast continues each MP's series.
    last = points["displacement"].values[:, -1]
    assert np.median(np.abs(back[names[0]].to_numpy() - last)) < 6.0
    with pytest.raises(Exception, match="already exists"):
        write_point_forecast(ds, path)


@pytest.fixture(scope="module")
def files(tmp_path_factory, scene):
    """The scene's points as an EGMS CSV and the cube gridded from them."""
    from insar_raster.gis.write import write_cube
    from insar_raster.io.points import write_points

    points, cube = scene
    folder = tmp_path_factory.mktemp("pts")
    csv = write_points(points, folder / "points.csv")
    return csv, write_cube(cube, folder / "cube.nc")


def test_cli_forecast_points_writes_a_point_layer(tmp_path, capsys, files):
    import geopandas as gpd

    from insar_raster.cli import main

    csv, cube_path = files
    out = tmp_path / "forecast.gpkg"
    argv = [
        "forecast",
        str(cube_path),
        "--points",
        str(csv),
        "-o",
        str(out),
        "--epochs",
        "1",
        "--window",
        "6",
        "--steps",
        "3",
        "--samples-per-epoch",
        "16",
        "--batch-size",
        "8",
        "--patch-size",
        "16",
        "-q",
    ]
    assert main(argv) == 0
    layer = gpd.read_file(out, layer="point_forecast")
    assert layer.crs.to_epsg() == 3035 and len(layer) > 2000
    dates = [c for c in layer.columns if c.isdigit()]
    assert len(dates) == 3 and dates == sorted(dates)
    assert {"pid", "easting", "northing", "mean_velocity"} <= set(layer.columns)
    assert main(argv) == 2  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    assert main(argv[:4] + ["-o", str(tmp_path / "f.tif"), "-q"]) == 2  # a raster name for a point layer
    assert "point forecast" in capsys.readouterr().err


def test_cli_evaluate_points_reports_cells_and_mps_side_by_side(tmp_path, capsys, files):
    import json

    from insar_raster.cli import main

    csv, cube_path = files
    out = tmp_path / "rep"
    assert (
        main(
            [
                "evaluate",
                str(cube_path),
                "--points",
                str(csv),
                "--models",
                "persistence,history_fit",
                "--holdout-blocks",
                "8",
                "--permutation-repeats",
                "0",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "mp_persistence (per MP)" in printed and "point_forecast (per MP)" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    pts = metrics["points"]
    assert pts["base"] == "history_fit" and pts["target_epochs"][0][0] == metrics["split"]["val_end"]
    assert set(pts["models"]) >= {"persistence", "history_fit", "mp_persistence", "mp_history_fit", "point_forecast"}
    assert pts["holdout"]["held_out_points"] > 100 and metrics["holdout"]["cells"] == 4 * 64
    report = (out / "report.md").read_text()
    assert "against the gridded observations" in report and "Which table to trust" in report
    assert (
        main(
            [
                "evaluate",
                str(cube_path),
                "--holdout-blocks",
                "20",
                "--models",
                "persistence",
                "-o",
                str(tmp_path / "r2"),
                "-q",
            ]
        )
        == 2
    )  # 32x32 cells: too small for blocks of 20
    assert "spatial hold-out" in capsys.readouterr().err


def test_points_that_needed_input_crs_or_allow_dates_to_grid_take_them_again(tmp_path, capsys, files):
    """GeoParquet without a CRS and pre-Sentinel dates: ``grid`` reads them with --input-crs
    / --allow-dates, and so do ``forecast --points`` and ``evaluate --points`` (was: refused,
    hinting at a Python parameter ``input_crs=`` the command had no flag for)."""
    import json

    import geopandas as gpd
    import xarray as xr

    from insar_raster.cli import main

    csv, cube_path = files
    frame = pd.read_csv(csv, dtype={"pid": str})
    dates = [c for c in frame.columns if c.isdigit()]
    shift = np.timedelta64(3650, "D")  # ten years earlier: before Sentinel-1
    old = {c: str(np.datetime64(f"{c[:4]}-{c[4:6]}-{c[6:]}") - shift).replace("-", "") for c in dates}
    geometry = gpd.points_from_xy(frame["easting"], frame["northing"])
    gpd.GeoDataFrame(frame[["pid", *dates]].rename(columns=old), geometry=geometry).to_parquet(tmp_path / "p.parquet")
    with xr.open_dataset(cube_path, decode_coords="all") as cube:
        cube.assign_coords(time=cube["time"].values - shift).to_netcdf(tmp_path / "old.nc")

    points = ["--points", str(tmp_path / "p.parquet")]
    forecast = ["forecast", str(tmp_path / "old.nc"), *points, "-o", str(tmp_path / "f.gpkg"), "-q"]
    assert main(forecast) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "p.parquet: date column" in err[0] and "--allow-dates accepts" in err[0], err
    assert main([*forecast, "--allow-dates"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "p.parquet: unknown CRS" in err[0] and "--input-crs EPSG:XXXX" in err[0], err
    assert not (tmp_path / "f.gpkg").exists()

    report = tmp_path / "rep"
    evaluate = ["evaluate", str(tmp_path / "old.nc"), *points, "--models", "persistence", "-o", str(report), "-q"]
    assert main([*evaluate, "--input-crs", "EPSG:3035", "--allow-dates", "--permutation-repeats", "0"]) == 0
    assert json.loads((report / "metrics.json").read_text())["points"]["n_points"] > 2000
    assert (
        main(["evaluate", str(tmp_path / "old.nc"), "--input-crs", "EPSG:3035", "-o", str(tmp_path / "r2"), "-q"]) == 2
    )
    assert "--input-crs: only applies with --points" in capsys.readouterr().err


def test_point_intervals_cover_the_next_epochs_at_about_their_level(tmp_path, scene):
    """80 % intervals, calibrated on the cube's last observed samples, on 6 epochs never seen."""
    points, cube = scene
    n_past = cube.sizes["time"] - STEPS
    past, points_past = cube.isel(time=slice(0, n_past)), points.isel(time=slice(0, n_past))
    split = chronological_split(n_past, WINDOW, STEPS, 0.15, 0.15)
    model = _fitted_history(past, split)
    forecast = cube.isel(time=slice(n_past, None)).copy()
    forecast["displacement"] = (("time", "y", "x"), model.predict_windows(past, [n_past - WINDOW])[0])
    ds = forecast_points(model, past, points_past, forecast, interval=80)
    lower, upper = ds["forecast_lower"].values, ds["forecast_upper"].values
    assert np.all(lower < ds["forecast"].values) and np.all(ds["forecast"].values < upper)
    actual = points["displacement"].values[:, n_past:]
    covered = float(np.mean((lower <= actual) & (actual <= upper)))
    print(f"coverage {covered:.3f}")
    assert 0.65 < covered < 0.95
    frame_path = write_point_forecast(ds, tmp_path / "f.csv")
    columns = pd.read_csv(frame_path, nrows=1).columns
    first = str(np.datetime64(forecast["time"].values[0], "D")).replace("-", "")
    assert {first, f"{first}_lower", f"{first}_upper"} <= set(columns)


@pytest.mark.parametrize("rolling", [False, True])
def test_evaluate_reports_interval_coverage_at_the_mps_within_five_points_of_the_level(rolling):
    """A scene with known per-MP noise (2-4 mm) and white atmosphere: 80 % intervals,
    calibrated at the MPs on the validation samples (``rolling``: at each test origin on
    the latest samples observed by then), cover 75-85 % of the MPs' own held-out values
    at every step."""
    points, _ = make_scene(2000, (24, 24), 100, scene="mixed", seed=5)
    cube = grid_points(points).compute()
    split = chronological_split(cube.sizes["time"], WINDOW, STEPS, 0.15, 0.15)
    model = _fitted_history(cube, split)
    mps = points_on_cube(points, cube)
    days, grid = times_in_days(cube), cube_values(cube)
    preds = {"history_fit": model.predict_windows(cube, split.test)}
    pool = np.arange(split.val[0], split.test[-1]) if rolling else split.val
    val = model.predict_windows(cube, pool)
    res, arrays = evaluate_points(mps, days, grid, split, preds, "history_fit", val, interval=80, base_starts=pool)
    assert res["point_model"]["last_origin_fit_starts"][-1] == (split.test[-1] - STEPS if rolling else split.val[-1])
    cover = res["models"]["point_forecast"]["interval"]
    print(cover)
    assert cover["level_percent"] == 80 and len(cover["coverage_percent"]) == STEPS
    assert all(75 <= c <= 85 for c in cover["coverage_percent"])
    assert all(w > 0 for w in cover["mean_width_mm"])
    # Recomputed from the arrays on the test targets: the same score set, and a level
    # that is not the calibrated one changes the coverage (the test can fail).
    res50, _ = evaluate_points(mps, days, grid, split, preds, "history_fit", val, interval=50, base_starts=pool)
    assert all(45 <= c <= 55 for c in res50["models"]["point_forecast"]["interval"]["coverage_percent"])
    assert np.all(arrays["observed"] == mps["values"][:, split.target_indices("test")].transpose(1, 2, 0))


def _scene_arrays(scene):
    points, cube = scene
    split = chronological_split(cube.sizes["time"], WINDOW, STEPS, 0.15, 0.15)
    model = _fitted_history(cube, split)
    mps = points_on_cube(points, cube)
    days, grid, values = times_in_days(cube), cube_values(cube), mps["values"]
    series = sample_grid(grid, mps["rows"], mps["cols"]).T
    pool = np.arange(split.val[0], split.test[-1])

    def cell(starts):
        return sample_grid(model.predict_windows(cube, starts), mps["rows"], mps["cols"])

    return split, days, values, series, pool, cell


def test_rolling_point_forecast_learns_each_step_only_from_what_is_observed_at_its_origin(scene):
    split, days, values, series, pool, cell = _scene_arrays(scene)
    test = split.test[::4]
    args = (days, test, cell(test), pool, cell(pool), series, WINDOW, STEPS)
    got = rolling_point_forecast(values, *args, interval=80)
    for i, s in enumerate(test):
        for k, fit in enumerate(got["fit_starts"][i]):
            # The k-th (1-based k + 1) target of every sample learned from is observed at the origin.
            assert 6 <= len(fit) <= 12 and max(fit) + WINDOW + k <= s + WINDOW - 1
        assert got["fit_starts"][i][0][-1] == s - 1  # step 1 learns up to the sample just before
        # One set of weights for every step of an origin.
        np.testing.assert_array_equal(got["weights"][i], np.broadcast_to(got["weights"][i][0], got["weights"][i].shape))
        # Values after the origin's last input epoch change nothing of its forecast or interval.
        bad = values.copy()
        bad[:, s + WINDOW :] += 40.0
        again = rolling_point_forecast(bad, *args, interval=80)
        for key in ("forecast", "lower", "upper"):
            np.testing.assert_allclose(again[key][i], got[key][i], atol=1e-4)
    # A change before the origin does change it (the test can fail).
    bad = values.copy()
    bad[:, test[-1] + WINDOW - 3 : test[-1] + WINDOW] += 40.0
    assert not np.allclose(rolling_point_forecast(bad, *args)["forecast"][-1], got["forecast"][-1], atol=1e-2)
    with pytest.raises(ValueError, match="no fitting sample"):
        rolling_point_forecast(values, days, pool[:1], cell(pool[:1]), pool, cell(pool), series, WINDOW, STEPS)


def test_point_forecast_drops_a_grid_model_that_validated_well_then_fails(scene):
    """A grid model that knows the cube's future on the validation samples (it gets most
    of the weight there) and is 15 mm off from the first sample after them, in opposite
    directions in the scene's two halves (one error per sample, step and half): weights
    learned once on the validation samples trust it on the test samples and lose badly
    to the MP's own history fit; weights learned at each origin on the latest observed
    samples drop it and end within 5 % of the MP's own history fit."""
    split, days, values, series, pool, cell = _scene_arrays(scene)
    rng = np.random.default_rng(0)
    points, cube = scene
    rows = points_on_cube(points, cube)["rows"]
    half = np.where(rows < np.median(rows), 1.0, -1.0).astype(np.float32)

    def failing(starts):
        starts = np.asarray(starts)
        out = series[:, starts[:, None] + WINDOW + np.arange(STEPS)].transpose(1, 2, 0).copy()
        late = starts > split.val[-1]
        out[late] += rng.normal(0, 15.0, (int(late.sum()), STEPS, 1)).astype(np.float32) * half
        return out

    test_cell, pool_cell = failing(split.test), failing(pool)
    observed = values[:, split.target_indices("test")].transpose(1, 2, 0)

    def score(pred):
        return float(np.sqrt(np.nanmean((pred - observed) ** 2)))

    own = score(MPHistoryFit(WINDOW, STEPS).fit(values, days, split.val).predict(values, days, split.test))
    n_val = len(split.val)
    static = PointForecaster(WINDOW, STEPS).fit(values, days, split.val, pool_cell[:n_val], series)
    static_score = score(static.predict(values, days, split.test, test_cell, series))
    rolled = rolling_point_forecast(values, days, split.test, test_cell, pool, pool_cell, series, WINDOW, STEPS)
    rolled_score = score(rolled["forecast"])
    print(f"own {own:.3f} static {static_score:.3f} rolling {rolled_score:.3f}")
    assert static_score > 1.1 * own  # what the validation samples alone lead to
    assert rolled_score < 1.05 * own and rolled_score < 0.9 * static_score
    assert np.all(static.weights_[:, 1] > 0.5)
    # At the last origin the grid member has little weight left.
    assert np.all(rolled["weights"][-1, :, 0] > 0.6)


def test_evaluate_reports_the_weights_used_at_the_first_and_last_test_origin(scene):
    split, days, values, series, pool, cell = _scene_arrays(scene)
    points, cube = scene
    mps = points_on_cube(points, cube)
    grid = cube_values(cube)
    model = _fitted_history(cube, split)
    preds = {"history_fit": model.predict_windows(cube, split.test)}
    res, _ = evaluate_points(
        mps, days, grid, split, preds, "history_fit", model.predict_windows(cube, pool), base_starts=pool
    )
    rolled = rolling_point_forecast(
        values,
        days,
        split.test,
        cell(split.test),
        pool,
        cell(pool),
        series,
        WINDOW,
        STEPS,
        acceleration_ridge=res["mp_history_fit"]["acceleration_ridge"],
    )
    details = res["point_model"]
    np.testing.assert_allclose(details["weights"], rolled["weights"][0], atol=1e-4)
    np.testing.assert_allclose(details["last_origin_weights"], rolled["weights"][-1], atol=1e-4)
    np.testing.assert_allclose(details["last_origin_carry"], rolled["carry"][-1], atol=1e-4)
    # Learned again at each origin: the first and the last origin do not share their weights.
    assert not np.allclose(rolled["weights"][0][0], rolled["weights"][-1][0], atol=1e-3)


def test_interval_half_width_is_the_level_quantile_of_the_scene_wide_plus_own_error():
    """The half-width at noise level ``sigma`` is the 80 % quantile of ``|c + sigma z|``,
    ``c`` a scene-wide error drawn from the weighted calibration dates (rare large ones
    included) and ``z`` an MP's own normalised error."""
    rng = np.random.default_rng(0)
    common = np.r_[np.zeros(30), [-7.0, 8.0, 6.5]]  # a scene-wide error on 3 of 33 dates
    weight = np.r_[np.full(30, 0.75 / 30), np.full(3, 0.25 / 3)]
    own = rng.standard_normal(20000)
    sigma = np.array([1.0, 2.0, 3.5])
    half = _mixture_half_width(common, own, sigma, 80, weight)
    c = rng.choice(common, 400_000, p=weight / weight.sum())
    z = rng.standard_normal(400_000)
    for s, h in zip(sigma, half):
        assert np.mean(np.abs(c + s * z) <= h) == pytest.approx(0.80, abs=0.006)
    # Without scene-wide errors: the MPs' own quantile, 1.28 sigma for Gaussian errors.
    np.testing.assert_allclose(_mixture_half_width(np.zeros(5), own, sigma, 80), 1.2816 * sigma, rtol=0.02)
    # The rare dates widen it (here by more than 10 % at every noise level).
    assert np.all(half > 1.1 * 1.2816 * sigma)


def _scene_wide_error_scene(amp, n_mp=200, n_times=130, first=100, seed=0):
    """MPs with their own rate and 2-4 mm noise on a cube that knows their motion, plus a
    scene-wide error (white, ``amp`` mm) on every date except the 17 before the first
    forecast origin ``first``: the samples learned from there never showed it."""
    rng = np.random.default_rng(seed)
    days = 12.0 * np.arange(n_times)
    sigma = rng.uniform(2, 4, n_mp)
    truth = rng.normal(0, 5, n_mp)[:, None] / 365.25 * days[None]
    common = rng.normal(0, amp, n_times)
    last = first + WINDOW - 1
    common[last - 16 : last + 1] = 0.0
    values = (truth + common + sigma[:, None] * rng.standard_normal((n_mp, n_times))).astype(np.float32)

    def cell(starts):
        return truth[:, np.asarray(starts)[:, None] + WINDOW + np.arange(STEPS)].transpose(1, 2, 0).astype(np.float32)

    return values, days, (truth + common).astype(np.float32), cell


@pytest.mark.parametrize("amp", [0.0, 4.0])
def test_point_intervals_learn_scene_wide_errors_the_latest_samples_never_showed(amp):
    """A scene-wide error absent from the 12 samples before the first origins, present in
    the older past and after: gathered from older origins (``common_mode_share``), it
    widens every MP's interval and covers more of the MPs' next values (more with more
    weight); without such errors the older past changes nothing and all hold the level."""
    values, days, series, cell = _scene_wide_error_scene(amp)
    test = np.arange(100, 112)
    pool = np.arange(40, test[-1])
    observed = values[:, test[:, None] + WINDOW + np.arange(STEPS)].transpose(1, 2, 0)
    cover = {}
    for share in (0.0, 0.25, 1.0):
        got = rolling_point_forecast(
            values,
            days,
            test,
            cell(test),
            pool,
            cell(pool),
            series,
            WINDOW,
            STEPS,
            interval=80,
            common_mode_share=share,
        )
        cover[share] = 100 * ((got["lower"] <= observed) & (observed <= got["upper"])).mean(axis=(0, 2))
    print(amp, cover)
    if amp == 0:
        for share in cover:
            assert np.all(np.abs(cover[share] - 80) <= 5)
            assert np.all(np.abs(cover[share] - cover[0.0]) < 1.5)
    else:
        assert cover[0.0].mean() < 65  # the 12 latest samples alone: far too narrow
        assert np.all(cover[0.25] >= cover[0.0] + 2)
        assert np.all(cover[1.0] >= cover[0.25] + 5)


def test_point_forecast_takes_no_scene_wide_departure_from_the_grid_model(scene):
    """The grid member adds what the cube says about each MP's place, not about the whole
    scene: shifting the grid forecast of every MP by one amount per sample and step
    (15 mm, a scene-level extrapolation that held on the samples learned from and then
    fails) changes neither the weights nor the point forecast; a shift of half the
    scene does change it (the test can fail)."""
    split, days, values, series, pool, cell = _scene_arrays(scene)
    points, cube = scene
    rows = points_on_cube(points, cube)["rows"]
    test_cell, pool_cell = cell(split.test), cell(pool)
    rng = np.random.default_rng(1)

    def shifted(block, where):
        offset = rng.normal(0, 15.0, block.shape[:2] + (1,)).astype(np.float32)
        return block + offset * where

    args = (days, split.test)
    got = rolling_point_forecast(values, *args, test_cell, pool, pool_cell, series, WINDOW, STEPS)
    everywhere = np.ones(len(rows), np.float32)
    again = rolling_point_forecast(
        values, *args, shifted(test_cell, everywhere), pool, shifted(pool_cell, everywhere), series, WINDOW, STEPS
    )
    np.testing.assert_allclose(again["forecast"], got["forecast"], atol=0.02)  # float32 mm
    np.testing.assert_allclose(again["weights"], got["weights"], atol=1e-3)
    part = (rows < np.median(rows)).astype(np.float32)
    other = rolling_point_forecast(values, *args, shifted(test_cell, part), pool, pool_cell, series, WINDOW, STEPS)
    assert np.abs(other["forecast"] - got["forecast"]).max() > 1.0
