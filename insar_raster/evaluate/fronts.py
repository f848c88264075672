"""The cells a front reaches during the forecast horizon (scenes with advancing fronts).

Truth cubes of :mod:`insar_raster.synth` scenes with fronts carry ``front_reach_days``
(y, x): days from the first epoch until a front has moved the cell by 2 mm (NaN:
never). For a test sample whose last input epoch is at day ``t0`` and whose last target
epoch is at day ``t1``, the cells with ``t0 < reach <= t1`` had not moved (by a front)
when the forecast was made and move during its horizon: only their neighbours' recent
past can tell that they will. Scores on these cells measure what a forecast learned
from space.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Name of the truth variable (see :mod:`insar_raster.synth`).
REACH_VARIABLE = "front_reach_days"


def front_cells(truth: xr.Dataset | None, cube: xr.Dataset, split, part: str = "test") -> np.ndarray | None:
    """Mask (n_samples, steps, H, W) of the cells a front reaches during each sample's horizon.

    ``None`` when the truth has no ``front_reach_days`` or it is not on the cube's grid.
    The reach days count from the truth's first date; they are shifted to the cube's.
    """
    if truth is None or REACH_VARIABLE not in truth:
        return None
    reach = truth[REACH_VARIABLE]
    if reach.shape != (cube.sizes["y"], cube.sizes["x"]) or not (
        np.allclose(truth["x"].values, cube["x"].values) and np.allclose(truth["y"].values, cube["y"].values)
    ):
        return None
    origin = np.asarray(truth["time"].values[0], "datetime64[ns]")
    days = (np.asarray(cube["time"].values, "datetime64[ns]") - origin) / np.timedelta64(1, "D")
    starts = getattr(split, part)
    t0 = days[starts + split.window - 1]
    t1 = days[np.minimum(starts + split.window + split.steps - 1, len(days) - 1)]
    r = np.asarray(reach.values, dtype=np.float64)[None]
    with np.errstate(invalid="ignore"):
        mask = (r > t0[:, None, None]) & (r <= t1[:, None, None])
    return np.broadcast_to(mask[:, None], (len(starts), split.steps, *mask.shape[1:]))
