"""The advected recent motion (forecast/advection.py) carries a moving front ahead of itself."""

from __future__ import annotations

import numpy as np

from insar_raster.forecast.advection import advected_change, shift_cells, span_epochs
from insar_raster.synth_processes import Front

SHAPE, RES, STEP = (40, 48), 200.0, 12.0
WINDOW, STEPS = 12, 6


def _front_block(noise_mm=0.0, seed=0):
    """A Knothe trough advancing east at 3.5 km/yr (0.58 cells per epoch) along row 20."""
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    x, y = (cols.ravel() + 0.5) * RES, (rows.ravel() + 0.5) * RES
    front = Front(x0=600.0, y0=4100.0, direction=0.0, speed=3500.0, t_start=0.0, length=20000.0,
                  width=700.0, subsidence=50.0, influence=400.0)  # fmt: skip
    days = np.arange(40) * STEP
    d = front.displacement(x, y, days / 365.25).T.reshape(len(days), *SHAPE)
    d = d + np.random.default_rng(seed).normal(0, noise_mm, d.shape)
    return d, days


def test_front_is_carried_ahead_of_its_face():
    d, days = _front_block()
    last = 27
    block = d[None, last + 1 - WINDOW : last + 1]
    change, velocity = advected_change(
        block, days[None, last + 1 - WINDOW : last + 1], days[None, last + 1 : last + 1 + STEPS], STEP, STEPS, 6
    )
    truth = d[last + 1 : last + 1 + STEPS] - d[last]
    # Cells ahead of the face that have not moved yet (< 2 mm) and will (> 2 mm).
    ahead = (np.abs(d[last]) < 2.0) & (np.abs(truth[-1]) > 2.0)
    assert ahead.sum() > 10
    err = np.sqrt(np.mean((change[0][:, ahead] - truth[:, ahead]) ** 2))
    assert err < 0.5 * np.sqrt(np.mean(truth[:, ahead] ** 2))  # zero change (persistence) is 1.0
    # The face's speed, 0.58 cells per epoch eastwards, within one search step (1/k).
    k = span_epochs(STEPS, WINDOW)
    face = velocity[0][:, 20, 20:30]
    assert np.all(np.abs(face[1] - 0.58) <= 1.0 / k + 1e-6) and np.all(np.abs(face[0]) <= 1.0 / k + 1e-6)


def test_no_shift_where_only_noise_moves():
    rng = np.random.default_rng(3)
    block = rng.normal(0, 1.0, (1, WINDOW, *SHAPE))
    days = np.arange(WINDOW + STEPS) * STEP
    _, velocity = advected_change(block, days[None, :WINDOW], days[None, WINDOW:], STEP, STEPS, 6)
    assert np.mean(np.hypot(velocity[0, 0], velocity[0, 1]) > 0) < 0.1


def test_search_radius_covers_the_fastest_front():
    # 6 km/yr over k = 5 epochs of 12 days at 200 m: 4.9 cells -> 5; capped on fine grids.
    assert shift_cells(200.0, 12.0, STEPS, WINDOW) == 5
    assert shift_cells(20.0, 12.0, STEPS, WINDOW) == 8
    assert shift_cells(200.0, 12.0, STEPS, 3) == 0  # window too short to match two spans
