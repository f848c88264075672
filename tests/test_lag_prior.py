"""The learned linear prior: a map from each pixel's past to its next changes, learned
from every pixel, replaces the history fit where a curve per pixel is not quadratic +
annual (consolidation), and is refused where the history fit is exact (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from insar_raster import TrainConfig, train_model
from insar_raster.forecast.data import (
    LinearPrior,
    Normalisation,
    history_eval,
    history_fit,
    lag_features,
    prepare_batch,
)
from insar_raster.forecast.forecaster import load_model
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.spec import GridSpec
from insar_raster.info import describe, format_description
from insar_raster.io.cube import make_cube

SHAPE, EPOCHS, STEP_DAYS = (24, 24), 110, 12
CONFIG = dict(
    window=8,
    steps=3,
    epochs=1,
    samples_per_epoch=16,
    batch_size=8,
    patch_size=24,
    val_patches=24,
    device="cpu",
    seed=0,
    hidden=8,
    features=8,
    val_fraction=0.2,
    test_fraction=0.15,
)
YEARS = np.arange(EPOCHS) * STEP_DAYS / 365.25


def _cube(values):
    times = np.datetime64("2020-01-01") + np.arange(EPOCHS) * np.timedelta64(STEP_DAYS, "D")
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_000_000.0, SHAPE[1], SHAPE[0])
    return make_cube(values.astype(np.float32), times, spec)


def _consolidation():
    """New fills settling, ``S (1 - exp(-(t - t0) / tau))``, one starting in each pixel at
    its own time during the record: a rate that decays, which a quadratic extrapolates
    wrongly and every pixel continues the same way. Returns (observed, truth)."""
    rng = np.random.default_rng(4)
    t0 = rng.uniform(-0.5, YEARS[-1], (1, *SHAPE))
    size = rng.uniform(20.0, 60.0, (1, *SHAPE))
    tau = rng.uniform(0.2, 0.6, (1, *SHAPE))
    t = YEARS[:, None, None] - t0
    truth = -size * np.where(t > 0, 1.0 - np.exp(-np.clip(t, 0, None) / tau), 0.0)
    return truth + rng.normal(0, 1.0, truth.shape), truth


def _exact():
    """Trend + annual cycle per pixel, white noise: the history fit's own form."""
    rng = np.random.default_rng(1)
    v = rng.uniform(-20, 5, (1, *SHAPE))
    d = v * YEARS[:, None, None] + 3.0 * np.sin(2 * np.pi * YEARS)[:, None, None]
    return d + rng.normal(0, 1.0, d.shape)


def _test_rmse(model, cube, truth) -> float:
    split = chronological_split(EPOCHS, CONFIG["window"], CONFIG["steps"], CONFIG["val_fraction"], 0.15)
    pred = model.predict_windows(cube, split.test)
    return float(np.sqrt(np.nanmean((pred - truth[split.target_indices("test")]) ** 2)))


def test_learned_prior_replaces_the_history_fit_on_consolidation(tmp_path):
    observed, truth = _consolidation()
    cube = _cube(observed)
    auto = train_model(cube, TrainConfig(**CONFIG), progress=False)
    lag = auto.metadata["lag_prior"]
    assert lag["kept"] and lag["val_rmse_mm"] < 0.9 * lag["val_history_fit_rmse_mm"]
    assert np.asarray(auto.config_.lag_prior).shape == (CONFIG["steps"], lag["lags"])
    assert np.asarray(auto.config_.lag_prior_fit).shape == (CONFIG["steps"], CONFIG["steps"])
    # Held out by time, against the noise-free truth: better than the history fit alone.
    harmonic = train_model(cube, TrainConfig(**CONFIG, prior="harmonic"), progress=False)
    assert harmonic.metadata["lag_prior"] is None and harmonic.config_.lag_prior is None
    assert _test_rmse(auto, cube, truth) < 0.9 * _test_rmse(harmonic, cube, truth)
    # The weights travel in the model file: the loaded model forecasts the same.
    path = auto.save(tmp_path / "model.ipt")
    loaded = load_model(path)
    assert loaded.config_.lag_prior == auto.config_.lag_prior
    assert loaded.config_.lag_prior_fit == auto.config_.lag_prior_fit
    assert loaded.config_.lag_prior_centred == auto.config_.lag_prior_centred
    info = describe(path)
    assert info["lag_prior"]["kept"] and info["lag_prior"]["lags"] == lag["lags"]
    assert info["lag_prior"]["form"] == lag["form"] and lag["form"].startswith("residual")
    assert "lag_prior:" in format_description(info)
    split = chronological_split(EPOCHS, CONFIG["window"], CONFIG["steps"], CONFIG["val_fraction"], 0.15)
    np.testing.assert_allclose(loaded.predict_windows(cube, split.test), auto.predict_windows(cube, split.test))


def test_learned_prior_is_refused_where_the_history_fit_is_exact():
    model = train_model(_cube(_exact()), TrainConfig(**CONFIG), progress=False)
    lag = model.metadata["lag_prior"]
    assert lag is not None and not lag["kept"] and model.config_.lag_prior is None


def test_lag_features_interpolate_in_time_and_refuse_what_is_not_observed():
    days = np.array([0.0, 12.0, 24.0, 48.0, 60.0])  # one acquisition missing (36)
    history = np.array([1.0, 2.0, 3.0, 5.0, 6.0])[:, None, None] * np.ones((1, 2, 2))
    history[1, 0, 0] = np.nan
    lags = lag_features(history, days, 5, 12.0)
    # j = 1 (48), 2 (36: between 24 and 48), 3 (24), 4 (12), 5 (0 before the start? at day 0: observed)
    np.testing.assert_allclose(lags[:, 1, 1], [-1.0, -2.0, -3.0, -4.0, -5.0])
    assert np.isnan(lags[3, 0, 0]) and np.isfinite(lags[2, 0, 0])  # only the lag that needs day 12
    assert np.isnan(lag_features(history, days, 6, 12.0)[5]).all()  # day -12: before the history


def test_irregular_leads_keep_the_history_fit():
    """After a cadence change the targets are not the learned 1..steps steps ahead: the
    prior stays the history fit's there, and is the learned one on a regular sample."""
    rng = np.random.default_rng(0)
    days = np.arange(40) * 12.0
    hist = np.cumsum(rng.normal(0, 1, (40, 3, 3)), axis=0)
    norm = Normalisation(scale_mm=1.0, step_days=12.0)
    weights = np.ones((2, 10))
    regular = days[-1] + np.array([[12.0, 24.0]])
    irregular = days[-1] + np.array([[24.0, 48.0]])

    def prior(target_days, lag_prior):
        return prepare_batch([hist], [days], 6, target_days, norm, True, 0.0, lag_prior)[2][0]

    expected = np.einsum("kj,jhw->khw", weights, lag_features(hist, days, 10, 12.0))
    for form in (LinearPrior(weights), LinearPrior(weights, np.zeros((2, 2)))):
        np.testing.assert_array_equal(prior(irregular, form), prior(irregular, None))
    np.testing.assert_allclose(prior(regular, LinearPrior(weights)), expected, rtol=1e-5, atol=1e-5)


def test_residual_form_adds_its_maps_to_the_history_fit():
    """The residual form is the history fit's change plus a map of the lags and of that
    change: zero weights give the history fit exactly (what the ridge shrinks toward),
    and each map adds its own term."""
    rng = np.random.default_rng(3)
    days = np.arange(40) * 12.0
    hist = np.cumsum(rng.normal(0, 1, (40, 3, 3)), axis=0) + 0.01 * days[:, None, None] ** 1.3
    norm = Normalisation(scale_mm=1.0, step_days=12.0)
    targets = days[-1] + np.array([[12.0, 24.0]])

    def prior(lag_prior):
        return prepare_batch([hist], [days], 6, targets, norm, True, 0.0, lag_prior)[2][0]

    coef = history_fit(hist, days, days[-1], 0.0)
    fit_change = history_eval(coef, targets[0], days[-1]) - hist[-1][None]
    np.testing.assert_allclose(prior(LinearPrior(np.zeros((2, 10)), np.zeros((2, 2)))), fit_change, atol=1e-5)
    np.testing.assert_allclose(prior(LinearPrior(np.zeros((2, 10)), np.zeros((2, 2)))), prior(None), atol=1e-6)
    lags, fit = rng.normal(0, 0.1, (2, 10)), np.array([[0.5, 0.0], [0.2, -0.3]])
    expected = (
        fit_change
        + np.einsum("kj,jhw->khw", lags, lag_features(hist, days, 10, 12.0))
        + np.einsum("kj,jhw->khw", fit, fit_change)
    )
    np.testing.assert_allclose(prior(LinearPrior(lags, fit)), expected, rtol=1e-4, atol=1e-4)
    # Lags-only weights (model files written before the residual form) ignore the fit.
    np.testing.assert_allclose(
        prior(LinearPrior(lags)), np.einsum("kj,jhw->khw", lags, lag_features(hist, days, 10, 12.0)), atol=1e-4
    )


def test_scene_wide_errors_follow_the_learned_prior():
    """Interval widening reads the scene-wide errors of the prior the model uses: with
    zero weights the learned prior is persistence, and so are its errors."""
    from insar_raster.forecast.intervals import scene_wide_errors

    rng = np.random.default_rng(2)
    values = np.cumsum(rng.normal(0, 1, (60, 50)), axis=0) + 0.2 * np.arange(60)[:, None] ** 1.5
    days = np.arange(60) * 12.0
    starts = np.arange(30, 40)
    targets = values[starts[:, None] + 6 + np.arange(3)]
    persistence = np.median(values[starts + 5][:, None, :] - targets, axis=2)
    learned = scene_wide_errors(values, days, starts, 6, 3, 40, 0.0, LinearPrior(np.zeros((3, 20))), 12.0)
    np.testing.assert_allclose(learned, persistence, atol=1e-4)
    harmonic = scene_wide_errors(values, days, starts, 6, 3, 40, 0.0)
    assert np.abs(harmonic - persistence).max() > 0.1
    # The residual form with zero weights is the history fit, and so are its errors.
    residual = LinearPrior(np.zeros((3, 20)), np.zeros((3, 3)))
    np.testing.assert_allclose(
        scene_wide_errors(values, days, starts, 6, 3, 40, 0.0, residual, 12.0), harmonic, atol=1e-4
    )


def test_learned_prior_rows_draw_every_cell_alike():
    """The map's rows are drawn uniformly over the cells: 16-cell patches drawn inside a
    40 x 40 grid cover a central cell 16 times more often than one in the middle of an
    edge (256 times more than a corner), and the map weighed the centre's motion (urban
    seed 3, prior alone: 1.58 against 1.49 mm on the test epochs). Each cell moves at
    its own rate here, so a row's first lag names its cell."""
    from types import SimpleNamespace

    from insar_raster.forecast.data import CubeReader
    from insar_raster.forecast.train import _lag_prior_rows

    shape, n_epochs, window, steps, lookback = (40, 40), 40, 8, 3, 12
    rate = 1.0 + 1e-3 * np.arange(shape[0] * shape[1]).reshape(shape)  # mm per epoch, one per cell
    times = np.datetime64("2020-01-01") + np.arange(n_epochs) * np.timedelta64(STEP_DAYS, "D")
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_000_000.0, shape[1], shape[0])
    cube = make_cube((np.arange(n_epochs)[:, None, None] * rate[None]).astype(np.float32), times, spec)
    sampler = SimpleNamespace(
        window=window,
        steps=steps,
        patch=(16, 16),
        norm=SimpleNamespace(step_days=float(STEP_DAYS)),
        reader=CubeReader(cube),
    )
    starts = np.arange(lookback - window + 1, n_epochs - window - steps + 1)
    features, fit_change, targets, whole = _lag_prior_rows(sampler, np.random.default_rng(0), starts, lookback, 24, 0.0)
    assert features.shape[1] == lookback and targets.shape[1] == steps and len(features) > 50_000
    np.testing.assert_allclose(targets, -features[:, :1] * np.arange(1, steps + 1), rtol=1e-4)
    # A straight line per cell: the history fit's change is the observed one.
    np.testing.assert_allclose(fit_change, targets, rtol=1e-3, atol=1e-3)
    assert 0.2 < whole.mean() < 0.9  # samples ending before epoch 24 had a shorter fit
    cell = np.rint((-features[:, 0] - 1.0) / 1e-3).astype(int)
    counts = np.bincount(cell, minlength=rate.size).reshape(shape).astype(float)
    ring = np.ones(shape, bool)
    ring[4:-4, 4:-4] = False
    corner_share = counts[:4, :4].mean() / counts.mean()
    assert counts.min() > 0
    assert 0.85 < counts[ring].mean() / counts[~ring].mean() < 1.15
    assert 0.7 < corner_share < 1.3


def test_residual_form_learns_only_where_the_fit_reads_what_forecasts_read():
    """The residual form learns from samples whose history fit read all its epochs, as a
    forecast's does; a fit longer than the training years leaves the lags-only form."""
    from types import SimpleNamespace

    from insar_raster.forecast.data import CubeReader
    from insar_raster.forecast.train import _fit_lag_prior, _lag_prior_rows

    rng = np.random.default_rng(5)
    shape, n_epochs, window, steps, lookback = (30, 30), 60, 8, 3, 12
    values = np.cumsum(rng.normal(0, 1, (n_epochs, *shape)), axis=0) + 0.3 * np.arange(n_epochs)[:, None, None]
    times = np.datetime64("2020-01-01") + np.arange(n_epochs) * np.timedelta64(STEP_DAYS, "D")
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_000_000.0, shape[1], shape[0])
    sampler = SimpleNamespace(
        window=window,
        steps=steps,
        patch=(16, 16),
        norm=SimpleNamespace(step_days=float(STEP_DAYS)),
        reader=CubeReader(make_cube(values.astype(np.float32), times, spec)),
    )
    starts = np.arange(lookback - window + 1, n_epochs - window - steps + 1)
    residual = _fit_lag_prior(*_lag_prior_rows(sampler, np.random.default_rng(0), starts, lookback, 24, 0.0))
    assert residual and all(fit is not None and fit.shape == (steps, steps) for _, fit in residual)
    lags_only = _fit_lag_prior(*_lag_prior_rows(sampler, np.random.default_rng(0), starts, lookback, 150, 0.0))
    assert lags_only and all(fit is None and lags.shape == (steps, lookback) for lags, fit in lags_only)


def _seasonal_swing():
    """Consolidation in each pixel (:func:`_consolidation`) plus a seasonal swing every
    pixel shares whose amplitude changes from year to year (dry and wet years): a
    scene-wide error of the history fit that no pixel's own lags predict."""
    observed, truth = _consolidation()
    amplitude = np.random.default_rng(7).uniform(0.0, 8.0, 10)[YEARS.astype(int)]
    swing = (amplitude * np.sin(2 * np.pi * YEARS))[:, None, None]
    return observed + swing, truth + swing


def test_centred_form_is_kept_where_the_scene_shares_an_error_no_pixel_predicts(tmp_path):
    """Fitted to each pixel's departure from the scene, the map learns the pixels'
    consolidation without also fitting the shared swing; validation keeps that form
    here, and it forecasts better than the history fit against the truth."""
    observed, truth = _seasonal_swing()
    cube = _cube(observed)
    auto = train_model(cube, TrainConfig(**CONFIG), progress=False)
    assert auto.metadata["lag_prior"]["form"] == "residual, centred" and auto.config_.lag_prior_centred
    harmonic = train_model(cube, TrainConfig(**CONFIG, prior="harmonic"), progress=False)
    assert _test_rmse(auto, cube, truth) < 0.9 * _test_rmse(harmonic, cube, truth)
    path = auto.save(tmp_path / "model.ipt")
    loaded = load_model(path)
    assert loaded.config_.linear_prior.centred and describe(path)["lag_prior"]["form"] == "residual, centred"
    split = chronological_split(EPOCHS, CONFIG["window"], CONFIG["steps"], CONFIG["val_fraction"], 0.15)
    np.testing.assert_allclose(loaded.predict_windows(cube, split.test), auto.predict_windows(cube, split.test))


def test_centred_form_leaves_the_scene_mean_to_the_history_fit():
    """The centred map's correction to the history fit has zero grid mean at every
    forecast (it moves cells against each other, never the scene), and a patch given
    the grid's means gets the same prior as the whole grid (what tiles and training
    patches rely on)."""
    from insar_raster.forecast.data import FeatureMeans

    rng = np.random.default_rng(5)
    values = (
        np.cumsum(rng.normal(0, 1, (60, 6, 6)), axis=0) + rng.uniform(-1, 1, (1, 6, 6)) * np.arange(60)[:, None, None]
    )
    values[:, 0, 0] = np.nan  # never observed
    days = np.arange(60) * 12.0
    norm = Normalisation(scale_mm=1.0, step_days=12.0)
    targets = days[-1] + np.array([[12.0, 24.0]])
    lags, fit = rng.normal(0, 0.2, (2, 10)), np.array([[0.5, 0.1], [0.2, -0.3]])
    means = FeatureMeans(values.reshape(60, -1), days, 10, 60, 60, 0.0, 12.0)
    mean = means.at(59, targets[0])

    def prior(lag_prior, block=values, feature_mean=mean):
        return prepare_batch([block], [days], 6, targets, norm, True, 0.0, lag_prior, None, [feature_mean])[2][0]

    fit_only = prior(None)
    centred = prior(LinearPrior(lags, fit, centred=True))
    plain = prior(LinearPrior(lags, fit))
    known = np.isfinite(values).all(axis=0)
    np.testing.assert_allclose((centred - fit_only)[:, known].mean(axis=1), 0.0, atol=1e-4)
    assert np.abs((plain - fit_only)[:, known].mean(axis=1)).max() > 0.05
    shift = (np.hstack([lags, fit]) @ mean)[:, None]
    np.testing.assert_allclose(centred[:, known], plain[:, known] - shift, atol=1e-4)
    patch = prior(LinearPrior(lags, fit, centred=True), values[:, 2:5, 1:4])
    np.testing.assert_allclose(patch, centred[:, 2:5, 1:4], atol=1e-5)
    with pytest.raises(ValueError, match="grid mean"):
        prior(LinearPrior(lags, fit, centred=True), feature_mean=None)
