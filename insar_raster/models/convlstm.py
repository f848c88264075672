"""Fully convolutional forecasters: ``convlstm`` (default) and its ablation ``cnn``.

Why this design
---------------
- *Fully convolutional*: no layer depends on the grid size, so a model trained on
  random 64x64 patches runs on any grid (odd sizes, 2000x2000 by tiles). Training cost
  is independent of the grid size.
- *Residual output*: inputs are displacements relative to the last observed epoch and
  the model predicts the change from that epoch, so "no change" (persistence) is the
  zero output and the network only has to learn the dynamics.
- *Velocity head*: the decoder emits a velocity map ``v`` and per-step corrections
  ``c_k``; the forecast change at lead ``t_k`` (in acquisition steps, from the
  ``leads`` input) is ``t_k * v + c_k``. Linear trends, which dominate InSAR
  deformation, are then one output map, extrapolated correctly to irregular leads.
- *History prior*: the decoder also receives the change predicted by a per-pixel
  trend + acceleration + annual-cycle fit over the whole past
  (:func:`insar_raster.forecast.data.history_fit`), and the output is that prior plus
  the learned correction. A 12-epoch window alone cannot separate a seasonal cycle from
  a trend; the network's job becomes denoising and correcting a physically plausible
  extrapolation, which it does with spatial context no per-pixel fit has. With a zero
  prior (``TrainConfig(prior="none")``) the model is a plain residual forecaster.
- *Time as channels*: each input epoch carries its time position relative to the last
  epoch (handles irregular 6/12-day gaps and missing acquisitions) and the day of
  year (sine/cosine) for seasonal motion.
- *Learned spatial filter of the prior*: a per-pixel fit carries the white noise of
  its own pixel into the forecast, and no per-pixel model can average it away. A
  5x5 filter, learned but constrained to be symmetric under flips and transposes and
  to sum to zero (no first moments, so it never shifts a slope, and no offset), adds
  ``filter * (level + prior)`` to the forecast: the history fit's forecast denoised
  with its neighbours' (on the synthetic scenes it learns a Savitzky-Golay-like
  smoother). It needs the absolute level of the last epoch (``level``) because the
  fit's forecast is ``level + prior``. Zero-initialised, and applied only where the
  whole 5x5 neighbourhood is observed (never smears values across a mask edge).
- *Cheap core*: the recurrent core runs at half resolution (a strided encoder), which
  divides its cost by four; a full-resolution skip connection from the last epoch
  keeps sharp edges (e.g. mask borders).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvLSTMCell(nn.Module):
    """One ConvLSTM cell (Shi et al., 2015): LSTM gates computed by a convolution."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class SymmetricSpatialFilter(nn.Module):
    """A learned ``size`` x ``size`` filter, symmetric under the 8 flips/transposes, zero sum.

    ``forward(field, valid)`` returns ``kernel * field`` (per channel, same kernel) where
    ``valid`` (batch, 1, H, W) holds on the whole neighbourhood, 0 elsewhere. Symmetry
    removes odd moments (a linear ramp passes through unchanged) and the zero sum
    removes offsets, so the filter can only act on local curvature and noise.
    """

    def __init__(self, size: int = 5):
        super().__init__()
        self.size = int(size)
        self.weight = nn.Parameter(torch.zeros(self.size, self.size))

    def kernel(self) -> torch.Tensor:
        w = self.weight
        w = (w + w.flip(0)) / 2
        w = (w + w.flip(1)) / 2
        w = (w + w.transpose(0, 1)) / 2
        centre = torch.zeros_like(w)
        centre[self.size // 2, self.size // 2] = 1.0
        return w - w.sum() * centre

    def forward(self, field: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = field.shape
        pad = self.size // 2
        k = self.kernel()[None, None].to(field.dtype)
        out = F.conv2d(field.reshape(batch * channels, 1, height, width), k, padding=pad)
        full = F.avg_pool2d(valid.to(field.dtype), self.size, stride=1, padding=pad, count_include_pad=True)
        return out.reshape(batch, channels, height, width) * (full > 1 - 1e-4).to(field.dtype)


class _EncoderDecoder(nn.Module):
    """Shared per-epoch encoder, full-resolution skip, and velocity decoder."""

    fully_convolutional = True

    def __init__(self, in_channels: int, steps: int, hidden: int, features: int, advection: int = 0):
        super().__init__()
        self.steps = int(steps)
        self.hidden = int(hidden)
        # advection > 0: the decoder also reads the advected recent motion (one map per
        # step, see insar_raster.forecast.advection); the value is the shift searched (cells).
        self.advection = int(advection)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, features, 3, padding=1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.Conv2d(features, hidden, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.decode = nn.Sequential(
            nn.Conv2d(hidden + features + self.steps * (2 if self.advection else 1), features, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(features, features, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        # 1 velocity map + one correction per step.
        self.out = nn.Conv2d(features, 1 + self.steps, 1)
        nn.init.zeros_(self.out.weight)  # start from persistence: zero change
        nn.init.zeros_(self.out.bias)
        self.refine = SymmetricSpatialFilter(5)  # zero at start too

    def _encode(self, x):
        """(B, L, C, H, W) -> full-res features of all epochs and half-res features."""
        batch, window, channels, height, width = x.shape
        full = self.stem(x.reshape(batch * window, channels, height, width))
        half = self.down(full)
        return (full.reshape(batch, window, *full.shape[1:]), half.reshape(batch, window, *half.shape[1:]))

    def _decode(self, core, skip, leads, prior, size, advect=None):
        up = F.interpolate(core, size=size, mode="bilinear", align_corners=False)
        maps = [up, skip, prior] if not self.advection else [up, skip, prior, advect]
        z = self.out(self.decode(torch.cat(maps, dim=1)))
        velocity, correction = z[:, :1], z[:, 1:]
        return leads[:, :, None, None].to(z.dtype) * velocity + correction

    def forward(
        self,
        x: torch.Tensor,
        leads: torch.Tensor | None = None,
        prior: torch.Tensor | None = None,
        level: torch.Tensor | None = None,
        advect: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Map (batch, window, channels, H, W) to the change (batch, steps, H, W).

        ``leads`` (batch, steps) defaults to 1..steps (regular cube); ``prior``
        (batch, steps, H, W) to zero (no history prior); ``level`` (batch, 1, H, W), the
        last input epoch's displacement in normalised units (0 where masked), to zero;
        ``advect`` (batch, steps, H, W), the advected recent change in normalised units
        (models built with ``advection`` > 0 only), to zero.
        """
        batch, _, _, height, width = x.shape
        if leads is None:
            leads = torch.arange(1, self.steps + 1, dtype=x.dtype, device=x.device).expand(batch, -1)
        if prior is None:
            prior = x.new_zeros(batch, self.steps, height, width)
        if level is None:
            level = x.new_zeros(batch, 1, height, width)
        if advect is None and self.advection:
            advect = x.new_zeros(batch, self.steps, height, width)
        # Pad to even sizes so the stride-2 encoder and the upsampling line up.
        pad_h, pad_w = height % 2, width % 2
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
            prior = F.pad(prior, (0, pad_w, 0, pad_h))
            level = F.pad(level, (0, pad_w, 0, pad_h))
            advect = None if advect is None else F.pad(advect, (0, pad_w, 0, pad_h))
        full, half = self._encode(x)
        core = self._core(half)
        out = self._decode(core, full[:, -1], leads, prior, x.shape[-2:], advect)
        return (out + self.filtered_prior(x, prior, level))[..., :height, :width]

    def filtered_prior(self, x: torch.Tensor, prior: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The history prior plus its learned spatial filter (no network): (batch, steps, H, W).

        What the model forecasts before its network has learned anything; training
        fits :attr:`refine` on this alone first (cheap, see ``forecast.train``).
        """
        # Channel 1 of the last epoch is its validity (0 in padding too).
        return prior + self.refine(level + prior, x[:, -1, 1:2])


class ConvLSTMForecaster(_EncoderDecoder):
    """Default model: conv encoder -> ConvLSTM over the epochs -> conv decoder.

    Parameters
    ----------
    in_channels : int
        Channels per input epoch.
    steps : int
        Forecast epochs emitted at once.
    window : int
        Input epochs (the ConvLSTM reads any length; stored for the record).
    hidden : int
        ConvLSTM state channels (at half resolution).
    features : int
        Full-resolution feature channels (stem and decoder).
    advection : int
        Largest shift (cells) of the advected recent motion the decoder reads
        (:mod:`insar_raster.forecast.advection`); 0: no such input (models saved before it).
    """

    def __init__(
        self,
        in_channels: int = 6,
        steps: int = 6,
        window: int = 12,
        hidden: int = 16,
        features: int = 16,
        advection: int = 0,
    ):
        super().__init__(in_channels, steps, hidden, features, advection)
        self.cell = ConvLSTMCell(hidden, hidden)

    def _core(self, half):
        batch, window, _, h, w = half.shape
        state = (half.new_zeros(batch, self.hidden, h, w), half.new_zeros(batch, self.hidden, h, w))
        for t in range(window):
            state = self.cell(half[:, t], state)
        return state[0]


class ConvForecaster(_EncoderDecoder):
    """Ablation ``cnn``: :class:`ConvLSTMForecaster` without its recurrent core.

    The half-resolution features of the ``window`` epochs are stacked as channels and
    mixed by two plain convolutions (early temporal fusion, no memory cell), so the
    comparison with ``convlstm`` isolates what the recurrence contributes. The window
    length is therefore fixed at construction.
    """

    def __init__(
        self,
        in_channels: int = 6,
        steps: int = 6,
        window: int = 12,
        hidden: int = 16,
        features: int = 16,
        advection: int = 0,
    ):
        super().__init__(in_channels, steps, hidden, features, advection)
        self.window = int(window)
        self.mix = nn.Sequential(
            nn.Conv2d(self.window * hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
        )

    def _core(self, half):
        batch, window, channels, h, w = half.shape
        if window != self.window:
            raise ValueError(f"cnn model was built for window={self.window}, got {window} epochs")
        return self.mix(half.reshape(batch, window * channels, h, w))
