"""The cells a front reaches during the forecast horizon (scenes with advancing fronts).

Truth cubes of :mod:`insar_raster.synth` scenes with fronts carry ``front_reach_days``
(y, x): days from the first epoch until a front has moved the cell by 2 mm (NaN:
never). For a test sample whose last input epoch is at day ``t0`` and whose last target
epoch is at day ``t1``, the cells with ``t0 < reach <= t1`` had not moved (by a front)
when the forecast was made and move during its horizon: only their neighbours' recent
past can tell that they will. Scores on these cells measure what a forecast learned
from space.

With ``front_reach_start_days`` (the start of the panel that reached the cell) the
cells split further: ``panels="started"``, reached by a panel already advancing at the
forecast time (its face's recent motion upstream tells when the cell starts to sink),
and ``panels="new"``, reached by a panel that starts during the horizon (nothing in the
past moves there yet: like a collapse, no forecast can be blamed for missing it).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Name of the truth variable (see :mod:`insar_raster.synth`).
REACH_VARIABLE = "front_reach_days"
START_VARIABLE = "front_reach_start_days"
PANELS = ("all", "started", "new")


def front_cells(
    truth: xr.Dataset | None, cube: xr.Dataset, split, part: str = "test", panels: str = "all"
) -> np.ndarray | None:
    """Mask (n_samples, steps, H, W) of the cells a front reaches during each sample's horizon.

    ``panels``: ``"all"``, or only the cells reached by a panel that had ``"started"`` by
    the last input epoch, or by one that starts later (``"new"``). ``None`` when the
    truth has no ``front_reach_days`` (or, for a split by panels, no
    ``front_reach_start_days``) or it is not on the cube's grid. The days count from the
    truth's first date; they are shifted to the cube's.
    """
    if panels not in PANELS:
        raise ValueError(f"panels must be one of {PANELS}, got {panels!r}")
    if truth is None or REACH_VARIABLE not in truth or (panels != "all" and START_VARIABLE not in truth):
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
        if panels != "all":
            started = np.asarray(truth[START_VARIABLE].values, dtype=np.float64)[None] <= t0[:, None, None]
            mask &= started if panels == "started" else ~started
    return np.broadcast_to(mask[:, None], (len(starts), split.steps, *mask.shape[1:]))
