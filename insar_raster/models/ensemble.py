"""``ensemble``: a weighted average of separately trained forecasters.

Two differently built networks trained on the same history prior's residuals (the
``convlstm`` and the ``cnn``, :mod:`insar_raster.models.convlstm`) make partly
independent errors; their weighted average ``w_1 f_1 + w_2 f_2`` (weights >= 0 that sum
to 1) has a lower variance than either when the weight is right. The weights are not
learned by gradient descent: :mod:`insar_raster.forecast.ensemble` chooses them on the
validation epochs (``w = 0`` or ``1`` drops a member; a member whose network was not
kept on validation *is* the filtered history prior, so the average can also fall back
to the prior). The weights are constructor arguments, so the model file stores them in
its JSON header and the members' weights in its state dict (no code is stored).
"""

from __future__ import annotations

from torch import nn


def _member(arch: str, hparams: dict) -> nn.Module:
    """A member network by name (the fully convolutional architectures; not imported
    through :func:`insar_raster.models.build_model`, which imports this module)."""
    from insar_raster.models.convlstm import ConvForecaster, ConvLSTMForecaster
    from insar_raster.models.tau import TAUForecaster

    classes = {"convlstm": ConvLSTMForecaster, "cnn": ConvForecaster, "tau": TAUForecaster}
    if arch not in classes:
        raise ValueError(f"an ensemble member must be one of {', '.join(classes)}, got {arch!r}")
    return classes[arch](**hparams)


class WeightedEnsemble(nn.Module):
    """``sum_i weights[i] * member_i(...)`` over the members whose weight is not 0.

    Parameters
    ----------
    members : list of dict
        ``{"arch": name, "hparams": {...}}`` of each member (built with
        :func:`insar_raster.models.build_model`); not another ensemble.
    weights : list of float
        One weight per member, each >= 0, summing to 1.
    advection : int
        The members' ``advection`` (the same for all; stored so that the forecaster
        builds the advected input when they read it).
    """

    def __init__(self, members: list, weights: list, advection: int = 0):
        super().__init__()
        if len(members) != len(weights) or not members:
            raise ValueError("an ensemble needs one weight per member and at least one member")
        if any(float(w) < 0 for w in weights) or abs(sum(float(w) for w in weights) - 1.0) > 1e-6:
            raise ValueError(f"ensemble weights must be >= 0 and sum to 1, got {list(weights)}")
        self.archs = [str(m["arch"]) for m in members]
        self.weights = [float(w) for w in weights]
        self.advection = int(advection)
        self.members = nn.ModuleList(_member(m["arch"], m["hparams"]) for m in members)
        self.fully_convolutional = all(getattr(m, "fully_convolutional", False) for m in self.members)

    def forward(self, *inputs):
        """The weighted sum of the members' outputs (same inputs, see :mod:`insar_raster.models`)."""
        out = None
        for weight, member in zip(self.weights, self.members):
            if weight == 0.0:
                continue  # a dropped member costs nothing at prediction time
            part = member(*inputs) if weight == 1.0 else weight * member(*inputs)
            out = part if out is None else out + part
        return out
