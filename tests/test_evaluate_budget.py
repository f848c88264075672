"""The training budget ``evaluate`` gives the ``paper`` model: a cap on its epochs that
bounds its time whatever validation does (issue 12: the whole evaluation of a 128 x 128 x
150 cube in under 10 minutes on 2 cores)."""

from __future__ import annotations

import dataclasses

import numpy as np

from insar_raster.evaluate import EvaluateConfig, make_model
from insar_raster.evaluate.registry import EVALUATE_BUDGET, MODELS
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube


def test_paper_budget_caps_epochs_and_is_overridable():
    cap = EVALUATE_BUDGET["paper"]["epochs"]
    assert cap < TrainConfig.epochs  # a cap, not the default
    assert make_model("paper", EvaluateConfig()).config.epochs == cap
    assert make_model("paper", EvaluateConfig(), {"epochs": 9}).config.epochs == 9  # train options win
    assert make_model("paper", EvaluateConfig(epochs=7)).config.epochs == 7  # and evaluate's epochs
    # Only the paper model is capped: the others keep their default budget.
    assert make_model("convlstm", EvaluateConfig()).config.epochs == TrainConfig.epochs
    assert f"at most {cap} epochs" in MODELS["paper"].description  # the report says so
    help_text = {f.name: f.metadata["help"] for f in dataclasses.fields(EvaluateConfig) if "help" in f.metadata}
    assert f"the paper model at most {cap})" in help_text["epochs"]  # and evaluate --help


def test_paper_trains_at_most_the_capped_epochs_whatever_validation_does():
    rng = np.random.default_rng(5)
    n, days = 60, np.arange(60) * 12.0
    values = np.cumsum(rng.normal(0, 1.0, (n, 16, 16)), axis=0) + (days / 365.25 * 20)[:, None, None]
    times = np.datetime64("2020-01-01") + days.astype("timedelta64[D]")
    cube = make_cube(values.astype(np.float32), times, GridSpec("EPSG:3035", 100.0, 3e6, 3.4e6, 16, 16))
    split = chronological_split(n, 6, 2)
    # No early stopping at all (patience beyond any epoch count): only the cap ends training
    # (fewer samples per epoch than in evaluate, to keep the test short; the cap stays).
    options = {"patience": 99, "samples_per_epoch": 16, "val_patches": 4}
    model = make_model("paper", EvaluateConfig(window=6, steps=2, device="cpu"), options)
    model.fit(cube, split)
    assert model.details()["epochs_trained"] == EVALUATE_BUDGET["paper"]["epochs"]
