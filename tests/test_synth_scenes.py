"""The synthetic scenes with motion no per-pixel curve extrapolates (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from insar_raster.synth import SCENES, build_scene, make_scene_cube
from insar_raster.synth_processes import Collapse, Consolidation, Front, PumpingBowl


@pytest.mark.parametrize("scene", SCENES)
def test_every_scene_starts_at_zero_and_is_finite_on_land(scene):
    observed, truth = make_scene_cube((24, 24), 30, scene=scene, seed=1)
    t = truth["displacement"].values
    land = np.isfinite(t[0])
    assert land.any()
    assert np.allclose(t[0][land], 0.0, atol=1e-4)
    assert np.isfinite(t[:, land]).all() and np.isfinite(observed["displacement"].values[:, land]).all()


def test_front_trough_reaches_cells_that_had_not_moved():
    """A front advancing at 3 km/yr: a cell 1.5 km ahead is still within noise when the face
    is 1.5 km away, then sinks (monotonically) to the full subsidence after it passes."""
    f = Front(
        x0=0.0,
        y0=0.0,
        direction=0.0,
        speed=3000.0,
        t_start=0.0,
        length=6000.0,
        width=600.0,
        subsidence=50.0,
        influence=300.0,
    )
    t = np.linspace(0, 2, 201)
    d = f.displacement(np.array([1500.0, 3000.0]), np.array([0.0, 0.0]), t)
    assert abs(d[1, t <= 0.5]).max() < 0.1  # face 1.5 km away: nothing yet
    arrive = np.argmax(np.abs(d[1]) >= 2.0)
    assert 0.75 < t[arrive] < 1.0  # the trough edge leads the face (t = 1 yr) by about r
    assert np.all(np.diff(d[1]) <= 1e-9) and d[1, -1] < -0.9 * 50 * 0.68  # sinks, monotonic
    assert t[np.argmax(np.abs(d[0]) >= 2.0)] < t[arrive]  # the nearer cell first


def test_fronts_scene_marks_the_cells_a_front_reaches():
    sc = build_scene((48, 48), 100, scene="fronts", seed=0)
    reach = sc.front_reach_days()
    fronts = [p for p in sc.processes if isinstance(p, Front)]
    assert fronts and all(2000 <= p.speed <= 5000 for p in fronts)
    late = np.isfinite(reach) & (reach > 365)
    assert late.any()  # cells reached after the first year...
    truth = sc.truth_grid()
    days = (sc.times - sc.times[0]) / np.timedelta64(1, "D")
    rows, cols = np.nonzero(late)
    front = sc.process_truth(rows, cols, Front)
    before = days[None, :] < reach[late][:, None]
    assert np.abs(front[before]).max() < 2.0  # ...had not moved by 2 mm before
    assert np.all(np.abs(front[:, -1]) >= 2.0)
    assert truth.shape == (len(sc.times), 48, 48)


def test_pumping_rate_changes_at_change_points():
    b = PumpingBowl(0.0, 0.0, 500.0, change_times=(1.0, 2.0), rates=(-30.0, 5.0, -10.0))
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    d = b.displacement(np.array([0.0]), np.array([0.0]), t)[0]
    assert np.allclose(d, [0, -15, -30, -27.5, -25, -35])
    sc = build_scene((32, 32), 100, scene="switching", seed=2)
    bowls = [p for p in sc.processes if isinstance(p, PumpingBowl)]
    duration = sc.years[-1]
    assert bowls and all(max(p.change_times) >= 0.6 * duration for p in bowls)


def test_consolidation_and_collapse_shapes():
    c = Consolidation(0.0, 0.0, 100.0, t0=1.0, tau=0.5, settlement=40.0)
    d = c.displacement(np.array([0.0]), np.array([0.0]), np.array([0.5, 1.0, 1.5, 10.0]))[0]
    assert np.allclose(d, [0, 0, -40 * (1 - np.exp(-1)), -40], atol=1e-6)
    s = Collapse(0.0, 0.0, 50.0, t0=1.0, depth=20.0)
    d = s.displacement(np.array([0.0, 1000.0]), np.array([0.0, 0.0]), np.array([0.99, 1.0]))
    assert np.allclose(d[0], [0, -20]) and np.allclose(d[1], 0, atol=1e-6)


def _lag1_correlation(scene):
    observed, truth = make_scene_cube((32, 32), 80, scene=scene, seed=4, white_noise_mm=0.0)
    noise = observed["displacement"].values[1:] - truth["displacement"].values[1:]
    land = np.isfinite(noise[0])
    a = noise[:, land]
    a = a - a.mean(axis=0)
    return float((a[1:] * a[:-1]).sum() / (a * a).sum())


def test_realistic_atmosphere_is_ar1_and_the_old_scenes_stay_white():
    assert _lag1_correlation("realistic") > 0.4
    assert abs(_lag1_correlation("mixed")) < 0.15


def test_urban_seasonal_amplitude_changes_from_year_to_year():
    sc = build_scene((16, 16), 200, scene="urban", seed=1)
    _mids, factors = sc.seasonal_years
    assert factors.min() >= 0.5 and factors.max() <= 1.6 and factors.std() > 0.1
