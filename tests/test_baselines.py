"""Baselines: exact recovery of the signals they model, the LASSO persistence finding,
masks, and the fit/predict contract on ChronoSplit samples."""

import numpy as np
import pytest

from insar_raster.evaluate.baselines import (
    Persistence,
    PixelLasso,
    PixelLightGBM,
    PixelTrend,
    cube_values,
    make_baseline,
)
from insar_raster.evaluate.metrics import rmse
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube

SPEC = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_400_000.0, 6, 5)


def _cube(values, days):
    times = np.datetime64("2020-01-01") + np.asarray(days).astype("timedelta64[D]")
    return make_cube(np.asarray(values, np.float32), times, SPEC)


def _field(seed, low, high):
    return np.random.default_rng(seed).uniform(low, high, (5, 6))


def test_persistence_repeats_last_input_epoch():
    values = np.random.default_rng(0).normal(size=(30, 5, 6)).astype(np.float32)
    cube = _cube(values, np.arange(30) * 12)
    split = chronological_split(30, 5, 3)
    pred = Persistence(5, 3).fit(cube, split).predict_windows(cube, split.test)
    assert pred.shape == (len(split.test), 3, 5, 6)
    for i, s in enumerate(split.test):
        for k in range(3):
            np.testing.assert_array_equal(pred[i, k], values[s + 4])


def test_trend_is_exact_on_linear_motion_with_irregular_dates_and_a_gap():
    days = np.cumsum(np.r_[0, np.where(np.arange(39) % 3 == 0, 6, 12)])  # 6/12-day mix
    velocity = _field(1, -30, 10)  # mm/yr
    values = velocity[None] * (days / 365.25)[:, None, None] + 2.0
    values[17, 2, 3] = np.nan  # one missing acquisition at one pixel
    cube = _cube(values, days)
    split = chronological_split(40, 8, 4)
    pred = PixelTrend(8, 4).fit(cube, split).predict_windows(cube, split.test)
    expected = values[split.target_indices("test")]
    np.testing.assert_allclose(pred, expected, atol=1e-3)
    # the gap pixel is still forecast where its window contains the gap
    starts = np.array([12])
    got = PixelTrend(8, 4).predict_windows(cube, starts)
    np.testing.assert_allclose(got[0, :, 2, 3], values[20:24, 2, 3], atol=1e-3)


def test_trend_seasonal_is_exact_on_trend_plus_annual_cycle():
    days = np.arange(80) * 12.0
    t = days / 365.25
    velocity, amplitude = _field(2, -20, 5), _field(3, 2, 8)
    values = velocity[None] * t[:, None, None] + amplitude[None] * np.sin(2 * np.pi * t + 0.7)[:, None, None]
    cube = _cube(values, days)
    split = chronological_split(80, 30, 3)
    model = PixelTrend(30, 3, seasonal=True, seasonal_ridge=0.0).fit(cube, split)
    pred = model.predict_windows(cube, split.test)
    np.testing.assert_allclose(pred, values[split.target_indices("test")], atol=1e-2)
    # the plain trend cannot follow the cycle
    plain = PixelTrend(30, 3).predict_windows(cube, split.test)
    assert rmse(plain, values[split.target_indices("test")]) > 0.5


def test_trend_without_enough_valid_epochs_is_nan():
    values = np.random.default_rng(4).normal(size=(20, 5, 6))
    values[:, 0, 0] = np.nan  # water
    values[:9, 1, 1] = np.nan  # only one valid epoch in the first windows
    cube = _cube(values, np.arange(20) * 12)
    pred = PixelTrend(10, 2).predict_windows(cube, np.array([0]))
    assert np.isnan(pred[0, :, 0, 0]).all()
    assert np.isnan(pred[0, :, 1, 1]).all()
    assert np.isfinite(pred[0, :, 2, 2]).all()


def test_lasso_on_a_random_walk_leans_on_the_most_recent_epoch():
    # Random walk: the best forecast is persistence, which LASSO should find (the paper's finding).
    rng = np.random.default_rng(5)
    values = np.cumsum(rng.normal(0, 2.0, (90, 5, 6)), axis=0)
    cube = _cube(values, np.arange(90) * 12)
    split = chronological_split(90, 6, 2)
    model = PixelLasso(6, 2, max_rows=2000, seed=0).fit(cube, split)
    importance = model.lag_importance()
    assert importance.shape == (2, 6)
    assert np.all(np.argmax(importance, axis=1) == 5)
    assert model.models_[0].coef_[-1] == pytest.approx(1.0, abs=0.1)
    assert model.n_train_rows_ <= 2000


def test_lightgbm_learns_velocities_better_than_persistence():
    days = np.arange(70) * 12.0
    velocity = _field(6, -40, 0)
    rng = np.random.default_rng(7)
    values = velocity[None] * (days / 365.25)[:, None, None] + rng.normal(0, 0.3, (70, 5, 6))
    cube = _cube(values, days)
    split = chronological_split(70, 8, 3)
    observed = values[split.target_indices("test")]
    model = PixelLightGBM(8, 3, max_rows=3000, seed=0, n_estimators=100).fit(cube, split)
    pred = model.predict_windows(cube, split.test)
    persistence = Persistence(8, 3).predict_windows(cube, split.test)
    assert rmse(pred, observed) < 0.7 * rmse(persistence, observed)
    gain = model.lag_importance()
    assert gain.shape == (3, 8) and np.all(gain >= 0) and gain.sum() > 0


def test_regressors_leave_masked_pixels_nan_and_refuse_misuse():
    values = np.random.default_rng(8).normal(size=(40, 5, 6))
    values[:, 4, :] = np.nan
    cube = _cube(values, np.arange(40) * 12)
    split = chronological_split(40, 5, 2)
    lasso = PixelLasso(5, 2, max_rows=500)
    with pytest.raises(RuntimeError, match="not fitted"):
        lasso.predict_windows(cube, split.test)
    pred = lasso.fit(cube, split).predict_windows(cube, split.test)
    assert np.isnan(pred[:, :, 4]).all() and np.isfinite(pred[:, :, :4]).all()
    with pytest.raises(ValueError, match="window"):
        PixelLasso(6, 2).fit(cube, split)
    with pytest.raises(ValueError, match="window starts"):
        Persistence(5, 2).predict_windows(cube, np.array([36]))
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("arima", 5, 2)


def test_cube_values_is_float32_time_y_x():
    cube = _cube(np.zeros((3, 5, 6)), [0, 12, 24])
    assert cube_values(cube).shape == (3, 5, 6) and cube_values(cube).dtype == np.float32


def test_history_fit_is_exact_on_accelerating_seasonal_motion():
    days = np.arange(90) * 12.0
    t = days / 365.25
    velocity, amplitude = _field(9, -20, 5), _field(10, 2, 8)
    values = (
        velocity[None] * t[:, None, None]
        - 3.0 * t[:, None, None] ** 2
        + amplitude[None] * np.sin(2 * np.pi * t + 1.1)[:, None, None]
    )
    cube = _cube(values, days)
    split = chronological_split(90, 6, 3)
    model = make_baseline("history_fit", 6, 3, history_epochs=150)
    model.acceleration_ridge = 0.0  # exact model: no penalty needed
    pred = model.fit(cube, split).predict_windows(cube, split.test)
    # The prior's small fixed ridge (HISTORY_RIDGE, for short histories) biases the exact
    # fit by a few hundredths of a mm on motions of tens of mm.
    np.testing.assert_allclose(pred, values[split.target_indices("test")], atol=0.1)
    assert model.name == "history_fit" and model.history_epochs == 150


@pytest.mark.parametrize("name", ["persistence", "trend", "trend_seasonal", "history_fit", "lasso", "lightgbm"])
def test_no_baseline_reads_epochs_after_the_last_input(name):
    rng = np.random.default_rng(11)
    values = np.cumsum(rng.normal(0, 1.0, (50, 5, 6)), axis=0)
    cube = _cube(values, np.arange(50) * 12)
    split = chronological_split(50, 6, 2)
    model = make_baseline(name, 6, 2, max_rows=1000).fit(cube, split)
    start = int(split.test[0])
    before = model.predict_windows(cube, [start])
    corrupted = values.copy()
    corrupted[start + 6 :] += 1000.0  # the targets and everything after them
    after = model.predict_windows(_cube(corrupted, np.arange(50) * 12), [start])
    np.testing.assert_array_equal(before, after)


def test_dlinear_and_tcn_are_causal_fitted_and_beat_persistence_on_a_trend():
    """Both read only the past (a change after the last input epoch changes nothing) and
    extrapolate a noisy linear trend better than persistence."""
    import numpy as np

    from insar_raster.evaluate.sequence_baselines import CausalTCN, DLinear
    from insar_raster.forecast.windows import chronological_split
    from insar_raster.grid.spec import GridSpec
    from insar_raster.io.cube import make_cube

    rng = np.random.default_rng(0)
    n, shape = 70, (10, 12)
    v = rng.uniform(-3, 3, shape)  # mm per epoch
    values = v[None] * np.arange(n)[:, None, None] + rng.normal(0, 0.5, (n, *shape))
    times = np.datetime64("2020-01-01") + np.arange(n) * np.timedelta64(12, "D")
    cube = make_cube(values.astype(np.float32), times, GridSpec("EPSG:3035", 100.0, 0.0, 0.0, shape[1], shape[0]))
    split = chronological_split(n, 8, 3)
    truth = (v[None] * np.arange(n)[:, None, None])[split.target_indices("test")]
    persistence = np.repeat(values[split.test + 7][:, None], 3, axis=1)
    for model in (DLinear(8, 3, history=40), CausalTCN(8, 3, history=24, iterations=80, batch_size=128, lr=5e-3)):
        assert model.fit(cube, split) is model and model.lookback_ >= 8
        pred = model.predict_windows(cube, split.test)
        assert np.sqrt(np.mean((pred - truth) ** 2)) < 0.6 * np.sqrt(np.mean((persistence - truth) ** 2))
        later = cube.copy(deep=True)
        later["displacement"].values[split.test[0] + 8 :] += 100.0
        assert np.allclose(model.predict_windows(later, split.test[:1]), pred[:1], atol=1e-4)
        assert model.details()["parameters"] > 0
