"""Sliding windows over a cube and the chronological train/validation/test split.

A *sample* ``s`` uses the ``window`` epochs ``[s, s + window)`` as input and the
``steps`` epochs ``[s + window, s + window + steps)`` as target. Every model (deep or
baseline) uses these same samples, so their scores are comparable.

The split is on time only, never random. Epochs are cut into three consecutive
parts (train, validation, test). A sample belongs to the part that holds *all* of its
target epochs; samples whose targets straddle a boundary are dropped. Inputs are always
earlier epochs than targets: a validation sample may read training epochs as its
history (they are the past known at forecast time), but no training target is ever a
validation or test epoch, so nothing leaks backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ChronoSplit:
    """Sample start indices of each part, and the epoch boundaries.

    Attributes
    ----------
    window, steps : int
        Input length and forecast horizon, in epochs.
    n_times : int
        Number of epochs in the cube.
    train_end, val_end : int
        Epoch indices: train targets are ``< train_end``; validation targets are in
        ``[train_end, val_end)``; test targets are ``>= val_end``.
    train, val, test : numpy.ndarray of int
        Sample start indices ``s`` in each part.
    """

    window: int
    steps: int
    n_times: int
    train_end: int
    val_end: int
    train: np.ndarray = field(repr=False)
    val: np.ndarray = field(repr=False)
    test: np.ndarray = field(repr=False)

    def target_indices(self, part: str) -> np.ndarray:
        """Epoch indices of the targets of ``part``, shape (n_samples, steps)."""
        starts = getattr(self, part)
        return starts[:, None] + self.window + np.arange(self.steps)[None, :]


def n_samples(n_times: int, window: int, steps: int) -> int:
    """Number of complete windows in a series of ``n_times`` epochs."""
    return max(0, n_times - window - steps + 1)


def chronological_split(
    n_times: int,
    window: int,
    steps: int,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> ChronoSplit:
    """Split the samples of a cube chronologically.

    Parameters
    ----------
    n_times : int
        Number of epochs.
    window, steps : int
        Input length and forecast horizon (epochs).
    val_fraction, test_fraction : float
        Share of the epochs (not samples) reserved for validation and test; each
        non-zero part holds at least ``steps`` epochs so that one sample fits.

    Raises
    ------
    ValueError
        If the series is too short for one sample in each requested part.
    """
    if window < 1 or steps < 1:
        raise ValueError("window and steps must be at least 1")
    need = window + steps
    if n_times < need:
        raise ValueError(f"{n_times} epochs is fewer than window + steps = {window} + {steps} = {need}")

    def part_len(fraction: float) -> int:
        return 0 if fraction <= 0 else max(steps, int(round(n_times * fraction)))

    n_test, n_val = part_len(test_fraction), part_len(val_fraction)
    val_end = n_times - n_test
    train_end = val_end - n_val
    starts = np.arange(n_samples(n_times, window, steps))
    first_target, last_target = starts + window, starts + window + steps - 1
    train = starts[last_target < train_end]
    val = starts[(first_target >= train_end) & (last_target < val_end)]
    test = starts[first_target >= val_end]
    wanted = {"train": train, "validation": val if n_val else None, "test": test if n_test else None}
    for name, part in wanted.items():
        if part is not None and len(part) == 0:
            raise ValueError(
                f"{n_times} epochs leave no {name} sample for window={window}, steps={steps} "
                f"(val {val_fraction:.0%}, test {test_fraction:.0%}); use a shorter window "
                "or more epochs"
            )
    return ChronoSplit(window, steps, n_times, train_end, val_end, train, val, test)


def evenly_spread(n: int, count: int) -> np.ndarray:
    """Indices of at most ``count`` of ``n`` items, evenly spread (first and last included)."""
    return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))


def lookback_epochs(split: ChronoSplit, window: int, history: int) -> int:
    """Longest lookback (epochs, >= ``window``, <= ``history``) that still leaves half the
    training samples: the past a per-pixel sequence model (DLinear, the learned linear
    prior) reads."""
    half = int(split.train[len(split.train) // 2]) + window if len(split.train) else window
    return int(max(window, min(history, half)))
