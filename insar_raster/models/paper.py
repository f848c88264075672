"""The reference paper's CNN-LSTM (arXiv:2509.18176), kept for reproduction.

Three convolutional blocks (conv 3x3 + BatchNorm + ReLU + 2x2 max-pool, 32/64/128
filters) compress each epoch's 256x256 map to 32x32x128; the flattened maps of the
``window`` epochs are read in order by an LSTM; a fully connected layer turns the last
hidden state into the full-resolution map(s). The input size is fixed, as published
(256x256 by default; any size divisible by 8 can be configured). The paper forecast one
epoch; here the fully connected layer emits ``steps`` maps at once.

The parameter count is dominated by the LSTM input weights and the output layer
(about 75 M parameters at 256x256 with ``lstm_hidden=128``), which is why the paper
settled on 256x256; the fully convolutional default (:mod:`.convlstm`) avoids this.
"""

from __future__ import annotations

import torch
from torch import nn


class PaperCNNLSTM(nn.Module):
    """CNN-LSTM of the reference paper.

    Parameters
    ----------
    in_channels : int
        Channels per epoch (1 = displacement only, as in the paper).
    steps : int
        Forecast epochs emitted at once.
    window : int
        Input epochs (informational; the LSTM reads any length).
    input_size : int or (int, int)
        Fixed (height, width) in cells; each must be divisible by 8.
    filters : tuple of int
        Filters of the three convolutional blocks.
    lstm_hidden : int
        LSTM hidden size.
    """

    fully_convolutional = False

    def __init__(
        self,
        in_channels: int = 1,
        steps: int = 1,
        window: int = 12,
        input_size=256,
        filters=(32, 64, 128),
        lstm_hidden: int = 128,
    ):
        super().__init__()
        if isinstance(input_size, int):
            input_size = (input_size, input_size)
        height, width = (int(v) for v in input_size)
        if height % 8 or width % 8 or height < 8 or width < 8:
            raise ValueError(f"paper model input size must be a multiple of 8, got {height}x{width}")
        self.input_size = (height, width)
        self.steps = int(steps)
        layers, c_in = [], in_channels
        for f in filters:
            layers += [nn.Conv2d(c_in, f, 3, padding=1), nn.BatchNorm2d(f), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = f
        self.encoder = nn.Sequential(*layers)
        n_features = c_in * (height // 8) * (width // 8)
        self.lstm = nn.LSTM(n_features, lstm_hidden, batch_first=True)
        self.head = nn.Linear(lstm_hidden, self.steps * height * width)

    def forward(
        self,
        x: torch.Tensor,
        leads: torch.Tensor | None = None,
        prior: torch.Tensor | None = None,
        level: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Map (batch, window, channels, H, W) to (batch, steps, H, W).

        ``leads``, ``prior`` and ``level`` are accepted for a uniform interface and ignored: the
        paper assumed a regular acquisition step and forecast from the window alone.
        """
        batch, window, channels, height, width = x.shape
        if (height, width) != self.input_size:
            raise ValueError(
                f"paper model expects {self.input_size[0]}x{self.input_size[1]} maps, got {height}x{width}"
            )
        features = self.encoder(x.reshape(batch * window, channels, height, width))
        features = features.reshape(batch, window, -1)
        _, (hidden, _) = self.lstm(features)
        return self.head(hidden[-1]).reshape(batch, self.steps, height, width)
