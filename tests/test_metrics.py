"""Scores against values computed by hand on tiny arrays."""

import math

import numpy as np
import pytest

from insar_raster.evaluate.metrics import add_skill, mae, r2, rmse, score, score_by_step, skill


def test_scores_by_hand_ignore_nan_cells():
    predicted = np.array([1.0, 2.0, 3.0, np.nan])
    observed = np.array([1.0, 3.0, 5.0, 7.0])
    # valid cells: errors 0, -1, -2
    assert rmse(predicted, observed) == pytest.approx(math.sqrt(5 / 3))
    assert mae(predicted, observed) == pytest.approx(1.0)
    # observed mean 3 -> SS_tot = 4 + 0 + 4 = 8, SS_res = 5
    assert r2(predicted, observed) == pytest.approx(1 - 5 / 8)


def test_explicit_valid_mask_and_nan_observations():
    predicted = np.array([[0.0, 10.0], [2.0, 2.0]])
    observed = np.array([[1.0, np.nan], [2.0, 0.0]])
    valid = np.array([[True, True], [True, False]])
    # cells used: (0,0) err -1 and (1,0) err 0; (0,1) has NaN obs, (1,1) masked out
    assert rmse(predicted, observed, valid) == pytest.approx(math.sqrt(0.5))
    assert mae(predicted, observed, valid) == pytest.approx(0.5)
    assert score(predicted, observed, valid)["n_cells"] == 2


def test_no_valid_cell_gives_nan_not_error():
    assert math.isnan(rmse([np.nan], [1.0]))
    assert math.isnan(r2([1.0, 1.0], [2.0, 2.0]))  # SS_tot = 0


def test_skill_score():
    assert skill(1.0, 2.0) == pytest.approx(0.5)
    assert skill(3.0, 2.0) == pytest.approx(-0.5)
    assert math.isnan(skill(1.0, 0.0))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        rmse(np.zeros(3), np.zeros(4))


def test_score_by_step_and_skill_per_step():
    # (n_samples=2, steps=2, cells=2)
    observed = np.zeros((2, 2, 2))
    predicted = np.zeros((2, 2, 2))
    predicted[:, 0] = 1.0  # step 1 error 1 everywhere
    predicted[:, 1] = [[3.0, -3.0], [3.0, -3.0]]  # step 2 error 3
    out = score_by_step(predicted, observed)
    assert out["per_step"][0]["rmse"] == pytest.approx(1.0)
    assert out["per_step"][1]["rmse"] == pytest.approx(3.0)
    assert out["per_step"][1]["mae"] == pytest.approx(3.0)
    assert out["overall"]["rmse"] == pytest.approx(math.sqrt((1 + 9) / 2))
    reference = score_by_step(np.full_like(observed, 2.0), observed)
    add_skill(out, reference)
    assert out["per_step"][0]["skill"] == pytest.approx(0.5)
    assert out["per_step"][1]["skill"] == pytest.approx(-0.5)
    assert out["overall"]["skill"] == pytest.approx(1 - math.sqrt(5) / 2)


def test_r2_of_change_is_zero_or_less_for_persistence():
    reference = np.array([[1.0, 2.0, 3.0]])
    observed = np.array([[2.0, 2.5, 5.0]])
    # persistence predicts the reference: its change is 0
    s = score(reference, observed, reference=reference)
    change = observed - reference  # 1, 0.5, 2 -> mean 7/6
    ss_tot = np.sum((change - change.mean()) ** 2)
    assert s["r2_change"] == pytest.approx(1 - np.sum(change**2) / ss_tot)
    assert s["r2_change"] <= 0
