"""One estimator protocol for every model, and one home for every default.

Each model ``evaluate`` knows is built from the registry and checked the way verde
checks its gridders: ``__init__`` stores its parameters and nothing else, ``fit``
returns the estimator itself and adds only attributes ending in ``_``, and the result
satisfies :class:`~insar_raster.forecast.estimator.WindowForecaster`. The command line's
defaults are the config dataclasses' defaults.
"""

import ast
import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest

from insar_raster.cli import build_parser
from insar_raster.cli.options import config_from_args, training_config
from insar_raster.evaluate import ALL_MODELS, DEEP_MODELS, EvaluateConfig, make_model
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.estimator import WindowForecaster
from insar_raster.forecast.forecaster import Forecaster
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube

PACKAGE = Path(__file__).resolve().parents[1] / "insar_raster"


def _cube():
    rng = np.random.default_rng(3)
    days = np.arange(40) * 12.0
    values = np.cumsum(rng.normal(0, 1.0, (40, 5, 6)), axis=0) + (days / 365.25 * 10)[:, None, None]
    times = np.datetime64("2020-01-01") + days.astype("timedelta64[D]")
    return make_cube(values.astype(np.float32), times, GridSpec("EPSG:3035", 100.0, 3e6, 3.4e6, 6, 5))


def _init_parameters(model) -> set:
    """The parameter names of the estimator's ``__init__`` (through its class hierarchy)."""
    names = set()
    for cls in type(model).__mro__:
        if "__init__" in vars(cls):
            names |= {p for p in inspect.signature(cls.__init__).parameters if p != "self"}
    return names


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_stores_only_its_parameters_when_made(name):
    model = make_model(name, EvaluateConfig(window=6, steps=2, max_rows=500))
    assert isinstance(model, WindowForecaster)
    assert set(vars(model)) <= _init_parameters(model), f"{name}: __init__ does more than store parameters"
    assert not any(k.endswith("_") for k in vars(model))
    assert (model.window, model.steps) == (6, 2)


@pytest.mark.parametrize("name", [n for n in ALL_MODELS if n not in DEEP_MODELS])
def test_baselines_store_their_parameters_unchanged(name):
    """verde: ``__init__`` stores what it is given (no casting: clones compare equal)."""
    window, steps = np.int64(6), np.int64(2)
    model = make_model(name, EvaluateConfig(window=window, steps=steps, max_rows=500))
    assert model.window is window and model.steps is steps


@pytest.mark.parametrize("name", [n for n in ALL_MODELS if n not in DEEP_MODELS])
def test_fit_returns_self_and_sets_only_fitted_attributes(name):
    cube = _cube()
    split = chronological_split(40, 6, 2)
    model = make_model(name, EvaluateConfig(window=6, steps=2, max_rows=500))
    before = dict(vars(model))
    assert model.fit(cube, split) is model
    after = vars(model)
    assert {k: after[k] for k in before} == before, f"{name}: fit changed a parameter"
    assert all(k.endswith("_") for k in set(after) - set(before))
    details = model.details()
    assert isinstance(details, dict)
    importance = model.intrinsic_importance()
    assert importance is None or set(importance) >= {"share"}
    pred = model.predict_windows(cube, split.test)
    assert pred.shape == (len(split.test), 2, 5, 6) and pred.dtype == np.float32


def test_forecaster_follows_the_protocol_before_and_after_fitting():
    model = Forecaster(TrainConfig(window=4, steps=2))
    assert isinstance(model, WindowForecaster)
    assert set(vars(model)) == {"config", "progress", "in_memory_bytes"}
    assert (model.window, model.steps) == (4, 2)
    with pytest.raises(RuntimeError, match="not fitted"):
        _ = model.metadata


def test_command_line_defaults_are_the_config_defaults():
    for command in ("train", "forecast"):
        args = build_parser([command, "c.nc"]).parse_args([command, "c.nc"])
        assert training_config(args, args.steps or TrainConfig.steps) == TrainConfig()
    args = build_parser(["evaluate", "c.nc"]).parse_args(["evaluate", "c.nc"])
    assert config_from_args(EvaluateConfig, args) == EvaluateConfig()
    for name in ("window", "steps", "val_fraction", "test_fraction", "seed", "device"):
        assert getattr(EvaluateConfig, name) == getattr(TrainConfig, name)


def test_options_map_to_config_fields():
    argv = [
        "train",
        "c.nc",
        "--paper-size",
        "64",
        "--window",
        "5",
        "--steps",
        "3",
        "--val-fraction",
        "0.2",
        "--arch",
        "paper",
        "--threads",
        "2",
    ]
    args = build_parser(argv).parse_args(argv)
    config = training_config(args, args.steps)
    assert (config.paper_input_size, config.window, config.steps, config.val_fraction, config.arch, config.threads) == (
        64,
        5,
        3,
        0.2,
        "paper",
        2,
    )
    fields = {f.name for f in dataclasses.fields(TrainConfig) if "help" in f.metadata}
    assert fields <= set(vars(args))


def test_cli_commands_share_options_through_the_helper_module_only():
    """No command module imports another command module (shared groups live in cli/options.py)."""
    commands = {p.stem for p in (PACKAGE / "cli").glob("*.py") if not p.stem.startswith("_")} - {"options"}
    for name in commands:
        tree = ast.parse((PACKAGE / "cli" / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        others = {f"insar_raster.cli.{c}" for c in commands - {name}}
        assert not imported & others, f"cli/{name}.py imports {imported & others}"
