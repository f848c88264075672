"""The ``ensemble`` forecaster: convlstm + cnn averaged with a weight chosen on validation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.special import ndtr

from insar_raster import TrainConfig
from insar_raster.evaluate import evaluate_cube
from insar_raster.forecast.ensemble import choose_weight, combine_members, weight_errors
from insar_raster.forecast.forecaster import Forecaster, fit_ensemble_members, load_model
from insar_raster.forecast.modelfile import read_header
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube
from insar_raster.models.ensemble import WeightedEnsemble

SHAPE, EPOCHS = (24, 24), 70
CONFIG = dict(
    window=6,
    steps=2,
    epochs=3,
    samples_per_epoch=32,
    batch_size=8,
    patch_size=24,
    val_patches=8,
    patience=2,
    device="cpu",
    seed=0,
    hidden=4,
    features=4,
    history_epochs=40,
)
FRACTIONS = dict(val_fraction=0.2, test_fraction=0.1)


def _fronts_cube():
    """Troughs sweeping west -> east at 1 cell per epoch (the networks are kept here)."""
    rng = np.random.default_rng(0)
    col = np.arange(SHAPE[1])[None, None, :]
    t = np.arange(EPOCHS)[:, None, None]
    d = np.zeros((EPOCHS, 1, SHAPE[1]))
    for start in range(-30, EPOCHS, 30):
        d -= 10.0 * ndtr((t - start - col) / 2.0)
    d = np.broadcast_to(d, (EPOCHS, *SHAPE)) + rng.normal(0, 0.3, (EPOCHS, *SHAPE))
    times = np.datetime64("2020-01-01") + np.arange(EPOCHS) * np.timedelta64(12, "D")
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_000_000.0, SHAPE[1], SHAPE[0])
    return make_cube((d - d[:1]).astype(np.float32), times, spec)


def _split():
    return chronological_split(EPOCHS, CONFIG["window"], CONFIG["steps"], **FRACTIONS)


@pytest.fixture(scope="module")
def trained():
    """The cube and both members, trained as ``train --arch ensemble`` trains them."""
    cube = _fronts_cube()
    members = fit_ensemble_members(cube, TrainConfig(arch="ensemble", **CONFIG, **FRACTIONS), _split(), progress=False)
    assert all(m.metadata_["best_epoch"] >= 1 for m in members.values())  # both networks kept
    return cube, members


def _noisy(member, seed=1):
    """A copy of ``member`` whose network outputs large pure noise (random output layer)."""
    noisy = copy.deepcopy(member)
    torch.manual_seed(seed)
    torch.nn.init.normal_(noisy.model_.out.weight, std=3.0)
    return noisy


def test_the_weight_minimises_the_validation_error_and_drops_a_noise_member():
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 5, (20, 3, 16, 16))
    observed = truth + rng.normal(0, 1, truth.shape)
    good_a = truth + rng.normal(0, 1, truth.shape)
    good_b = truth + rng.normal(0, 1, truth.shape)  # as good, independent errors
    noise = rng.normal(0, 5, truth.shape)
    assert choose_weight(weight_errors(good_a, noise, observed))[0] == 1.0
    assert choose_weight(weight_errors(noise, good_a, observed))[0] == 0.0
    # Two equally good members with independent errors: their average beats either alone.
    w, mse = choose_weight(weight_errors(good_a, good_b, observed))
    assert 0.35 <= w <= 0.65
    assert mse.min() < 0.85 * min(mse[0], mse[-1])
    # The sums give the exact MSE of every weight (NaN cells left out).
    observed[0, 0, 0, 0] = np.nan
    _, mse = choose_weight(weight_errors(good_a, good_b, observed), grid=(0.3,))
    ok = np.isfinite(observed)
    assert mse[0] == pytest.approx(np.mean((0.3 * good_a + 0.7 * good_b - observed)[ok] ** 2))


def test_a_member_whose_network_outputs_noise_is_dropped_on_validation(trained):
    cube, members = trained
    split = _split()
    normal = combine_members(members, cube, split)[4]["weights"]
    assert 0.0 <= normal[0] <= 1.0
    bad_cnn = combine_members({"convlstm": members["convlstm"], "cnn": _noisy(members["cnn"])}, cube, split)
    assert bad_cnn[4]["weights"] == [1.0, 0.0]
    bad_lstm = combine_members({"convlstm": _noisy(members["convlstm"]), "cnn": members["cnn"]}, cube, split)
    assert bad_lstm[4]["weights"] == [0.0, 1.0]
    assert bad_lstm[6]["ensemble"]["weights"] == {"convlstm": 0.0, "cnn": 1.0}


def test_the_weight_never_reads_the_test_epochs(trained):
    cube, members = trained
    split = _split()
    spoiled = cube.copy(deep=True)
    spoiled["displacement"][split.val_end :] = 1000.0  # test epochs only
    a = combine_members(members, cube, split)[6]["ensemble"]
    b = combine_members(members, spoiled, split)[6]["ensemble"]
    assert a["val_rmse_mm_by_weight"] == b["val_rmse_mm_by_weight"] and a["weights"] == b["weights"]
    assert max(a["samples"]) + CONFIG["window"] + CONFIG["steps"] <= split.val_end


def test_without_a_kept_network_the_ensemble_is_the_prior(trained):
    cube, members = trained
    dropped = {arch: copy.deepcopy(m) for arch, m in members.items()}
    for m in dropped.values():
        m.metadata_["best_epoch"] = 0
    parts = combine_members(dropped, cube, _split())
    assert parts[4]["weights"] == [1.0, 0.0]
    assert "neither network" in parts[6]["ensemble"]["chosen_by"]


def test_model_file_round_trip(trained, tmp_path):
    cube, members = trained
    ens = Forecaster.from_fitted(*combine_members(members, cube, _split()))
    ens.calibrate_intervals(cube, _split().val)
    path = ens.save(tmp_path / "ens.ipt")
    header = read_header(path)
    assert header["arch"] == "ensemble" and header["hparams"]["weights"] == ens.hparams_["weights"]
    assert [m["arch"] for m in header["hparams"]["members"]] == ["convlstm", "cnn"]
    from insar_raster.info import describe

    assert describe(path)["ensemble_weights"] == {
        "convlstm": ens.hparams_["weights"][0],
        "cnn": ens.hparams_["weights"][1],
    }
    loaded = load_model(path)
    assert isinstance(loaded.model_, WeightedEnsemble) and loaded.model_.weights == ens.hparams_["weights"]
    a, b = ens.forecast(cube, interval=80), loaded.forecast(cube, interval=80)
    for var in ("displacement", "displacement_lower", "displacement_upper"):
        np.testing.assert_array_equal(a[var].values, b[var].values)
    # The forecast is the weighted sum of the members' forecasts.
    w = ens.hparams_["weights"]
    parts = [m.forecast(cube)["displacement"].values for m in members.values()]
    np.testing.assert_allclose(a["displacement"].values, w[0] * parts[0] + w[1] * parts[1], atol=1e-3)


def test_evaluate_reuses_the_trained_members(trained, monkeypatch):
    cube, members = trained

    def no_training(*args, **kwargs):
        raise AssertionError("the ensemble trained its members again")

    monkeypatch.setattr("insar_raster.forecast.forecaster.fit_ensemble_members", no_training)
    res = evaluate_cube(
        cube,
        ["cnn", "convlstm", "ensemble"],
        window=CONFIG["window"],
        steps=CONFIG["steps"],
        seed=0,
        permutation_repeats=0,
        train_options={k: v for k, v in CONFIG.items() if k not in ("window", "steps", "seed", "device")},
        **FRACTIONS,
    )
    arrays = res["_arrays"]["predictions"]
    details = res["models"]["ensemble"]["details"]["ensemble"]
    w = details["weights"]
    # The same members as trained alone (same settings and split): the same weights.
    assert [w["convlstm"], w["cnn"]] == combine_members(members, cube, _split())[4]["weights"]
    np.testing.assert_allclose(
        arrays["ensemble"], w["convlstm"] * arrays["convlstm"] + w["cnn"] * arrays["cnn"], atol=1e-3
    )


def test_fit_trains_the_members_and_equals_the_combination_of_them(trained):
    cube, members = trained
    ens = Forecaster(TrainConfig(arch="ensemble", **CONFIG, **FRACTIONS)).fit(cube)
    reused = Forecaster(TrainConfig(arch="ensemble", **CONFIG, **FRACTIONS)).fit_from_members(cube, _split(), members)
    assert ens.config_.arch == "ensemble" and ens.hparams_["weights"] == reused.hparams_["weights"]
    assert ens.has_intervals  # calibrated on the weighted average
    starts = _split().test
    np.testing.assert_array_equal(ens.predict_windows(cube, starts), reused.predict_windows(cube, starts))
