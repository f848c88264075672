"""The estimator protocol that every forecasting model follows, baseline or network.

It copies verde's gridders (and scikit-learn's estimators):

- ``__init__`` only stores its parameters (no work, no validation against data);
- ``fit(cube, split)`` learns from the *training* samples of a
  :class:`~insar_raster.forecast.windows.ChronoSplit` (hyper-parameters from its
  validation samples), sets the fitted attributes, whose names end in ``_``, and
  returns ``self``;
- ``predict_windows(cube, starts)`` forecasts sample ``s`` (input epochs
  ``[s, s + window)``, targets ``[s + window, s + window + steps)``) and returns an
  array ``(n, steps, H, W)`` float32 in mm, NaN where no forecast is possible.

Besides ``window`` and ``steps`` (epochs), a model says what a report should show
about it once fitted (``details()``, JSON-ready) and the importance of its input lags
when it has one of its own (``intrinsic_importance()``: a JSON-ready dict, or None).
:func:`insar_raster.evaluate.evaluate_cube` relies on nothing else, so a new model that
follows this protocol is evaluated like the others (register it in
:mod:`insar_raster.evaluate.registry`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import xarray as xr


@runtime_checkable
class WindowForecaster(Protocol):
    """What :func:`~insar_raster.evaluate.evaluate_cube` needs of a model."""

    window: int
    steps: int

    def fit(self, cube: xr.Dataset, split) -> "WindowForecaster":
        """Learn from ``split``'s training (and validation) samples; return ``self``."""

    def predict_windows(self, cube: xr.Dataset, starts) -> np.ndarray:
        """Forecasts ``(len(starts), steps, H, W)`` float32 mm of the samples at ``starts``."""

    def details(self) -> dict:
        """What a report shows about the fitted model (JSON-ready)."""

    def intrinsic_importance(self) -> dict | None:
        """The model's own importance of its input lags (JSON-ready), or None."""
