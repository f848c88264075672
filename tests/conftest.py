"""Shared fixtures: small synthetic scenes (seeded, fast)."""

import matplotlib

matplotlib.use("Agg")

import pytest


@pytest.fixture(scope="session")
def small_scene():
    """(points, truth_cube): 3000 MPs x 40 epochs on a 48x48 scene at 100 m."""
    from insar_raster.synth import make_scene

    return make_scene(n_points=3000, shape=(48, 48), n_epochs=40, seed=3)


@pytest.fixture(scope="session")
def small_cube():
    """(observed, truth) cubes, 32x32 cells x 60 epochs."""
    from insar_raster.synth import make_scene_cube

    return make_scene_cube(shape=(32, 32), n_epochs=60, seed=5)
