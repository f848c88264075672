"""From a cube to network tensors: normalisation, input channels, patches.

Channels per input epoch (``N_CHANNELS``)
-----------------------------------------
0. displacement relative to the last input epoch, divided by the normalisation scale
   (0 where masked);
1. validity (1 = observed, 0 = masked or padding), so that 0 is not read as "no motion";
2. time position of the epoch relative to the last input epoch, in acquisition steps
   (0 for the last, -1, -2... on a regular cube; irregular gaps show as non-integers);
3. - 4. sine and cosine of the day of year (seasonal phase).

Targets are the changes from the last input epoch, divided by the same scale; the loss
ignores target cells that are masked (masked MSE).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from insar_raster.io.cube import CUBE_VARIABLE

N_CHANNELS = 5
_DAY_NS = 86400 * 10**9
# Cubes up to this size are loaded into memory; larger ones are read patch by patch.
IN_MEMORY_BYTES = 2 * 1024**3


def times_in_days(cube: xr.Dataset) -> np.ndarray:
    """Acquisition times as float days since 1970-01-01."""
    t = np.asarray(cube["time"].values, dtype="datetime64[ns]").astype(np.int64)
    return t / _DAY_NS


def acquisition_step_days(cube: xr.Dataset) -> float:
    """The cube's acquisition step: the median gap between epochs, in days."""
    days = times_in_days(cube)
    if len(days) < 2:
        return 1.0
    return float(np.median(np.diff(days)))


@dataclass(frozen=True)
class Normalisation:
    """Statistics of the training epochs, stored in the model file.

    Attributes
    ----------
    scale_mm : float
        Root mean square of the ``steps``-epoch displacement change over the training
        epochs (mm): the unit of the network's inputs and outputs.
    step_days : float
        Median acquisition step of the training epochs (days): the unit of time
        positions and leads.
    """

    scale_mm: float
    step_days: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_training_epochs(cls, cube: xr.Dataset, train_end: int, lag: int) -> "Normalisation":
        """Compute from epochs ``[0, train_end)`` only (no leakage from later epochs).

        Large cubes are subsampled spatially (every k-th row/column) so this stays a
        single cheap pass.
        """
        da = cube[CUBE_VARIABLE].isel(time=slice(0, train_end))
        stride = max(1, int(np.sqrt(da.sizes["y"] * da.sizes["x"] / 250_000)))
        values = np.asarray(da.isel(y=slice(None, None, stride), x=slice(None, None, stride)).values, dtype=np.float64)
        lag = max(1, min(lag, values.shape[0] - 1))
        change = values[lag:] - values[:-lag]
        change = change[np.isfinite(change)]
        scale = float(np.sqrt(np.mean(change**2))) if change.size else 1.0
        if not np.isfinite(scale) or scale <= 1e-6:
            scale = 1.0  # a static scene: keep mm as the unit
        days = times_in_days(cube)[:train_end]
        step = float(np.median(np.diff(days))) if len(days) > 1 else 1.0
        return cls(scale_mm=scale, step_days=step if step > 0 else 1.0)


class CubeReader:
    """Random access to (time, y, x) blocks of the displacement, in memory or lazily.

    Cubes larger than :data:`IN_MEMORY_BYTES` (e.g. opened with dask chunks) are read
    block by block with ``isel``, so training and tiled prediction never load the
    whole cube.
    """

    def __init__(self, cube: xr.Dataset):
        da = cube[CUBE_VARIABLE]
        self.shape = tuple(int(n) for n in da.shape)
        self.days = times_in_days(cube)
        nbytes = np.prod(self.shape) * 4
        self._array = np.asarray(da.values, dtype=np.float32) if nbytes <= IN_MEMORY_BYTES else None
        self._da = da

    def read(self, t0: int, t1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Displacement block [t0:t1, y0:y1, x0:x1] as float32 (mm, NaN masked)."""
        if self._array is not None:
            return self._array[t0:t1, y0:y1, x0:x1]
        block = self._da.isel(time=slice(t0, t1), y=slice(y0, y1), x=slice(x0, x1))
        return np.asarray(block.values, dtype=np.float32)

    def read_epochs(self, epochs: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Block of the given (consecutive or not) epoch indices."""
        epochs = np.asarray(epochs)
        if len(epochs) and np.all(np.diff(epochs) == 1):
            return self.read(int(epochs[0]), int(epochs[-1]) + 1, y0, y1, x0, x1)
        if self._array is not None:
            return self._array[epochs, y0:y1, x0:x1]
        return np.asarray(self._da.isel(time=epochs, y=slice(y0, y1), x=slice(x0, x1)).values, dtype=np.float32)


def build_inputs(block: np.ndarray, input_days: np.ndarray, norm: Normalisation) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs for windows of displacement.

    Parameters
    ----------
    block : ndarray (n, window, h, w)
        Displacement (mm), NaN masked.
    input_days : ndarray (n, window)
        Acquisition times of the input epochs (days).
    norm : Normalisation

    Returns
    -------
    inputs : ndarray (n, window, N_CHANNELS, h, w) float32
    reference : ndarray (n, h, w) float32
        Displacement of the last input epoch (mm, NaN where masked): forecasts are this
        plus the predicted change, hence NaN exactly where it is masked.
    """
    n, window, h, w = block.shape
    reference = block[:, -1]
    relative = (block - reference[:, None]) / np.float32(norm.scale_mm)
    valid = np.isfinite(relative)
    x = np.empty((n, window, N_CHANNELS, h, w), dtype=np.float32)
    x[:, :, 0] = np.where(valid, relative, 0.0)
    x[:, :, 1] = valid
    position = (input_days - input_days[:, -1:]) / norm.step_days
    x[:, :, 2] = position[:, :, None, None]
    phase = 2 * np.pi * (input_days / 365.25)
    x[:, :, 3] = np.sin(phase)[:, :, None, None]
    x[:, :, 4] = np.cos(phase)[:, :, None, None]
    return x, reference


def build_targets(block: np.ndarray, reference: np.ndarray, norm: Normalisation) -> tuple[np.ndarray, np.ndarray]:
    """Normalised change targets (n, steps, h, w) and their validity mask."""
    change = (block - reference[:, None]) / np.float32(norm.scale_mm)
    valid = np.isfinite(change)
    return np.where(valid, change, 0.0).astype(np.float32), valid


def leads_in_steps(target_days: np.ndarray, last_input_days: np.ndarray, norm: Normalisation) -> np.ndarray:
    """Time from the last input epoch to each target epoch, in acquisition steps."""
    return ((target_days - last_input_days[:, None]) / norm.step_days).astype(np.float32)
