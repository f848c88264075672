"""Neural network architectures for cube forecasting.

Every model maps a batch of input windows to the change of displacement relative to
the last input epoch, in normalised units:

``forward(x, leads=None, prior=None, level=None) -> (batch, steps, h, w)`` with

- ``x``: (batch, window, channels, h, w) float32; channels are built by
  :func:`insar_raster.forecast.data.prepare_batch` (relative displacement, validity,
  time position, day-of-year sine/cosine, residual from the history fit);
- ``leads``: (batch, steps) float32, time from the last input epoch to each target
  epoch in units of the training cube's acquisition step (1, 2, 3... on a regular cube);
- ``prior``: (batch, steps, h, w) float32, the change predicted by the per-pixel history
  fit (:func:`insar_raster.forecast.data.history_fit`), used by ``convlstm``/``cnn``;
- ``level``: (batch, 1, h, w) float32, displacement of the last input epoch in
  normalised units (0 where masked): with ``prior`` it gives the fit's forecast in
  absolute terms, which ``convlstm``/``cnn`` filter spatially;
- ``advect`` (``convlstm``/``cnn``/``tau`` built with ``advection > 0`` only): (batch,
  steps, h, w) float32, the recent motion moved with its own velocity
  (:mod:`insar_raster.forecast.advection`), an input of the decoder.

Architectures
-------------
``convlstm`` (default)
    Fully convolutional encoder -> ConvLSTM -> decoder; any grid size.
``paper``
    The reference paper's CNN-LSTM (three conv blocks, LSTM over flattened maps, fully
    connected reconstruction); fixed input size.
``cnn``
    Ablation of ``convlstm``: the same encoder/decoder with the recurrent core replaced
    by plain convolutions over the epochs stacked as channels ("CNN without LSTM").
``ensemble``
    A weighted average of a ``convlstm`` and a ``cnn`` trained on the same prior
    residuals, the weights chosen on the validation epochs
    (:mod:`insar_raster.models.ensemble`, :mod:`insar_raster.forecast.ensemble`).
``tau``
    SimVP/TAU-style: the same encoder/decoder with a temporal-attention translator over
    the stacked epochs (large-kernel depth-wise spatial attention x channel attention),
    no recurrence; any grid size (:mod:`insar_raster.models.tau`).
"""

from __future__ import annotations

ARCHITECTURES = ("convlstm", "paper", "cnn", "tau", "ensemble")
#: Architectures that run on any grid size (predicted by overlapping tiles).
FULLY_CONVOLUTIONAL = ("convlstm", "cnn", "tau", "ensemble")
#: The members of the ``ensemble`` architecture, trained one after the other.
ENSEMBLE_MEMBERS = ("convlstm", "cnn")


def build_model(arch: str, **hparams):
    """Instantiate an architecture by name with its hyper-parameters.

    Raises
    ------
    ValueError
        Unknown architecture name.
    """
    if arch == "convlstm":
        from insar_raster.models.convlstm import ConvLSTMForecaster as cls
    elif arch == "paper":
        from insar_raster.models.paper import PaperCNNLSTM as cls
    elif arch == "cnn":
        from insar_raster.models.convlstm import ConvForecaster as cls
    elif arch == "tau":
        from insar_raster.models.tau import TAUForecaster as cls
    elif arch == "ensemble":
        from insar_raster.models.ensemble import WeightedEnsemble as cls
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return cls(**hparams)
