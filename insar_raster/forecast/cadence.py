"""Training across a cadence change: the record also seen at the cadence the future follows.

Sentinel-1 acquired every 6 days until Sentinel-1B failed (December 2021) and every 12
days after, so an EGMS L2a/L2b series that ends in 2022 or later is forecast at 12-day
steps while most of its training samples step 6 days. The networks take the time gaps
as input, but gaps they never saw are outside what they learned: on a real-like burst
with that history (benchmarks/README.md, "A real-like L2b burst") the default kept its
network on 6-day validation samples and was then 1.3x worse than its own prior on the
test samples at 12-day steps, while on the test samples at 6-day steps it matched it.

When the forecast step (:func:`~insar_raster.forecast.data.acquisition_step_days`, the
median of the latest gaps) is at least :data:`CADENCE_CHANGE` times the training
epochs' step, the record up to the end of the validation epochs is also resampled to
the forecast step (:func:`~insar_raster.forecast.resample.resample_cube`: linear in
time, which on a 6-day record at 12 days keeps every other acquisition). Training then
draws :data:`CADENCE_SHARE` of its patches from that view, validation (early stopping,
whether the network is kept) scores both, and the intervals are calibrated on the
view's validation samples: the steps the forecast will take. A resampled epoch is a
training target only when it lies at or before the last training epoch, so no
validation or test value becomes a training target.

The other way round, Sentinel-1C restored a 6-day revisit on many tracks in 2025: a
record of 12-day training epochs may end in 6-day gaps. The model then forecasts at its
training step (:meth:`~insar_raster.forecast.forecaster.Forecaster.forecast` reads the
record resampled to that step, ending at its last date), so the view is the record at the
training step: validation and the intervals' calibration see the 12-day steps the
forecast takes, not the 6-day gaps of the validation epochs as acquired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from insar_raster.forecast.data import acquisition_step_days, times_in_days
from insar_raster.forecast.windows import ChronoSplit, n_samples

#: A forecast step at least this many times the training epochs' median step is a cadence change.
CADENCE_CHANGE = 1.5
#: Share of the training patches drawn from the record at the forecast step.
CADENCE_SHARE = 0.5


@dataclass(frozen=True)
class CadenceView:
    """The record up to the end of the validation epochs, at the forecast step.

    Attributes
    ----------
    cube : xarray.Dataset
        Resampled cube (regular ``step_days``); only epochs before the split's
        ``val_end`` were read.
    split : ChronoSplit
        Its samples: training targets at or before the last training epoch's date,
        validation targets after it; no test part.
    step_days : float
        The forecast step (days).
    native_step_days : float
        The training epochs' median step (days).
    """

    cube: xr.Dataset
    split: ChronoSplit
    step_days: float
    native_step_days: float

    def describe(self) -> dict:
        """Summary for a model file's metadata."""
        return {
            "step_days": self.step_days,
            "native_step_days": self.native_step_days,
            "share": CADENCE_SHARE,
            "train_samples": int(len(self.split.train)),
            "val_samples": int(len(self.split.val)),
        }


def forecast_step_change(cube: xr.Dataset, split: ChronoSplit) -> tuple[float, float] | None:
    """``(forecast step, training step)`` in days when the cube's current step (the
    median of its latest gaps) is at least :data:`CADENCE_CHANGE` times the training
    epochs' median step, or that many times finer (then the forecast step is the training
    step: :func:`forecast_resampling`); else None."""
    days = times_in_days(cube)[: split.train_end]
    if len(days) < 2:
        return None
    native = float(np.median(np.diff(days)))
    current = float(np.round(acquisition_step_days(cube)))
    if native <= 0 or not cadence_mismatch(current, [native]):
        return None
    return max(current, native), native


def cadence_view(cube: xr.Dataset, split: ChronoSplit) -> CadenceView | None:
    """The record at the forecast step (:class:`CadenceView`), or None when the forecast
    step is no cadence change or the resampled record holds no training sample."""
    from insar_raster.forecast.resample import resample_cube

    change = forecast_step_change(cube, split)
    if change is None:
        return None
    step, native = change
    end = split.val_end if split.val_end > split.train_end else split.train_end
    known = cube.isel(time=slice(0, end))
    if known.sizes["time"] < 2:
        return None
    view = resample_cube(known, f"{step:g}D")
    days = times_in_days(view)
    last_train_day = times_in_days(known)[split.train_end - 1]
    # A resampled epoch interpolates its two neighbouring acquisitions: at or before the
    # last training epoch it reads training epochs only.
    train_end = int(np.searchsorted(days, last_train_day, side="right"))
    window, steps = split.window, split.steps
    starts = np.arange(n_samples(len(days), window, steps))
    first_target, last_target = starts + window, starts + window + steps - 1
    train = starts[last_target < train_end]
    val = starts[first_target >= train_end]
    if not len(train):
        return None
    view_split = ChronoSplit(window, steps, len(days), train_end, len(days), train, val, starts[:0])
    return CadenceView(view, view_split, step, native)


def trained_steps(step_days: float, metadata: dict) -> list[float]:
    """The steps (days) a model was trained on: its training epochs' median step
    (``Normalisation.step_days``) and, after a cadence change, the forecast step it also
    trained on (``metadata["cadence"]``)."""
    steps = [float(step_days)]
    cadence = (metadata or {}).get("cadence") or {}
    if cadence.get("step_days"):
        steps.append(float(cadence["step_days"]))
    return steps


def forecast_resampling(step_days: float, trained: list[float]) -> float | None:
    """The step (days) a model forecasts a cube of revisit ``step_days`` at when that is
    :data:`CADENCE_CHANGE` times finer than every step it trained on (``trained``,
    :func:`trained_steps`): its finest; None when the cube's own step will do."""
    if cadence_mismatch(step_days, trained) and step_days < min(trained):
        return float(min(trained))
    return None


def cadence_mismatch(step_days: float, trained: list[float]) -> bool:
    """True when a cube's step is :data:`CADENCE_CHANGE` times finer or coarser than every
    step the model trained on."""
    return all(
        not trained_step / CADENCE_CHANGE < step_days < trained_step * CADENCE_CHANGE for trained_step in trained
    )
