"""MPs with a few empty epochs on the points path (real point sets merged from several
exports have gaps): kept when they have enough valid epochs, NaN-aware fits, persistence
is the last valid value, scores only on observed held-out values, and an MP with no
valid input epoch gets NaN forecast fields instead of a crash."""

import warnings

import numpy as np
import pandas as pd
import pytest

from insar_raster.evaluate.baselines import make_baseline
from insar_raster.evaluate.points import evaluate_points
from insar_raster.forecast.data import times_in_days
from insar_raster.forecast.points import (
    MAX_EMPTY_SHARE,
    MPHistoryFit,
    forecast_points,
    mp_persistence,
    points_on_cube,
)
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.gridding import grid_points
from insar_raster.io.points import read_points, write_points
from insar_raster.io.pointsout import write_point_forecast
from insar_raster.synth import make_scene

WINDOW, STEPS = 12, 6
N_TIMES = 80


@pytest.fixture(scope="module")
def gappy(tmp_path_factory):
    """An EGMS CSV with three MPs given gaps by blanking their fields, and the cube
    gridded from the complete points."""
    points, _ = make_scene(900, (24, 24), N_TIMES, scene="mixed", seed=3)
    cube = grid_points(points).compute()
    folder = tmp_path_factory.mktemp("gaps")
    full = write_points(points, folder / "full.csv")
    frame = pd.read_csv(full, dtype={"pid": str})
    dates = [c for c in frame.columns if c.isdigit()]
    split = chronological_split(N_TIMES, WINDOW, STEPS, 0.15, 0.15)
    test_target = int(split.target_indices("test")[0, 2])  # a held-out epoch of the first test sample
    few, recent_empty, mostly_empty = frame["pid"].iloc[[10, 20, 30]]
    gaps = {
        few: [5, 40, N_TIMES - 1, test_target],  # incl. the cube's last epoch and a scored epoch
        recent_empty: list(range(N_TIMES - WINDOW, N_TIMES)),  # the last window all empty
        mostly_empty: list(range(1, int(0.7 * N_TIMES))),  # 70 % empty: dropped
    }
    for pid, epochs in gaps.items():
        frame.loc[frame["pid"] == pid, [dates[e] for e in epochs]] = np.nan
    path = folder / "merged.csv"
    frame.to_csv(path, index=False, na_rep="")  # empty fields, as a merged export writes them
    return {"cube": cube, "path": path, "gaps": gaps, "pids": (few, recent_empty, mostly_empty), "split": split}


def test_reading_keeps_mps_with_a_few_empty_epochs_only_when_asked(gappy):
    few, recent_empty, mostly_empty = gappy["pids"]
    with pytest.warns(UserWarning, match="dropped 3 point"):
        strict = read_points(gappy["path"])  # the default (gridding): complete series only
    assert not {few, recent_empty, mostly_empty} & set(strict["pid"].values.astype(str))
    with pytest.warns(UserWarning, match="dropped 1 point.*more than 50 %"):
        points = read_points(gappy["path"], max_missing=MAX_EMPTY_SHARE)
    pids = points["pid"].values.astype(str)
    assert few in pids and recent_empty in pids and mostly_empty not in pids
    assert len(pids) == len(strict["pid"]) + 2
    series = points["displacement"].values[list(pids).index(few)]
    assert np.flatnonzero(np.isnan(series)).tolist() == sorted(gappy["gaps"][few])
    assert series[0] == 0.0  # still relative to its own first epoch


def test_persistence_is_the_last_valid_value_and_nan_without_one():
    values = np.array(
        [
            [0.0, 1.0, 2.0, 3.0, 4.0],
            [0.0, 1.0, 2.0, np.nan, np.nan],
            [0.0, 1.0, np.nan, np.nan, np.nan],
        ],
        np.float32,
    )
    got = mp_persistence(values, [0, 2], window=3, steps=2)  # inputs epochs 0-2, then 2-4
    np.testing.assert_array_equal(got[0, 0], [2.0, 2.0, 1.0])
    np.testing.assert_array_equal(got[1, 1], [4.0, 2.0, np.nan])
    assert got.shape == (2, 2, 3)


def test_history_fit_skips_empty_epochs_and_gives_nan_without_recent_input():
    days = np.arange(60) * 12.0
    clean = (0.02 * days).astype(np.float32)[None].repeat(3, axis=0)
    values = clean.copy()
    values[1, [10, 30, 47]] = np.nan  # a few gaps, one of them the last input epoch
    values[2, 36:48] = np.nan  # the whole window empty
    fit = MPHistoryFit(12, 3, acceleration_ridge=0.0)
    fit.acceleration_ridge_ = 0.0
    got = fit.predict(values, days, [36])  # inputs 36-47, targets 48-50
    np.testing.assert_allclose(got[0, :, 1], got[0, :, 0], atol=0.05)
    np.testing.assert_allclose(got[0, :, 0], clean[0, 48:51], atol=0.1)
    assert np.isnan(got[0, :, 2]).all()


def _points_and_history_fit(gappy):
    """The gappy file's points read as the points path reads them, and a history fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        points = read_points(gappy["path"], crs=gappy["cube"].rio.crs, max_missing=MAX_EMPTY_SHARE)
    return points, make_baseline("history_fit", WINDOW, STEPS).fit(gappy["cube"], gappy["split"])


def test_point_forecast_of_a_merged_file_with_gaps(tmp_path, gappy):
    import geopandas as gpd

    few, recent_empty, _ = gappy["pids"]
    cube = gappy["cube"]
    points, model = _points_and_history_fit(gappy)
    future = model.predict_windows(cube, [N_TIMES - WINDOW])[0]
    times = cube["time"].values[-1] + np.timedelta64(12, "D") * np.arange(1, STEPS + 1)
    forecast = cube.isel(time=slice(0, STEPS)).assign_coords(time=times)
    forecast["displacement"] = (("time", "y", "x"), future)
    ds = forecast_points(model, cube, points, forecast, interval=80)
    pids = list(ds["pid"].values)
    value = ds["forecast"].values
    assert np.isfinite(value[pids.index(few)]).all()  # its last epoch empty: still forecast
    assert np.isnan(value[pids.index(recent_empty)]).all()  # no valid input epoch: no forecast
    assert np.isnan(ds["forecast_lower"].values[pids.index(recent_empty)]).all()
    others = [i for i, p in enumerate(pids) if p != recent_empty]
    assert np.isfinite(value[others]).all() and np.isfinite(ds["mean_velocity"].values).all()
    # The MP with gaps continues its own series: near its last valid value.
    own = points["displacement"].values[list(points["pid"].values.astype(str)).index(few)]
    last_valid = own[np.isfinite(own)][-1]
    assert abs(value[pids.index(few), 0] - last_valid) < 8.0
    path = write_point_forecast(ds, tmp_path / "forecast.gpkg")
    back = gpd.read_file(path, layer="point_forecast")
    dates = [c for c in back.columns if c.isdigit()]
    row = back[back["pid"].astype(str) == recent_empty]
    assert len(back) == len(pids) and row[dates].isna().all(axis=None)


def test_mp_scores_use_only_the_observed_held_out_values(gappy):
    few, recent_empty, _ = gappy["pids"]
    cube, split = gappy["cube"], gappy["split"]
    points, model = _points_and_history_fit(gappy)
    mps = points_on_cube(points, cube)
    grid = np.asarray(cube["displacement"].values, np.float32)
    base_starts = np.arange(split.val[0], split.test[-1] + 1)
    results, arrays = evaluate_points(
        mps,
        times_in_days(cube),
        grid,
        split,
        {"history_fit": model.predict_windows(cube, split.test)},
        base="history_fit",
        base_val_prediction=model.predict_windows(cube, base_starts),
        base_starts=base_starts,
    )
    pids = list(mps["pid"])
    common, observed = arrays["common"], arrays["observed"]
    j = pids.index(few)
    targets = split.target_indices("test")
    # The gap at a scored epoch is not scored; every other held-out value of that MP is.
    gap = np.isin(targets, gappy["gaps"][few])
    assert gap.sum() >= 1
    assert not common[..., j][gap].any() and common[..., j][~gap].all()
    # Only observed values are scored, and every one of them where each model forecasts.
    assert common.sum() == results["scored_values"]
    forecasts = np.all([np.isfinite(p) for p in arrays["predictions"].values()], axis=0)
    np.testing.assert_array_equal(common, np.isfinite(observed) & forecasts)
    for name in ("mp_persistence", "mp_history_fit", "point_forecast"):
        assert np.isfinite(results["models"][name]["observed"]["overall"]["rmse"])
