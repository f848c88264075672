"""The network stage is kept where only space predicts the future, dropped where the
per-pixel history fit is already exact (issue 12)."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from insar_raster import TrainConfig, train_model
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube

SHAPE, EPOCHS = (32, 32), 90
CONFIG = dict(
    window=8,
    steps=3,
    epochs=6,
    samples_per_epoch=64,
    batch_size=16,
    patch_size=32,
    val_patches=24,
    patience=3,
    device="cpu",
    seed=0,
    hidden=8,
    features=8,
    val_fraction=0.2,
    test_fraction=0.1,
)


def _cube(values):
    times = np.datetime64("2020-01-01") + np.arange(EPOCHS) * np.timedelta64(12, "D")
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_000_000.0, SHAPE[1], SHAPE[0])
    return make_cube(values.astype(np.float32), times, spec)


def _fronts():
    """Troughs sweeping west -> east at 1 cell per epoch, each row its own at random times
    (20-60 epochs apart): before a trough arrives, neither a cell's own past nor the
    scene's mean says when it will (a periodic train of fronts, one for the whole grid,
    let the learned linear prior's centred form time the next from the last and the
    scene's progress); its western neighbours' past does."""
    rng = np.random.default_rng(0)
    col = np.arange(SHAPE[1])[None, :]
    t = np.arange(EPOCHS)[:, None]
    d = np.zeros((EPOCHS, *SHAPE))
    for row in range(SHAPE[0]):
        start = -int(rng.integers(0, 60))
        while start < EPOCHS:
            d[:, row] -= 10.0 * ndtr(t - start - col)  # face at column t - start, about 2 cells wide
            start += int(rng.integers(20, 61))
    d += rng.normal(0, 0.3, d.shape)
    return d - d[:1]


def _exact():
    """Trend + annual cycle per pixel, white noise: the history fit's own form."""
    rng = np.random.default_rng(1)
    years = np.arange(EPOCHS)[:, None, None] * 12 / 365.25
    v = rng.uniform(-20, 5, (1, *SHAPE))
    d = v * years + 3.0 * np.sin(2 * np.pi * years) + rng.normal(0, 1.0, (EPOCHS, *SHAPE))
    return d - d[:1]


def test_network_is_kept_where_only_space_predicts_a_front():
    model = train_model(_cube(_fronts()), TrainConfig(arch="convlstm", **CONFIG), progress=False)
    assert model.metadata["best_epoch"] >= 1
    assert model.metadata["val_rmse_mm"] < 0.8 * model.metadata["val_history_fit_rmse_mm"]


def test_network_is_dropped_where_the_history_fit_is_exact():
    model = train_model(_cube(_exact()), TrainConfig(arch="convlstm", **CONFIG), progress=False)
    assert model.metadata["best_epoch"] == 0
