"""How the point forecast learns its weights and the scene-wide part of its intervals."""

import numpy as np
import pytest
from scipy.stats import norm

from insar_raster.forecast.points import _learn_weights, _mixture_half_width, _predictive_scale


def test_weights_are_one_set_learned_from_the_pairs_of_every_step():
    """Known weights (0.3 / 0.7 on the members, 0.5 on the carried term) recovered from
    pairs where each step alone holds too few pairs to learn three numbers."""
    rng = np.random.default_rng(0)
    n, steps, n_mp = 2, 6, 10  # 20 pairs per step: fewer than MIN_PAIRS_PER_PARAMETER x 3
    own = rng.normal(0, 3, (n, steps, n_mp))
    joint = own + rng.normal(0, 2, own.shape)
    res = rng.normal(0, 2, own.shape)
    target = 0.3 * own + 0.7 * joint + 0.5 * res + rng.normal(0, 0.2, own.shape)
    members, terms = np.stack([own, joint], -1), res[..., None]
    use = np.ones(n_mp, bool)
    w, a = _learn_weights(members, terms, target, use)
    np.testing.assert_allclose(w, [0.3, 0.7], atol=0.03)
    np.testing.assert_allclose(a, [0.5], atol=0.03)
    # One step alone is too little: the MP's own history fit.
    w1, a1 = _learn_weights(members[:, :1], terms[:, :1], target[:, :1], use)
    np.testing.assert_array_equal(w1, [1.0, 0.0])
    np.testing.assert_array_equal(a1, [0.0])
    # NaN pairs are left out, not propagated.
    target[0, 2, :4] = np.nan
    w2, _ = _learn_weights(members, terms, target, use)
    np.testing.assert_allclose(w2, [0.3, 0.7], atol=0.03)


@pytest.mark.parametrize("n_recent, n_older", [(12, 0), (12, 70)])
def test_scene_wide_part_covers_a_new_date_at_about_its_level(n_recent, n_older):
    """Scene-wide errors (one per date, normal, 3 mm) known from a few dates: the empirical
    quantile of those dates under-covers a new date's error; scaled to the predictive
    spread (Student's t of the dates' effective number) it covers it at about the level."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=4000)  # the MPs' own errors, plentiful
    weight = np.r_[np.full(n_recent, 0.75 / n_recent), np.full(n_older, 0.25 / max(n_older, 1))]
    if not n_older:
        weight = np.full(n_recent, 1.0 / n_recent)
    covered = {True: [], False: []}
    for _ in range(300):
        common = rng.normal(0, 3.0, len(weight))
        for scaled in (True, False):
            factor = _predictive_scale(weight, 80.0) if scaled else 1.0
            half = _mixture_half_width(common * factor, z, np.array([0.5]), 80.0, weight)[0]
            covered[scaled].append(2 * norm.cdf(half / np.hypot(3.0, 0.5)) - 1)  # a new date and MP
    with_scale, without = 100 * np.mean(covered[True]), 100 * np.mean(covered[False])
    assert without < 79.0  # the few dates' empirical quantile is too narrow for a new one
    assert 79.5 <= with_scale <= 83.5
    assert _predictive_scale(np.ones(10000), 80.0) == pytest.approx(1.0, abs=0.002)
