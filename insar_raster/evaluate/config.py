"""The settings of an evaluation, one field each, defaults from the training config.

The window, horizon, seed, device and split fractions are the fields of
:class:`~insar_raster.forecast.config.TrainConfig` (same defaults, same help), so a
model trained with the defaults is evaluated with the same samples. ``insar-raster
evaluate`` generates its options from these fields (:mod:`insar_raster.cli.options`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from insar_raster.forecast.config import DEVICES, TrainConfig, option


def _train_field(name: str):
    """The field ``name`` of TrainConfig: its default and its command-line metadata."""
    source = TrainConfig.__dataclass_fields__[name]
    return field(default=source.default, metadata=source.metadata)


@dataclass(frozen=True)
class EvaluateConfig:
    """Settings of :func:`insar_raster.evaluate.evaluate_cube`.

    Parameters
    ----------
    window, steps : int
        Input epochs and forecast horizon (epochs) of every model.
    seed : int
        Seed of every model (row subsampling, boosting, network initialisation).
    epochs : int or None
        Maximum training epochs of the deep models (None: their own default, which for
        the ``paper`` model is the cap of
        :data:`~insar_raster.evaluate.registry.EVALUATE_BUDGET`).
    val_fraction, test_fraction : float
        Shares of epochs for validation and test (see ``chronological_split``).
    device : {"auto", "cpu", "cuda"}
        Device of the deep models.
    max_rows : int
        Training rows (sample x pixel) of LASSO and LightGBM.
    permutation_repeats : int
        Donor windows per lag in the permutation test (0 disables it).
    interval : float or None
        Level (percent, 50-99) of the calibrated forecast intervals whose coverage of
        the test observations and mean width are reported (models that carry them).
    """

    window: int = _train_field("window")
    steps: int = _train_field("steps")
    seed: int = option(TrainConfig.seed, "seed of every model")
    epochs: int | None = option(
        None,
        "maximum training epochs of the deep models (default: their training default; the paper model at most 4)",
        show_default=False,
    )
    val_fraction: float = _train_field("val_fraction")
    test_fraction: float = _train_field("test_fraction")
    device: str = option(TrainConfig.device, "deep models: auto, cpu or cuda", choices=DEVICES)
    max_rows: int = option(100_000, "training rows (sample x pixel) for LASSO and LightGBM")
    permutation_repeats: int = option(2, "donor windows per lag in the permutation test; 0 skips it")
    interval: float | None = option(
        80.0,
        "level (percent, 50-99) of the calibrated forecast intervals whose coverage and width are reported",
        metavar="PERCENT",
    )
