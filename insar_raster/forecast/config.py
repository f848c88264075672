"""One home for the settings of training and of the sliding-window samples.

Every default (window 12, steps 6, the split fractions, the 150-epoch history...) is
written once, as a field of :class:`TrainConfig`; the evaluation's config
(:class:`insar_raster.evaluate.config.EvaluateConfig`) reuses these fields, and the
command line generates its options from them (:mod:`insar_raster.cli.options`): a
field's ``metadata`` holds its help text (and ``choices``, ``metavar``,
``show_default``). Fields without ``help`` are API-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from insar_raster.errors import InputError
from insar_raster.models import ARCHITECTURES

PRIORS = ("auto", "harmonic", "none")
DEVICES = ("auto", "cpu", "cuda")


def option(default, help: str | None = None, **cli):
    """A dataclass field whose ``metadata`` describes its command-line option."""
    meta = dict(cli)
    if help is not None:
        meta["help"] = help
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :class:`~insar_raster.forecast.forecaster.Forecaster` (all stored in the model file).

    Parameters
    ----------
    arch : {"convlstm", "paper", "cnn", "tau", "ensemble"}
        Architecture (see :mod:`insar_raster.models`); ``ensemble`` trains a ``convlstm``
        and a ``cnn`` with these settings and averages them with a weight chosen on
        validation (:mod:`insar_raster.forecast.ensemble`).
    window, steps : int
        Input epochs and forecast epochs per sample.
    epochs : int
        Maximum training epochs (passes of ``samples_per_epoch`` random patches).
    batch_size : int
        Patches per optimiser step.
    lr : float
        Adam learning rate.
    seed : int
        Seed of patch sampling and weight initialisation.
    device : {"auto", "cpu", "cuda"}
        ``auto`` uses CUDA when available.
    patch_size : int
        Side of the square training patches (cells), clipped to the grid; the ``paper``
        model uses its fixed input size instead.
    val_fraction, test_fraction : float
        Share of epochs for validation and (held-out) test, see
        :func:`~insar_raster.forecast.windows.chronological_split`.
    samples_per_epoch : int
        Random patches per training epoch.
    patience : int
        Early stopping: epochs without validation improvement before stopping; the
        best weights are restored.
    val_patches : int
        Fixed (seeded) validation patches evaluated after each epoch.
    min_improvement : float
        Relative validation-loss improvement needed to keep new weights (and reset the
        patience): small gains on a short validation period are mostly noise, and the
        untrained model (the prior) is a strong default.
    significance : float
        New weights must also lower the validation loss of the validation dates by at
        least this many standard errors of the per-date gains (one-sided; 2 is about
        97.5 %). A date's atmospheric noise is shared by all its cells, so a gain on a
        few dates is luck, not skill. 0 disables the test.
    hidden, features : int
        Width of the ``convlstm``/``cnn`` recurrent core and full-resolution layers.
    paper_input_size : int
        Fixed input size of the ``paper`` model (clipped to the grid, multiple of 8).
    paper_lstm_hidden : int
        LSTM size of the ``paper`` model.
    tile_size, tile_overlap : int
        Prediction tiles (cells) of fully convolutional models and their overlap.
    prior : {"auto", "harmonic", "none"}
        History prior given to the decoder (see :mod:`insar_raster.forecast.data`):
        ``harmonic`` = the per-pixel history fit; ``auto`` = for ``convlstm``/``cnn``/``tau``
        the history fit or, where it wins on validation, the learned linear prior
        (``lag_prior``); ``none`` for ``paper`` (which forecasts from the window alone, as
        published).
    lag_prior : sequence of sequences of float, or None
        Weights (``steps`` x lookback) of the learned linear prior's lags (see
        :mod:`insar_raster.forecast.data`, *Learned linear prior*), fitted in training
        with ``prior="auto"`` and kept when they beat the history fit on validation;
        ``None``: the history fit alone. Stored in the model file.
    lag_prior_fit : sequence of sequences of float, or None
        Weights (``steps`` x ``steps``) of the history fit's changes in the learned
        prior's residual form (what training fits); ``None`` with ``lag_prior``: the
        lags-only form of model files written before it.
    lag_prior_centred : bool
        The residual form's centred variant: the map is applied to the features minus
        their grid mean at the same forecast, correcting only each cell's departure from
        the scene (training fits both and keeps the one validation prefers).
    history_epochs : int
        At most this many past epochs (ending at the last input epoch) enter the
        history fit.
    prior_history : int or None
        Past epochs of the history fit actually used (at most ``history_epochs``);
        ``None`` picks it, with the acceleration penalty, from
        :data:`~insar_raster.forecast.data.PRIOR_HISTORIES` by the prior's loss on the
        validation patches: after a change point (a pumping rate change, a front that
        arrived) a recent, shorter fit extrapolates better than the whole past.
    acceleration_ridge : float or None
        Penalty on the history prior's acceleration (see
        :func:`~insar_raster.forecast.data.history_fit`); ``None`` picks it from
        :data:`~insar_raster.forecast.data.ACCELERATION_RIDGES` by the prior's loss on the
        validation patches before training (the model file stores the choice).
    min_history_fraction : float
        With a history prior, train only on samples whose history (epochs up to the
        last input) spans at least this share of the training epochs. The prior's
        noise shrinks as its history grows, and forecasts are made with the longest
        history of all: samples from the first months, with a much noisier prior, teach
        the filter and the network more correction than forecast time needs.
    advection : bool
        Give the decoder of ``convlstm``/``cnn``/``tau`` the advected recent motion
        (:mod:`insar_raster.forecast.advection`): the change of the last epochs moved
        along the pattern's own velocity, which is where an advancing front goes next.
    importance : float
        Share (0-1) of the training patches drawn with weights on where the recent
        motion changes (``forecast.train._MotionWeights``: fronts, rate switches), the
        rest uniformly; validation patches are always uniform. 0: all uniform.
    focus : float
        Extra weight of the training loss on cells near recent changes of rate, read from
        the *input* epochs only (``forecast.train._focus_weights``: where a front's face
        or a rate switch is, within ``steps`` cells): a cell's weight is ``1 + focus *
        e / mean(e)`` (capped at ``1 + 10 focus``), ``e`` the largest squared change of
        rate in its neighbourhood. Weights on inputs alone leave the optimum for each
        input unchanged; they spend the network's capacity where the prior fails. 0:
        every cell alike. Validation always weights every cell alike.
    threads : int or None
        CPU threads for torch (default: the cores this process may use, at most 8).
    """

    arch: str = option(
        "convlstm",
        "convlstm: fully convolutional, any grid (default); paper: the reference CNN-LSTM "
        "(fixed input size); cnn: convlstm without its recurrent core (ablation); tau: "
        "SimVP/TAU-style temporal-attention translator instead of the ConvLSTM; ensemble: a convlstm "
        "and a cnn averaged with a weight chosen on validation",
        choices=ARCHITECTURES,
        show_default=False,
    )
    window: int = option(12, "past epochs per forecast, L")
    steps: int = option(6, "epochs forecast at once, H (the paper did 1)")
    epochs: int = option(15, "maximum training epochs")
    batch_size: int = option(16, "patches per step")
    lr: float = option(2e-3, "Adam learning rate")
    seed: int = option(0, "random seed; results are reproducible on CPU")
    device: str = option("auto", "auto uses CUDA when available", choices=DEVICES)
    patch_size: int = option(48, "training patch side in cells (paper: its input size)")
    val_fraction: float = option(0.15, "share of the latest epochs before the test part used for validation")
    test_fraction: float = option(0.15, "share of the latest epochs held out, never trained or validated on")
    samples_per_epoch: int = option(128, "random patches per training epoch")
    patience: int = option(4, "early stopping patience, epochs")
    val_patches: int = option(96)
    min_improvement: float = option(0.01)
    significance: float = option(
        2.0,
        "new weights must lower the validation loss by this many standard errors of "
        "the per-date gains, besides 1%% overall (0 keeps any 1%% gain)",
        metavar="Z",
    )
    hidden: int = option(16)
    features: int = option(16)
    paper_input_size: int = option(
        256, "fixed input size of the paper model, cells (clipped to the grid)", metavar="CELLS"
    )
    paper_lstm_hidden: int = option(128)
    tile_size: int = option(384)
    tile_overlap: int = option(32)
    prior: str = option(
        "auto",
        "what the network corrects: harmonic = per-pixel trend+seasonal history fit; auto = that or a linear "
        "map of each pixel's past learned from all pixels, whichever wins on validation (none for paper)",
        choices=PRIORS,
    )
    lag_prior: tuple | None = option(None)
    lag_prior_fit: tuple | None = option(None)
    lag_prior_centred: bool = option(False)
    history_epochs: int = option(150)
    prior_history: int | None = option(None)
    acceleration_ridge: float | None = option(None)
    min_history_fraction: float = option(0.5)
    advection: bool = option(False)
    importance: float = option(
        0.0,
        "share of training patches drawn where the recent motion changes (fronts, rate switches); the rest uniform",
        metavar="SHARE",
    )
    focus: float = option(0.0)
    threads: int | None = option(
        None, "CPU threads for torch (default: available cores, at most 8)", show_default=False
    )

    @property
    def fit_history(self) -> int:
        """Past epochs (up to the last input) read per sample: the history fit's length."""
        if not self.use_prior:
            return int(self.window)
        chosen = self.history_epochs if self.prior_history is None else min(self.prior_history, self.history_epochs)
        return max(int(chosen), int(self.window))

    @property
    def read_history(self) -> int:
        """Past epochs read per sample: the history fit's, or the learned linear prior's
        lookback and its last epoch when longer."""
        lookback = 0 if self.lag_prior is None else len(self.lag_prior[0])
        return max(self.fit_history, lookback + 1)

    @property
    def linear_prior(self):
        """The learned linear prior (:class:`~insar_raster.forecast.data.LinearPrior`), or None."""
        from insar_raster.forecast.data import LinearPrior

        if self.lag_prior is None:
            return None
        fit = None if self.lag_prior_fit is None else np.asarray(self.lag_prior_fit, dtype=np.float64)
        return LinearPrior(np.asarray(self.lag_prior, dtype=np.float64), fit, bool(self.lag_prior_centred))

    @property
    def learns_lag_prior(self) -> bool:
        """Whether training may replace the history fit by the learned linear prior."""
        return self.prior == "auto" and self.use_prior

    @property
    def use_prior(self) -> bool:
        """Whether the history prior is computed for this configuration."""
        return self.prior == "harmonic" or (self.prior == "auto" and self.arch != "paper")

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise InputError(
                None, f"unknown architecture {self.arch!r}", f"choose one of {', '.join(ARCHITECTURES)}", param="arch"
            )
        for name in ("window", "steps", "epochs", "batch_size", "patch_size", "samples_per_epoch"):
            if int(getattr(self, name)) < 1:
                raise InputError(None, f"must be at least 1, got {getattr(self, name)}", param=name)
        if self.prior not in PRIORS:
            raise InputError(None, f"unknown prior {self.prior!r}", "choose auto, harmonic or none", param="prior")
        if self.lag_prior is not None:
            weights = np.asarray(self.lag_prior, dtype=np.float64)
            if weights.ndim != 2 or weights.shape[0] != int(self.steps) or not np.isfinite(weights).all():
                raise InputError(None, f"must be {self.steps} rows of finite weights", param="lag_prior")
            # Stored as nested tuples: the config stays hashable and JSON writes it as lists.
            object.__setattr__(self, "lag_prior", tuple(tuple(float(v) for v in row) for row in weights))
        if self.lag_prior_fit is not None:
            weights = np.asarray(self.lag_prior_fit, dtype=np.float64)
            if self.lag_prior is None:
                raise InputError(None, "needs lag_prior (the weights of the lags)", param="lag_prior_fit")
            if weights.shape != (int(self.steps), int(self.steps)) or not np.isfinite(weights).all():
                raise InputError(None, f"must be {self.steps} x {self.steps} finite weights", param="lag_prior_fit")
            object.__setattr__(self, "lag_prior_fit", tuple(tuple(float(v) for v in row) for row in weights))
        if self.lag_prior_centred and self.lag_prior_fit is None:
            raise InputError(None, "needs lag_prior_fit (the centred form is residual)", param="lag_prior_centred")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(None, f"must be a positive number, got {self.lr}", param="lr")
        if not (self.significance >= 0 and math.isfinite(self.significance)):
            raise InputError(None, f"must be a number >= 0, got {self.significance}", param="significance")
        if self.acceleration_ridge is not None and not self.acceleration_ridge >= 0:
            raise InputError(None, f"must be >= 0, got {self.acceleration_ridge}", param="acceleration_ridge")
        if not (self.focus >= 0 and math.isfinite(self.focus)):
            raise InputError(None, f"must be a number >= 0, got {self.focus}", param="focus")
        if not 0.0 <= self.importance <= 1.0:
            raise InputError(None, f"must be between 0 and 1, got {self.importance}", param="importance")
        if not 0.0 <= self.min_history_fraction <= 1.0:
            raise InputError(
                None, f"must be between 0 and 1, got {self.min_history_fraction}", param="min_history_fraction"
            )
