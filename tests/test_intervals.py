"""Calibrated forecast intervals (split conformal, scaled by each cell's noise)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from insar_raster import TrainConfig, train_model
from insar_raster.errors import InputError
from insar_raster.forecast.intervals import (
    conformal_quantiles,
    coverage_and_width,
    noise_level,
)
from insar_raster.forecast.windows import chronological_split
from insar_raster.synth import make_scene_cube


def test_noise_level_recovers_white_noise_under_a_trend():
    rng = np.random.default_rng(0)
    t = np.arange(80)[:, None, None]
    sigma = np.array([0.5, 2.0, 4.0])[None, None, :]
    series = 3.0 * t + rng.normal(0, 1, (80, 200, 3)) * sigma
    est = noise_level(series)
    assert np.allclose(est.mean(axis=0), sigma[0, 0], rtol=0.1)


def test_conformal_quantile_is_the_finite_sample_order_statistic():
    scores = np.arange(1, 10, dtype=float)[:, None]  # n = 9
    q = conformal_quantiles(scores, levels=(80, 90))
    assert q == [[8.0], [9.0]]  # ceil(10 * 0.8) = 8th, ceil(10 * 0.9) = 9th


@pytest.fixture(scope="module")
def noisy_model():
    # Known noise: white, 2 mm, no atmosphere.
    cube, _truth = make_scene_cube((24, 24), 90, scene="bowl", seed=7, atmosphere_mm=0.0, white_noise_mm=2.0)
    split = chronological_split(90, 12, 4, 0.25, 0.25)
    model = train_model(
        cube,
        TrainConfig(
            window=12,
            steps=4,
            epochs=1,
            samples_per_epoch=16,
            val_patches=8,
            val_fraction=0.25,
            test_fraction=0.25,
            device="cpu",
            seed=0,
        ),
        split=split,
        progress=False,
    )
    return cube, split, model


@pytest.mark.parametrize("level", [60, 80, 95])
def test_interval_coverage_on_held_out_epochs_matches_the_level(noisy_model, level):
    cube, split, model = noisy_model
    assert model.has_intervals
    starts = split.test
    forecast = model.predict_windows(cube, starts)
    lower, upper = model.interval_bounds(cube, starts, forecast, level)
    observed = cube["displacement"].values[split.target_indices("test")]
    cover, width = coverage_and_width(lower, upper, observed)
    assert np.all(np.abs(cover - level) <= 5.0), cover
    assert np.all(width > 0)
    # A wrong scale breaks it: half-width intervals cover far less.
    mid = (lower + upper) / 2
    narrow, _ = coverage_and_width(mid - (upper - lower) / 4, mid + (upper - lower) / 4, observed)
    assert np.all(narrow < level - 10)


def test_forecast_writes_bounds_and_refuses_bad_levels(noisy_model):
    cube, _, model = noisy_model
    out = model.forecast(cube, interval=80)
    d, lo, hi = (out[v].values for v in ("displacement", "displacement_lower", "displacement_upper"))
    ok = np.isfinite(d)
    assert ok.any() and np.all(lo[ok] < d[ok]) and np.all(d[ok] < hi[ok])
    assert np.array_equal(np.isfinite(lo), ok)
    with pytest.raises(InputError, match="between 50 and 99"):
        model.forecast(cube, interval=99.5)


def test_calibration_in_chunks_equals_one_batch(noisy_model, monkeypatch):
    # Chunks bound the memory of a large tile; they must not drop or repeat a sample.
    import insar_raster.forecast.intervals as intervals

    cube, split, model = noisy_model
    monkeypatch.setattr(intervals, "CALIBRATION_CHUNK", 1000)
    whole = model.calibrate_intervals(cube, split.val)
    monkeypatch.setattr(intervals, "CALIBRATION_CHUNK", 2)
    chunked = model.calibrate_intervals(cube, split.val)
    assert len(whole["calibration_samples"]) == min(intervals.CALIBRATION_SAMPLES, len(split.val)) > 2  # 24 x 24 cells
    assert chunked["scores_per_step"] == whole["scores_per_step"]
    np.testing.assert_allclose(chunked["quantiles"], whole["quantiles"])


def test_calibration_survives_an_empty_epoch_in_every_validation_target(noisy_model):
    # A stack from another tool can have empty epochs (or a mask that changes by date):
    # every validation sample's targets then hold a NaN somewhere. Each step is still
    # calibrated from the samples observed at it, instead of every bound turning NaN.
    cube, split, model = noisy_model
    holed = cube.copy(deep=True)
    targets = split.target_indices("val")
    empty = np.arange(targets.min() + 1, targets.max() + 1, split.steps)
    assert all(np.isin(row, empty).any() for row in targets)
    holed["displacement"].values[empty] = np.nan
    trained = model.metadata_["intervals"]
    try:
        whole = model.calibrate_intervals(cube, split.val)
        calibration = model.calibrate_intervals(holed, split.val)
        q = np.asarray(calibration["quantiles"])
        assert np.isfinite(q).all() and calibration["scores_per_step"] > 0
        np.testing.assert_allclose(q, whole["quantiles"], rtol=0.3)
        out = model.forecast(holed, interval=80)
        ok = np.isfinite(out["displacement"].values)
        assert ok.any() and np.array_equal(np.isfinite(out["displacement_lower"].values), ok)
    finally:
        model.metadata_["intervals"] = trained  # the fixture is shared


def test_calibration_samples_fewer_on_a_larger_grid():
    from insar_raster.forecast.intervals import calibration_sample_count

    assert calibration_sample_count(27, 64 * 80) == 24  # an L2b burst: many dates
    assert calibration_sample_count(17, 128 * 128) == 17  # all there are
    assert calibration_sample_count(40, 1000 * 700) == 6  # an L3 tile: many patches per date
    assert calibration_sample_count(3, 1000 * 700) == 3
    assert 6 < calibration_sample_count(40, 200 * 200) < 24


def _scene_with_calm_stretch(calm: slice, scene_wide_mm: float, seed: int = 0, stretch_mm: float = 0.2):
    """(t, cells) mm: per-cell trends, 2 mm white noise per cell and date, and a
    scene-wide error per date (one draw for all cells) of ``scene_wide_mm``, except over
    the dates ``calm`` (``stretch_mm``): a calm validation stretch, or a loud one."""
    rng = np.random.default_rng(seed)
    n_times, n_cells = 150, 3000
    days = np.arange(n_times) * 12.0
    common = rng.normal(0, scene_wide_mm, n_times)
    common[calm] = rng.normal(0, stretch_mm, len(range(*calm.indices(n_times))))
    rates = rng.uniform(-20, 5, n_cells)  # mm/yr
    values = rates[None] * days[:, None] / 365.25 + common[:, None] + rng.normal(0, 2.0, (n_times, n_cells))
    return values.astype(np.float32), days


def _prior_errors(values, days, starts):
    """Errors (n, 3 steps, cells) mm of a 72-epoch history fit at the samples ``starts``
    (window 12), written out here to stay apart from the code under test."""
    from insar_raster.forecast.data import history_eval, history_fit

    out = []
    for s in starts:
        last = s + 11
        coef = history_fit(values[last - 71 : last + 1, :, None], days[last - 71 : last + 1], days[last], 0.0)
        out.append(history_eval(coef, days[last + 1 : last + 4], days[last])[:, :, 0] - values[last + 1 : last + 4])
    return np.stack(out)


def _prior_coverage(values, days, cal, test, widening=None, level=80):
    """Coverage (%) per step on ``test`` of the history prior's conformal intervals
    calibrated on ``cal`` (one noise level for all cells), optionally widened."""
    scores = np.abs(_prior_errors(values, days, cal)).transpose(0, 2, 1).reshape(-1, 3)
    q = np.asarray(conformal_quantiles(scores, levels=(level,)))[0]
    if widening is not None:
        q = q * widening
    return 100 * (np.abs(_prior_errors(values, days, test)) <= q[None, :, None]).mean(axis=(0, 2))


def test_scene_wide_widening_restores_coverage_after_a_calm_validation_stretch():
    """Scene-wide errors (a date's atmosphere, a dry year) that the calibration samples
    did not show, but the years before them did, widen the intervals; without the
    widening, the next stretch of dates is covered far less often than stated."""
    from insar_raster.forecast.intervals import scene_wide_widening

    values, days = _scene_with_calm_stretch(slice(110, 128), scene_wide_mm=1.8)
    cal, test = np.arange(98, 113), np.arange(118, 135)
    mse = np.mean(_prior_errors(values, days, cal) ** 2, axis=(0, 2))
    widening = scene_wide_widening(values, days, cal, 12, 3, 72, 0.0, mse)
    assert np.all(widening > 1.05), widening
    plain = _prior_coverage(values, days, cal, test)
    widened = _prior_coverage(values, days, cal, test, widening)
    assert np.all(plain < 75), plain
    assert np.all(np.abs(widened - 80) <= 5), widened


def test_scene_wide_widening_leaves_a_steady_scene_alone():
    from insar_raster.forecast.intervals import scene_wide_widening

    values, days = _scene_with_calm_stretch(slice(0, 0), scene_wide_mm=1.0, seed=1)
    widening = scene_wide_widening(values, days, np.arange(98, 113), 12, 3, 72, 0.0, np.full(3, 5.0))
    assert np.all(widening < 1.04), widening
    # Without the model's own scene-wide error it never narrows: a calibration stretch
    # noisier than the years before keeps its quantiles.
    noisy, days = _scene_with_calm_stretch(slice(0, 100), scene_wide_mm=2.0, seed=2)
    assert np.all(scene_wide_widening(noisy, days, np.arange(98, 113), 12, 3, 72, 0.0, np.full(3, 5.0)) == 1.0)


def test_scene_wide_widening_narrows_after_a_loud_validation_stretch():
    """A calibration stretch with more scene-wide error than the years before it (issue
    12's ``realistic`` seed 1, AR(1) atmosphere) made the intervals cover the calmer test
    dates far more often than stated: the quantiles shrink by the model's scene-wide part
    in the ratio of the prior's, and by nothing where the model's errors held none."""
    from insar_raster.forecast.intervals import scene_wide_widening

    values, days = _scene_with_calm_stretch(slice(110, 128), scene_wide_mm=0.5, stretch_mm=2.0)
    cal, test = np.arange(98, 113), np.arange(118, 135)
    errors = _prior_errors(values, days, cal)
    mse = np.mean(errors**2, axis=(0, 2))
    scene_mse = np.mean(np.median(errors, axis=2) ** 2, axis=0)  # the "model" is the prior here
    factor = scene_wide_widening(values, days, cal, 12, 3, 72, 0.0, mse, calibration_scene_mse=scene_mse)
    assert np.all(factor < 0.9), factor
    plain = _prior_coverage(values, days, cal, test)
    narrowed = _prior_coverage(values, days, cal, test, factor)
    assert np.all(plain > 85), plain
    assert np.all(np.abs(narrowed - 80) <= 5), narrowed
    # A model whose errors held no scene-wide part keeps its quantiles.
    kept = scene_wide_widening(values, days, cal, 12, 3, 72, 0.0, mse, calibration_scene_mse=np.zeros(3))
    assert np.all(kept == 1.0), kept


def _tif_set(folder):
    """Bytes of every file in ``folder`` (hidden temporaries included)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_cli_interval_geotiffs_are_written_as_one_set(noisy_model, tmp_path, monkeypatch, capsys):
    """`forecast --interval 80 -o f.tif` writes f.tif, f_lower.tif, f_upper.tif (and their
    styles) as one set (io.atomic.output_group): a failure while writing the third, or while
    renaming it into place, leaves the previous set as it was and no temporary behind (was:
    f.tif and f_lower.tif replaced, f_upper.tif old)."""
    import insar_raster.gis.raster as raster
    import insar_raster.io.atomic as atomic
    from insar_raster.cli import main
    from insar_raster.gis.write import write_cube

    cube, _, model = noisy_model
    write_cube(cube, tmp_path / "c.nc")
    model.save(tmp_path / "m.ipt")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "f.tif"
    cmd = ["forecast", str(tmp_path / "c.nc"), "--model", str(tmp_path / "m.ipt"), "-o", str(out), "-q"]
    assert main([*cmd, "--interval", "80"]) == 0
    names = {f"f{s}.{e}" for s in ("", "_lower", "_upper") for e in ("tif", "qml")}
    assert set(_tif_set(out_dir)) == names
    before = _tif_set(out_dir)

    write = raster.write_geotiff

    def fails_on_upper(data, path, *args, **kwargs):
        if "_upper" in str(path):
            raise OSError(28, "No space left on device")
        return write(data, path, *args, **kwargs)

    # 90 %: other bounds, so a bound replaced by the failed run would differ.
    monkeypatch.setattr(raster, "write_geotiff", fails_on_upper)
    assert main([*cmd, "--interval", "90", "--overwrite"]) != 0
    assert "No space left" in capsys.readouterr().err
    assert _tif_set(out_dir) == before
    monkeypatch.setattr(raster, "write_geotiff", write)

    replace = os.replace

    def rename_fails_on_upper(src, dst):  # the new file's rename (putting the old one back works)
        if Path(dst).name == "f_upper.tif" and ".part" in Path(src).name:
            raise OSError(5, "Input/output error")
        return replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", rename_fails_on_upper)
    assert main([*cmd, "--interval", "90", "--overwrite"]) != 0
    capsys.readouterr()
    assert _tif_set(out_dir) == before
    monkeypatch.setattr(atomic.os, "replace", replace)
    assert main([*cmd, "--interval", "90", "--overwrite"]) == 0
    after = _tif_set(out_dir)
    assert set(after) == names and after["f_lower.tif"] != before["f_lower.tif"]


def test_cli_interval_geotiff_set_is_checked_whole_before_any_work(noisy_model, tmp_path, monkeypatch, capsys):
    """An existing bound, or a user's style beside one, is refused before the forecast is
    computed (the style was checked only when that bound was written, after the others)."""
    import insar_raster.forecast.forecaster as forecaster_module
    from insar_raster.cli import main
    from insar_raster.gis.write import write_cube

    cube, _, model = noisy_model
    write_cube(cube, tmp_path / "c.nc")
    model.save(tmp_path / "m.ipt")
    out = tmp_path / "f.tif"
    cmd = ["forecast", str(tmp_path / "c.nc"), "--model", str(tmp_path / "m.ipt"), "-o", str(out), "--interval", "80"]
    monkeypatch.setattr(forecaster_module.Forecaster, "forecast", lambda *a, **k: pytest.fail("forecast computed"))
    (tmp_path / "f_upper.qml").write_text("<qgis>a user's own style</qgis>")
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "f_upper.qml" in err and "Traceback" not in err
    (tmp_path / "f_upper.qml").unlink()
    (tmp_path / "f_lower.tif").write_bytes(b"previous")
    assert main(cmd) == 2
    assert "f_lower.tif" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.nc", "f_lower.tif", "m.ipt"]
