"""How the point forecast learns its weights and the scene-wide part of its intervals."""

import numpy as np

from insar_raster.forecast.points import _learn_weights


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
