"""``evaluate --resample STEP``: the cube is put on a regular step before the split, the
report says so, and MPs are still scored on their own values at their own dates."""

import json

import numpy as np
import pytest
import xarray as xr

from insar_raster.cli import main
from insar_raster.forecast.points import points_on_cube, sample_grid
from insar_raster.gis.write import write_cube
from insar_raster.grid.gridding import grid_points
from insar_raster.io.points import write_points
from insar_raster.synth import make_scene

#: Small, fast evaluation: two baselines, window 4, 2 steps, no permutation test.
FAST = ["--models", "persistence,trend", "--window", "4", "--steps", "2", "--permutation-repeats", "0"]


@pytest.fixture(scope="module")
def six_day(tmp_path_factory):
    """MPs every 6 days (40 epochs) as an EGMS CSV, the cube gridded from them and the truth cube."""
    points, truth = make_scene(600, (16, 16), 40, 6, scene="bowl", seed=4)
    folder = tmp_path_factory.mktemp("six_day")
    csv = write_points(points, folder / "points.csv")
    cube = write_cube(grid_points(points).compute(), folder / "cube.nc")
    write_cube(truth, folder / "truth.nc")
    return points, csv, cube


def _days(dates) -> np.ndarray:
    return np.asarray(dates, "datetime64[D]").astype(int)


def test_evaluate_resample_12d_scores_dates_12_days_apart_and_says_so(tmp_path, six_day):
    points, _, cube = six_day
    out = tmp_path / "rep"
    truth = cube.with_name("truth.nc")  # 6-day truth: read on the 12-day dates
    assert main(["evaluate", str(cube), "--resample", "12D", "--truth", str(truth), "-o", str(out), *FAST, "-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["cube"]["shape"][0] == 20 and metrics["cube"]["resampled_step"] == "12D"
    assert metrics["has_truth"]
    first = _days(points["time"].values[:1])[0]
    for dates in metrics["test_dates"]:  # every scored date on the 12-day grid, 12 days apart
        days = _days(dates)
        assert np.all(np.diff(days) == 12) and np.all((days - first) % 12 == 0)
    assert np.diff(_days([d[0] for d in metrics["test_dates"]])).tolist() == [12] * (len(metrics["test_dates"]) - 1)
    report = (out / "report.md").read_text()
    assert "20 epochs" in report and "resampled to a regular 12D step" in report
    # Without --resample, the report does not claim it.
    assert main(["evaluate", str(cube), "-o", str(tmp_path / "plain"), *FAST, "-q"]) == 0
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert plain["cube"]["shape"][0] == 40 and plain["cube"]["resampled_step"] is None
    assert "resampled to a regular" not in (tmp_path / "plain" / "report.md").read_text()


@pytest.mark.parametrize("step, problem", [("12X", "not a time step"), ("0D", "must be positive")])
def test_evaluate_bad_resample_step_is_one_line_exit_2(tmp_path, capsys, six_day, step, problem):
    _, _, cube = six_day
    out = tmp_path / "rep"
    assert main(["evaluate", str(cube), "--resample", step, "-o", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err and "--resample" in err and "Traceback" not in err
    assert not out.exists()


def test_evaluate_points_with_resample_scores_each_mp_on_its_own_values(tmp_path, six_day):
    """12D on 6-day MPs: every cube date is an MP acquisition, so each MP is read (never
    interpolated) there; per-MP persistence matches the MPs' own values on those dates."""
    points, csv, cube = six_day
    out = tmp_path / "rep"
    argv = ["evaluate", str(cube), "--points", str(csv), "--resample", "12D", "-o", str(out), *FAST, "-q"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    pts = metrics["points"]
    mp = pts["models"]["mp_persistence"]["observed"]["overall"]
    # Independently: the MPs' own values at the resampled dates (every other 6-day epoch),
    # at the MPs where the grid forecasts are valid (a few MPs at the edge of the
    # triangulation lie on a masked cell).
    gridded = xr.open_dataset(cube)
    on_grid = points_on_cube(points, gridded)
    valid = np.isfinite(sample_grid(gridded["displacement"].values, on_grid["rows"], on_grid["cols"])).all(axis=0)
    gridded.close()
    assert 0 < (~valid).sum() < 5
    on_cube = np.asarray(points["displacement"].values, np.float64)[valid, ::2]
    targets = np.asarray(pts["target_epochs"])  # (test samples, steps), epochs of the resampled cube
    origin = on_cube[:, targets[:, 0] - 1]  # the last input epoch of each sample
    errors = on_cube[:, targets] - origin[:, :, None]
    assert pts["scored_values"] == errors.size
    assert mp["rmse"] == pytest.approx(float(np.sqrt(np.mean(errors**2))), rel=1e-4)
    assert _days([metrics["test_dates"][0][0]])[0] in _days(points["time"].values)


def test_evaluate_points_refuses_a_step_off_the_mp_dates(tmp_path, capsys, six_day):
    _, csv, cube = six_day
    out = tmp_path / "rep"
    assert main(["evaluate", str(cube), "--points", str(csv), "--resample", "9D", "-o", str(out), *FAST, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not in the points" in err and "drop --resample 9D" in err
    assert str(csv) in err and not out.exists()


def test_evaluate_truth_refuses_a_step_off_its_dates(tmp_path, capsys, six_day):
    _, _, cube = six_day
    truth = cube.with_name("truth.nc")
    argv = ["evaluate", str(cube), "--truth", str(truth), "--resample", "9D", "-o", str(tmp_path / "r"), *FAST, "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not in the truth cube" in err and "drop --resample 9D" in err
    assert str(truth) in err
