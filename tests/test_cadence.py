"""Training and interval calibration across a cadence change (6-day epochs, then 12-day:
Sentinel-1B's loss in December 2021)."""

from __future__ import annotations

import numpy as np
import pytest

from insar_raster import TrainConfig, train_model
from insar_raster.evaluate.report import _deep_parts
from insar_raster.forecast.cadence import cadence_view
from insar_raster.forecast.data import times_in_days
from insar_raster.forecast.intervals import coverage_and_width
from insar_raster.forecast.modelfile import save_model
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.spec import GridSpec
from insar_raster.info import describe, format_description
from insar_raster.io.cube import make_cube

SHAPE = (24, 24)
N_SIX, N_TWELVE = 125, 25  # validation ends inside the 6-day part, the test part steps 12 days
WINDOW, STEPS = 8, 3
CONFIG = dict(
    window=WINDOW,
    steps=STEPS,
    epochs=1,
    samples_per_epoch=16,
    batch_size=8,
    patch_size=16,
    val_patches=8,
    hidden=8,
    features=8,
    device="cpu",
    seed=0,
)


def _times():
    six = np.datetime64("2019-01-01") + np.arange(N_SIX) * np.timedelta64(6, "D")
    twelve = six[-1] + np.arange(1, N_TWELVE + 1) * np.timedelta64(12, "D")
    return np.concatenate([six, twelve])


def _cube(seed=0):
    """Per-cell random walks (1 mm per 6 days) under a trend, 0.5 mm white noise: a
    forecast's error grows with the days ahead, so 12-day steps err more than 6-day ones."""
    rng = np.random.default_rng(seed)
    times = _times()
    days = (times - times[0]).astype("timedelta64[D]").astype(float)
    increments = (
        rng.normal(0, 1.0, (len(times), *SHAPE)) * np.sqrt(np.diff(days, prepend=days[0] - 6) / 6)[:, None, None]
    )
    values = -10.0 * days[:, None, None] / 365.25 + np.cumsum(increments, axis=0)
    values += rng.normal(0, 0.5, values.shape)
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_000_000.0, SHAPE[1], SHAPE[0])
    return make_cube((values - values[:1]).astype(np.float32), times, spec)


def _split(cube):
    return chronological_split(cube.sizes["time"], WINDOW, STEPS, 0.15, 0.15)


def test_cadence_view_reads_only_known_epochs_at_the_forecast_step():
    cube = _cube()
    split = _split(cube)
    view = cadence_view(cube, split)
    assert view is not None and (view.step_days, view.native_step_days) == (12.0, 6.0)
    days, native = times_in_days(view.cube), times_in_days(cube)
    assert np.allclose(np.diff(days), 12.0)
    assert days[-1] <= native[split.val_end - 1]
    # Training targets lie at or before the last training epoch, validation targets after it.
    targets = view.split.target_indices("train")
    assert days[targets.max()] <= native[split.train_end - 1]
    assert days[view.split.target_indices("val").min()] > native[split.train_end - 1]
    assert len(view.split.val) and not len(view.split.test)
    # Nothing from the test part: poisoning it leaves the view unchanged.
    poisoned = cube.copy(deep=True)
    poisoned["displacement"][split.val_end :] = 1e6
    assert np.array_equal(cadence_view(poisoned, split).cube["displacement"].values, view.cube["displacement"].values)
    # No cadence change, no view.
    regular = cube.isel(time=slice(0, N_SIX))
    assert cadence_view(regular, _split(regular)) is None


@pytest.fixture(scope="module")
def trained():
    cube = _cube()
    split = _split(cube)
    return cube, split, train_model(cube, TrainConfig(**CONFIG), split=split, progress=False)


def test_training_across_a_cadence_change_never_reads_test_epochs(trained, tmp_path):
    cube, split, model = trained
    assert model.metadata_["cadence"]["step_days"] == 12.0
    details = model.details()
    assert details["cadence"]["val_samples"] > 0
    assert "resampled to 12 days" in _deep_parts("convlstm", {"details": details})
    info = describe(save_model(model, tmp_path / "model.ipt"))
    assert info["cadence"]["native_step_days"] == 6.0
    assert "  step_days: 12" in format_description(info)
    poisoned = cube.copy(deep=True)
    poisoned["displacement"][split.val_end :] = 1e6
    other = train_model(poisoned, TrainConfig(**CONFIG), split=split, progress=False)
    for name, tensor in model.model.state_dict().items():
        assert np.array_equal(tensor.numpy(), other.model.state_dict()[name].numpy()), name


def test_training_report_scores_every_prior_on_the_patches_the_model_is_scored_on(trained):
    """After a cadence change the validation patches include the resampled record's; the
    report printed the learned prior (2.17 mm) and the history fit (2.39 mm), scored on the
    native-step patches only, beside 2.68 mm for the model on both: a model that IS that
    learned prior (epoch 0 kept) read as worse than it."""
    _, _, model = trained
    meta = model.metadata_
    assert meta["lag_prior"]["kept"] and not meta["prior_filter"]["kept"] and meta["best_epoch"] == 0
    assert meta["val_lag_prior_rmse_mm"] == pytest.approx(meta["val_rmse_mm"], rel=1e-6)
    assert meta["val_lag_prior_rmse_mm"] == pytest.approx(meta["prior_filter"]["val_rmse_prior_mm"], rel=1e-6)
    # The history fit on those patches too: not the learned prior's choice's native-only number.
    assert meta["val_history_fit_rmse_mm"] != pytest.approx(meta["lag_prior"]["val_history_fit_rmse_mm"], rel=1e-3)


def test_intervals_calibrated_at_the_forecast_step_cover_its_samples(trained):
    cube, split, model = trained
    assert model.metadata_["intervals"]["step_days"] == 12.0
    starts = split.test
    assert np.all(np.diff(times_in_days(cube)[split.target_indices("test")], axis=1) == 12.0)
    forecast = model.predict_windows(cube, starts)
    observed = cube["displacement"].values[split.target_indices("test")]
    lower, upper = model.interval_bounds(cube, starts, forecast, 80)
    cover, _ = coverage_and_width(lower, upper, observed)
    assert np.all(np.abs(cover - 80) <= 5.0), cover
    # Calibrated on the 6-day validation samples instead, the later steps' intervals are
    # too narrow for 12-day steps (the error grows with the days ahead).
    model.calibrate_intervals(cube, split.val)
    lower, upper = model.interval_bounds(cube, starts, forecast, 80)
    native, _ = coverage_and_width(lower, upper, observed)
    assert native[-1] < 75.0, native


def test_a_model_at_another_revisit_forecasts_a_finer_cube_at_its_step_and_warns_on_a_coarser(
    trained, tmp_path, capsys
):
    """A model file trained at one revisit, given a cube at another (was: forecast silently).
    Finer (3-day cube, 6-day model: measured 1.1-2.1x the error of a model trained at the
    cube's step when forecast at the cube's step) is forecast at the model's step from the
    cube resampled to it, with a warning (was: refused); coarser (12-day cube) warns,
    naming both. A 6-day model on a 6-day cube, or the model trained across the 6 -> 12-day
    change on its own 12-day end, does neither. ``evaluate`` scores at the cube's own
    epochs, so it still refuses the finer cube."""
    import warnings

    from insar_raster.cli import main
    from insar_raster.gis.write import write_cube

    cube, _, across = trained
    six = cube.isel(time=slice(0, N_SIX))
    six_model = train_model(six, TrainConfig(**CONFIG), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        six_model.forecast(six)
        across.forecast(cube)  # trained on 6-day epochs and at its 12-day forecast step
    twelve = six.isel(time=slice(None, None, 2))
    with pytest.warns(UserWarning, match=r"revisit is 12 days, but this model was trained on 6-day epochs"):
        six_model.forecast(twelve)
    three_days = six["time"].values[0] + np.arange(40) * np.timedelta64(3, "D")
    three = make_cube(six["displacement"].values[:40], three_days, GridSpec.from_cube(six))
    with pytest.warns(UserWarning, match=r"revisit is 3 days, finer than the 6-day epochs.*forecasting 6-day steps"):
        at_three = six_model.forecast(three)
    assert np.all(np.diff(at_three["time"].values, prepend=three_days[-1]) == np.timedelta64(6, "D"))
    # It reads the acquisitions on the 6-day steps back from the last one: the others do not matter.
    off_step = three.copy(deep=True)
    off_step["displacement"][-2::-2] = 1e4  # the last is kept, the one before it not
    with pytest.warns(UserWarning):
        np.testing.assert_allclose(six_model.forecast(off_step)["displacement"], at_three["displacement"], atol=0.01)
    # The CLI: one warning line each, and the output.
    six_model.save(tmp_path / "m.ipt")
    write_cube(three, tmp_path / "three.nc")
    write_cube(twelve, tmp_path / "twelve.nc")
    model = ["--model", str(tmp_path / "m.ipt")]
    out = tmp_path / "f.tif"
    assert main(["forecast", str(tmp_path / "three.nc"), *model, "-o", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "revisit" in line]
    assert len(err) == 1 and err[0].startswith("warning: ") and "forecasting 6-day steps" in err[0] and out.exists()
    out = tmp_path / "f12.tif"
    assert main(["forecast", str(tmp_path / "twelve.nc"), *model, "-o", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "revisit" in line]
    assert len(err) == 1 and err[0].startswith("warning: ") and "trained on 6-day epochs" in err[0] and out.exists()
    # evaluate --model refuses the finer cube (was: scored the model on it silently).
    report = tmp_path / "report"
    args = ["evaluate", str(tmp_path / "three.nc"), *model, "--models", "persistence", "-o", str(report)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "three.nc: the cube's revisit is 3 days" in err and "--resample 6D" in err
    assert not report.exists()


def test_a_record_ending_in_a_finer_revisit_is_forecast_at_the_training_step(tmp_path, capsys):
    """Sentinel-1C restored 6-day revisits in 2025: a record of 12-day epochs ending in
    6-day gaps (was: refused after training, "train a model on this cube"; from the CLI,
    forecast at 6-day steps the model never trained on). Validation and calibration also
    read the record at 12 days, and the forecast steps 12 days from the last date."""
    rng = np.random.default_rng(3)
    twelve = np.datetime64("2020-01-01") + np.arange(100) * np.timedelta64(12, "D")
    times = np.concatenate([twelve, twelve[-1] + np.arange(1, 41) * np.timedelta64(6, "D")])
    days = (times - times[0]).astype("timedelta64[D]").astype(float)
    values = -8.0 * days[:, None, None] / 365.25 + np.cumsum(rng.normal(0, 1.0, (len(times), *SHAPE)), axis=0)
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_000_000.0, SHAPE[1], SHAPE[0])
    cube = make_cube(values.astype(np.float32), times, spec)
    split = _split(cube)
    view = cadence_view(cube, split)
    assert view is not None and (view.step_days, view.native_step_days) == (12.0, 12.0)
    assert np.allclose(np.diff(times_in_days(view.cube)), 12.0) and len(view.split.val)
    model = train_model(cube, TrainConfig(**CONFIG), split=split, progress=False)
    assert model.metadata_["intervals"]["step_days"] == 12.0
    with pytest.warns(UserWarning, match=r"revisit is 6 days, finer than the 12-day epochs"):
        forecast = model.forecast(cube, interval=80)
    expected = times[-1] + np.arange(1, STEPS + 1) * np.timedelta64(12, "D")
    assert np.array_equal(forecast["time"].values.astype("datetime64[D]"), expected)
    assert np.isfinite(forecast["displacement_upper"].values).all()
    # evaluate scores at the cube's epochs: it says that those are not the forecast's steps.
    from insar_raster.cli import main
    from insar_raster.gis.write import write_cube

    write_cube(cube, tmp_path / "s1c.nc")
    args = ["--window", str(WINDOW), "--steps", str(STEPS), "--models", "persistence", "-o", str(tmp_path / "r")]
    assert main(["evaluate", str(tmp_path / "s1c.nc"), *args]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "revisit" in line]
    assert len(err) == 1 and "s1c.nc: its latest revisit is 6 days, finer" in err[0] and "--resample 12D" in err[0]
