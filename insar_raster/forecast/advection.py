"""Advection of the recent motion: where a moving front will be next (a spatial prior).

An advancing front (mining panel, tunnel-boring or dewatering front; see
:mod:`insar_raster.synth_processes`) is a travelling wave: its trough keeps its shape and
moves at the face's speed ``V`` (2-5 km/yr), so the change a cell will see over the next
``tau`` epochs is the change its upstream neighbour at ``x - V tau`` saw over the last
``tau`` epochs. A cell the trough has not reached yet has no motion of its own to
extrapolate: only its neighbours' recent past says when it starts to sink. No per-pixel
fit can forecast it, and a small network trained mostly on quiet cells rarely learns to
shift patterns by the right amount, so this module computes the shift explicitly, in
the spirit of nowcasting (optical flow + semi-Lagrangian extrapolation, as in pysteps):

1. From the input window only, the changes over the last ``k`` epochs,
   ``A = d(t0) - d(t0 - k)``, and over the ``k`` before, ``B = d(t0 - k) - d(t0 - 2k)``
   (``k = min(steps, (window - 1) // 2)``; each epoch smoothed with a 1-cell Gaussian).
2. Per cell, the integer displacement ``s`` (at most ``max_shift`` cells in each
   direction) that best maps ``B`` onto ``A`` in a Gaussian neighbourhood (block
   matching: ``A(x) ~ B(x - s)``), with a small penalty on ``|s|`` so that where nothing
   moves (or only noise does) the shift stays 0. Then ``V = s / k`` cells per epoch.
3. The forecast change at lead ``tau`` epochs: ``d(t0) - d(t0 - tau)`` taken at
   ``x - V tau`` (bilinear). In moving fronts this carries the face's recent motion
   ahead of it; where ``V = 0`` it is the change of the last ``tau`` epochs, i.e. a
   noisy local-trend guess that the network learns to ignore away from fronts.

The result is an extra input of the ``convlstm``/``cnn``/``tau`` decoders (model
hyper-parameter ``advection``, the largest shift searched, in cells; 0 = off), next to
the history prior; the network learns where to trust which. It reads only the input
window, so it adds no history requirement and never reads a target epoch.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

#: Fastest front the shift search covers (m/yr): longwall faces and TBM drives advance
#: 2-5 km/yr (see :mod:`insar_raster.synth_processes`); a margin for faster dewatering fronts.
MAX_FRONT_SPEED_M_PER_YR = 6000.0
#: Upper bound on the search radius (cells): cost grows with its square. Grids finer
#: than ~100 m see fast fronts only partly.
MAX_SHIFT_CELLS = 8
#: Gaussian (cells) of the per-epoch smoothing and of the block-matching neighbourhood.
SMOOTH_CELLS = 1.0
MATCH_CELLS = 3.0
#: Penalties of a shift, relative to the noise variance of the change maps (from their
#: median square over the block, where most cells hold no front): a fixed one for any shift, since the best of the ~100 shifts always fits the
#: noise a little better than no shift, and a small one per cell^2 that prefers the
#: shortest of equally good shifts. A shift must explain a pattern, not the noise.
SHIFT_PENALTY = 3.0
SHIFT_PENALTY_PER_CELL2 = 0.02


def shift_cells(resolution_m: float, step_days: float, steps: int, window: int) -> int:
    """Search radius (cells) covering :data:`MAX_FRONT_SPEED_M_PER_YR` over ``k`` epochs."""
    k = span_epochs(steps, window)
    if k < 1 or not resolution_m > 0:
        return 0
    cells = MAX_FRONT_SPEED_M_PER_YR * k * step_days / 365.25 / resolution_m
    return int(max(1, min(MAX_SHIFT_CELLS, math.ceil(cells))))


def span_epochs(steps: int, window: int) -> int:
    """Epochs ``k`` spanned by each of the two matched change maps (needs ``2k + 2`` epochs)."""
    return int(max(0, min(int(steps), (int(window) - 2) // 2)))


def _smooth(values: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian smoothing of (n, h, w) over the valid cells only."""
    s = (0.0, sigma, sigma)
    num = gaussian_filter(np.where(valid, values, 0.0), s, mode="nearest")
    den = gaussian_filter(valid.astype(np.float64), s, mode="nearest")
    return num / np.maximum(den, 1e-6)


def advected_change(
    block: np.ndarray, input_days: np.ndarray, target_days: np.ndarray, step_days: float, steps: int, max_shift: int
) -> tuple[np.ndarray, np.ndarray]:
    """Forecast changes from the last input epoch by advecting the recent motion.

    Parameters
    ----------
    block : ndarray (n, window, h, w)
        Displacement (mm) of the input windows, NaN masked.
    input_days : ndarray (n, window)
        Their dates (days).
    target_days : ndarray (n, steps)
        Dates of the epochs to forecast (days).
    step_days : float
        Acquisition step (days): leads are counted in these steps.
    steps : int
        Forecast horizon of the model (sets the matched span ``k``).
    max_shift : int
        Largest displacement searched per span (cells).

    Returns
    -------
    change : ndarray (n, len(target_days[0]), h, w) float32
        Forecast change (mm) from the last input epoch; 0 where the last epoch is masked.
    velocity : ndarray (n, 2, h, w) float32
        Pattern velocity (rows, columns) in cells per acquisition step.
    """
    n, window, h, w = block.shape
    k = span_epochs(steps, window)
    n_out = target_days.shape[1]
    change = np.zeros((n, n_out, h, w), dtype=np.float32)
    velocity = np.zeros((n, 2, h, w), dtype=np.float32)
    if k < 1 or max_shift < 1:
        return change, velocity
    values = block.astype(np.float64)
    valid = np.isfinite(values[:, -1])
    levels = {}

    def level(j):  # epoch t0 - j, smoothed
        if j not in levels:
            e = values[:, window - 1 - j]
            levels[j] = _smooth(np.where(np.isfinite(e), e, values[:, -1]), valid, SMOOTH_CELLS)
        return levels[j]

    a = level(0) - level(k)
    b = level(k + 1) - level(2 * k + 1)  # no epoch shared with a: independent noise
    # Noise variance of a: the median of a^2 over the block (most cells hold no front)
    # over that of a chi-square with one degree of freedom (0.455).
    noise = np.median(a.reshape(n, -1) ** 2, axis=1)[:, None, None] / 0.455
    padded = np.pad(b, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)), mode="edge")
    best = np.full((n, h, w), np.inf)
    shift = np.zeros((2, n, h, w))
    for sy in range(-max_shift, max_shift + 1):
        for sx in range(-max_shift, max_shift + 1):
            moved = padded[:, max_shift - sy : max_shift - sy + h, max_shift - sx : max_shift - sx + w]
            cost = gaussian_filter((a - moved) ** 2, (0.0, MATCH_CELLS, MATCH_CELLS), mode="nearest")
            if sy or sx:
                cost += noise * (SHIFT_PENALTY + SHIFT_PENALTY_PER_CELL2 * (sy * sy + sx * sx))
            better = cost < best
            best = np.where(better, cost, best)
            shift[0][better], shift[1][better] = sy, sx
    vy, vx = shift[0] / k, shift[1] / k
    velocity[:, 0], velocity[:, 1] = vy, vx
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    leads = (target_days - input_days[:, -1:]) / step_days
    for i in range(n):
        for step in range(n_out):
            tau = float(leads[i, step])
            j = int(np.clip(round(tau), 1, window - 1))
            source = level(0)[i] - level(j)[i]
            change[i, step] = map_coordinates(source, [rows - vy[i] * tau, cols - vx[i] * tau], order=1, mode="nearest")
    change[~np.broadcast_to(valid[:, None], change.shape)] = 0.0
    return change, velocity
