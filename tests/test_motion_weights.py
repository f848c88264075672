"""Training patches are drawn where the recent motion changes (forecast.train._MotionWeights)."""

from __future__ import annotations

import numpy as np

from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import CubeReader, Normalisation
from insar_raster.forecast.train import _MotionWeights, _PatchSampler
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube

SHAPE, EPOCHS, PATCH = (48, 64), 60, (16, 16)


def _cube():
    """Quiet noise everywhere; a trough sweeping east along rows 36-44 at a cell per epoch."""
    rng = np.random.default_rng(0)
    t = np.arange(EPOCHS)[:, None]
    cols = np.arange(SHAPE[1])[None, :]
    sweep = -20.0 / (1 + np.exp(-(t - 8 - cols) / 1.0)) * (cols >= 24)  # face at column t - 8
    d = rng.normal(0, 0.3, (EPOCHS, *SHAPE))
    d[:, 36:45, :] += sweep[:, None, :]
    times = np.datetime64("2020-01-01") + np.arange(EPOCHS) * np.timedelta64(12, "D")
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_000_000.0, SHAPE[1], SHAPE[0])
    return make_cube((d - d[:1]).astype(np.float32), times, spec)


def _sampler(cube, config):
    return _PatchSampler(CubeReader(cube), Normalisation(1.0, 12.0), config, PATCH)


def _covers_front(rows, cols):
    return (rows + PATCH[0] > 36) & (rows < 45)


def test_weighted_draws_favour_the_moving_front():
    cube = _cube()
    config = TrainConfig(window=8, steps=3)
    sampler = _sampler(cube, config)
    starts = np.arange(30, 46)
    weights = _MotionWeights(sampler.reader, starts, 8, 3, PATCH, share=1.0)
    _, rows, cols, _ = sampler.draw_indices(np.random.default_rng(1), starts, 400, True, weights)
    _, urows, ucols, _ = sampler.draw_indices(np.random.default_rng(1), starts, 400, True)
    weighted, uniform = _covers_front(rows, cols).mean(), _covers_front(urows, ucols).mean()
    assert uniform < 0.45 and weighted > 0.8
    assert rows.max() <= SHAPE[0] - PATCH[0] and cols.max() <= SHAPE[1] - PATCH[1]


def test_no_weights_means_the_uniform_draw():
    sampler = _sampler(_cube(), TrainConfig(window=8, steps=3))
    starts = np.arange(30, 46)
    weights = _MotionWeights(sampler.reader, starts, 8, 3, PATCH, share=0.0)
    a = sampler.draw_indices(np.random.default_rng(5), starts, 50, False)
    b = sampler.draw_indices(np.random.default_rng(5), starts, 50, False, weights)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)


def test_patches_are_drawn_where_there_is_data():
    """A grid mostly masked (an EGMS tile is ~19 % valid, in clusters): every drawn patch
    holds valid cells; a fully valid grid keeps the plain uniform draw."""
    cube = _cube()
    valid = np.zeros(SHAPE, dtype=bool)
    valid[2:8, 40:50] = True  # one small cluster
    reader = CubeReader(cube)
    sampler = _PatchSampler(reader, Normalisation(1.0, 12.0), TrainConfig(window=8, steps=3), PATCH, valid=valid)
    _, rows, cols, _ = sampler.draw_indices(np.random.default_rng(0), np.arange(30, 46), 200, False)
    counts = [valid[r : r + PATCH[0], c : c + PATCH[1]].sum() for r, c in zip(rows, cols)]
    assert min(counts) >= 0.1 * PATCH[0] * PATCH[1]
    full = _PatchSampler(reader, Normalisation(1.0, 12.0), TrainConfig(window=8, steps=3), PATCH, valid=~valid | valid)
    assert full.origins is None


def test_focus_weights_the_cells_ahead_of_an_advancing_face():
    """``TrainConfig.focus``: the loss weights, read from the input window alone, are high
    on and just ahead of the sweeping face (rows 36-44) and ~1 on the quiet rows."""
    import torch

    from insar_raster.forecast.train import FOCUS_CAP, _focus_weights

    cube = _cube()
    sampler = _sampler(cube, TrainConfig(window=8, steps=3))
    batch = sampler.batch(np.array([30]), np.array([28]), np.array([20]))  # rows 28-43, columns 20-35
    w = _focus_weights(torch.from_numpy(batch.x), 3, focus=1.0)[0, 0].numpy()
    assert w.shape == PATCH
    ahead = w[8:16, 9:13]  # rows 36-43, the face (column 29 at the last input epoch) and 3 cells ahead
    quiet = w[:4, :]  # rows 28-31: noise only, more than 3 cells from the face's rows
    assert ahead.min() > 2.0 * quiet.mean()
    assert quiet.max() < 1.5 and w.max() <= 1.0 + FOCUS_CAP + 1e-6
    assert _focus_weights(torch.from_numpy(batch.x), 3, focus=0.0).eq(1.0).all()
