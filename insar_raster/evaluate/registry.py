"""Every model that ``evaluate`` knows, by name: what it is and how to make one.

A model here is an unfitted estimator of the protocol in
:mod:`insar_raster.forecast.estimator` (``fit(cube, split)``, ``predict_windows``,
``details``, ``intrinsic_importance``). To add one, write the estimator and add an
entry to :data:`MODELS`; ``evaluate_cube`` and the report need nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from insar_raster.errors import InputError


@dataclass(frozen=True)
class ModelEntry:
    """How ``evaluate`` describes and builds one model.

    ``make(config, train_options, progress)`` returns the unfitted estimator for an
    :class:`~insar_raster.evaluate.config.EvaluateConfig`; ``train_options`` are extra
    :class:`~insar_raster.forecast.config.TrainConfig` fields.
    """

    kind: str  # "baseline" or "deep"
    description: str
    multi_step: str
    make: Callable


def _baseline(name: str) -> Callable:
    def make(config, train_options, progress):
        from insar_raster.evaluate.baselines import make_baseline
        from insar_raster.forecast.config import TrainConfig

        history = int((train_options or {}).get("history_epochs", TrainConfig.history_epochs))
        return make_baseline(
            name, config.window, config.steps, seed=config.seed, max_rows=config.max_rows, history_epochs=history
        )

    return make


def _sequence(name: str) -> Callable:
    def make(config, train_options, progress):
        from insar_raster.evaluate.sequence_baselines import CausalTCN, DLinear

        cls = {"dlinear": DLinear, "tcn": CausalTCN}[name]
        return cls(config.window, config.steps, seed=config.seed, max_rows=config.max_rows)

    return make


#: Training budget of a deep model in ``evaluate`` where it differs from TrainConfig's
#: defaults (train options and ``epochs`` given to ``evaluate`` override it). The
#: ``paper`` model trains on whole maps of its fixed input size (a 128 x 128 grid: 7x
#: the cells of a 48 x 48 patch, through 32-128 full-resolution filters; ~20-26 s per
#: epoch of 64 samples + 48 validation maps on 2 cores), and early stopping gives no
#: bound on its time: on ``realistic`` 128 x 128 x 144 validation kept improving to
#: epoch 14 of 15 (924 of a 1145 s evaluation, when its epochs were still slow). A cap
#: on its epochs bounds it whatever validation does: at most ``epochs x
#: samples_per_epoch / batch_size`` = 16 optimiser steps. 8 was measured too: 0.12 mm
#: better on ``realistic`` for ~2 more minutes of ``evaluate`` (benchmarks/README.md,
#: "Time and size": accuracy and time per cap).
EVALUATE_BUDGET = {"paper": {"samples_per_epoch": 64, "val_patches": 48, "epochs": 4}}


def _network(arch: str) -> Callable:
    def make(config, train_options, progress):
        from insar_raster.forecast.config import TrainConfig
        from insar_raster.forecast.forecaster import Forecaster

        options = {**EVALUATE_BUDGET.get(arch, {}), **(train_options or {})}
        if config.epochs is not None:
            options["epochs"] = int(config.epochs)
        train = TrainConfig(
            arch=arch,
            window=config.window,
            steps=config.steps,
            seed=config.seed,
            device=config.device,
            val_fraction=config.val_fraction,
            test_fraction=config.test_fraction,
            **options,
        )
        return Forecaster(train, progress=progress)

    return make


_EXTRAPOLATION = "extrapolation of the per-pixel fit"
_DIRECT = "direct (one model per step)"
_ALL_AT_ONCE = "all steps at once"

#: Every model, in report order: baselines first, then the deep models, the default
#: (``convlstm``) followed only by the ``ensemble``, which reuses it and ``cnn`` when
#: they were fitted before it in the same evaluation.
MODELS = {
    "persistence": ModelEntry(
        "baseline", "last observed (input) epoch, repeated", "the last epoch for every step", _baseline("persistence")
    ),
    "trend": ModelEntry(
        "baseline", "per-pixel least-squares line through the window's epochs", _EXTRAPOLATION, _baseline("trend")
    ),
    "trend_seasonal": ModelEntry(
        "baseline",
        "per-pixel line + annual sinusoid (ridge on the seasonal terms) through the window's epochs",
        _EXTRAPOLATION,
        _baseline("trend_seasonal"),
    ),
    "history_fit": ModelEntry(
        "baseline",
        "per-pixel trend + acceleration + annual cycle (ridge; acceleration penalty chosen on "
        "validation) fitted to all past epochs up to the last input (at most 150): the default deep "
        "models' prior on its own",
        _EXTRAPOLATION,
        _baseline("history_fit"),
    ),
    "lasso": ModelEntry(
        "baseline",
        "LASSO on the pixel's last L values (raw mm), one model per step (direct)",
        _DIRECT,
        _baseline("lasso"),
    ),
    "lightgbm": ModelEntry(
        "baseline",
        "LightGBM on the pixel's last L values (relative to the last) + level + day of year, predicts "
        "the change, one model per step (direct)",
        _DIRECT,
        _baseline("lightgbm"),
    ),
    "dlinear": ModelEntry(
        "baseline",
        "DLinear: the pixel's long past (up to 150 epochs) split into a moving-average trend and a "
        "remainder, one linear layer per component (ridge, closed form), predicts the change",
        _ALL_AT_ONCE,
        _sequence("dlinear"),
    ),
    "tcn": ModelEntry(
        "baseline",
        "causal TCN on the pixel's last 64 epochs (dilated causal convolutions, receptive field 61 "
        "epochs; change and time position as inputs), predicts the change",
        _ALL_AT_ONCE,
        _sequence("tcn"),
    ),
    "paper": ModelEntry(
        "deep",
        "the paper's CNN-LSTM (3 conv blocks, LSTM over flattened maps, dense output); at most "
        "{epochs} epochs of {samples_per_epoch} whole-map samples ({val_patches} for validation)".format(
            **EVALUATE_BUDGET["paper"]
        ),
        _ALL_AT_ONCE,
        _network("paper"),
    ),
    "cnn": ModelEntry(
        "deep",
        "ablation: the default model without its recurrent core (CNN without LSTM)",
        _ALL_AT_ONCE,
        _network("cnn"),
    ),
    "tau": ModelEntry(
        "deep",
        "SimVP/TAU-style: the default model's prior, filter, encoder and decoder with a temporal-attention "
        "translator over the stacked epochs instead of the ConvLSTM",
        _ALL_AT_ONCE,
        _network("tau"),
    ),
    "convlstm": ModelEntry(
        "deep",
        "default: per-pixel history prior + its learned symmetric 5x5 spatial filter (trained first), then "
        "a fully convolutional encoder, ConvLSTM and velocity decoder whose correction is kept only if it "
        "beats that on validation",
        _ALL_AT_ONCE,
        _network("convlstm"),
    ),
    "ensemble": ModelEntry(
        "deep",
        "convlstm and cnn (each network kept only if it beats the filtered prior on validation) "
        "averaged with a weight chosen on the validation epochs; reuses the two when evaluated beside them",
        _ALL_AT_ONCE,
        _network("ensemble"),
    ),
}

ALL_MODELS = tuple(MODELS)
DEFAULT_MODELS = ALL_MODELS
#: The deep models, the default first.
DEEP_MODELS = tuple(
    sorted((name for name, entry in MODELS.items() if entry.kind == "deep"), key=lambda name: name != "convlstm")
)
#: Models that get the permutation test by default (persistence and the window fits
#: use the last epochs by construction).
PERMUTATION_MODELS = ("history_fit", "lasso", "lightgbm", "paper", "cnn", "convlstm")


def parse_models(text) -> list[str]:
    """``"paper,lasso"`` (or a list) -> validated model names, order kept, no duplicates."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in ALL_MODELS]
    if unknown or not names:
        raise InputError(
            None,
            f"unknown model(s) {', '.join(unknown) or '(none given)'}",
            f"choose from {', '.join(ALL_MODELS)}",
            param="models",
        )
    return list(dict.fromkeys(names))


def make_model(name: str, config, train_options: dict | None = None, progress: bool = False):
    """The unfitted estimator ``name`` for an :class:`~insar_raster.evaluate.config.EvaluateConfig`."""
    return MODELS[name].make(config, train_options, progress)
