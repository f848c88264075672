"""Confidence intervals of scores over test dates: paired block bootstrap."""

import numpy as np

from insar_raster.evaluate.metrics import rmse
from insar_raster.evaluate.uncertainty import block_bootstrap, per_date_errors


def _experiment(seed, sigma_a, sigma_b, n_samples=30, steps=3, shape=(10, 12)):
    rng = np.random.default_rng(seed)
    observed = rng.normal(0, 10, (n_samples, steps, *shape))
    # Errors share a per-date component (one atmosphere per acquisition), as real ones do.
    date_noise = rng.normal(0, 1, (n_samples + steps,))
    date_index = np.arange(n_samples)[:, None] + np.arange(steps)[None, :]
    shared = date_noise[date_index][:, :, None, None]
    a = observed + sigma_a * (shared + rng.normal(0, 1, observed.shape))
    b = observed + sigma_b * (shared + rng.normal(0, 1, observed.shape))
    valid = np.ones(observed.shape, bool)
    valid[..., 0, 0] = False
    return observed, {"a": a, "b": b}, valid, date_index, n_samples + steps


def test_per_date_sums_give_the_overall_rmse():
    observed, preds, valid, date_index, n_dates = _experiment(0, 1.0, 2.0)
    sse, count = per_date_errors(preds["a"], observed, valid, date_index, n_dates)
    assert count.sum() == valid.sum()
    np.testing.assert_allclose(np.sqrt(sse.sum() / count.sum()), rmse(preds["a"], observed, valid), rtol=1e-12)


def test_a_clearly_better_model_is_best_with_intervals_that_hold():
    observed, preds, valid, date_index, n_dates = _experiment(1, 1.0, 3.0)
    sse = {}
    for name, p in preds.items():
        sse[name], count = per_date_errors(p, observed, valid, date_index, n_dates)
    out = block_bootstrap(sse, count, resamples=500)
    assert out["best"] == "a" and out["best_holds"] and out["tied_with_best"] == []
    for name in ("a", "b"):
        lo, hi = out["rmse_ci"][name]
        assert lo < out["rmse"][name] < hi
    lo, hi = out["difference_to_best"]["b"]["ci"]
    assert 0 < lo < out["difference_to_best"]["b"]["difference"] < hi


def test_equally_good_models_are_reported_tied():
    observed, preds, valid, date_index, n_dates = _experiment(2, 2.0, 2.0)
    sse = {}
    for name, p in preds.items():
        sse[name], count = per_date_errors(p, observed, valid, date_index, n_dates)
    out = block_bootstrap(sse, count, resamples=500)
    assert not out["best_holds"]
    other = "b" if out["best"] == "a" else "a"
    assert out["tied_with_best"] == [other]
    lo, hi = out["difference_to_best"][other]["ci"]
    assert lo <= 0 <= hi


def test_interval_covers_the_true_rmse_about_as_often_as_claimed():
    # The RMSE of the same forecaster over many independent test periods: a 90 % interval
    # from one period should contain the long-run RMSE in roughly 90 % of periods.
    truth_sigma = np.sqrt(2.0)  # shared date component + cell noise, both unit variance
    hits = 0
    trials = 60
    for seed in range(trials):
        observed, preds, valid, date_index, n_dates = _experiment(
            100 + seed, 1.0, 1.0, n_samples=40, steps=1, shape=(4, 4)
        )
        sse, count = per_date_errors(preds["a"], observed, valid, date_index, n_dates)
        out = block_bootstrap({"a": sse, "b": sse * 1.5}, count, resamples=300, level=0.9, seed=seed)
        lo, hi = out["rmse_ci"]["a"]
        hits += lo <= truth_sigma <= hi
    assert 0.75 <= hits / trials <= 0.99


def test_too_few_dates_claims_nothing():
    out = block_bootstrap({"a": np.array([1.0, 2.0]), "b": np.array([4.0, 5.0])}, np.array([10, 10]))
    assert out["rmse_ci"] is None and not out["best_holds"] and out["best"] == "a"
