"""Ground-motion processes of the synthetic scenes that no per-pixel curve extrapolates.

Each process is a small, vectorised function of position and time,
``displacement(x, y, t) -> (n, T)`` in mm (negative = subsidence), with ``x``/``y`` the
positions in metres from the scene's upper-left corner (``x`` east, ``y`` south) and
``t`` in years since the first epoch. A scene's truth is the sum of its processes and
the smooth background fields of :mod:`insar_raster.synth`.

Parameter ranges and their physical sources
-------------------------------------------
:class:`Front` -- an advancing subsidence front (longwall mining panel, tunnel-boring or
    dewatering front). Face advance 2-5 km/yr (longwall faces advance 5-15 m/day, i.e.
    2-5 km/yr; TBM drives 10-20 m/day); final subsidence 20-80 mm (what InSAR tracks
    without unwrapping errors; deep or partial extraction and dewatering troughs);
    influence radius ``r = H / tan(beta)`` of 250-600 m (Knothe's influence function,
    depth 300-900 m, tan(beta) 1.5-2.5; the trough edge leads the face by about ``r``,
    so cells start to sink before the face reaches them); panel length 1.5-4 km, width
    300-800 m. A district mines its panels one after the other, side by side.
    The profile is Knothe's: ``-S [Phi(u / r) - Phi((u - p(t)) / r)] [Phi((v + W/2) / r)
    - Phi((v - W/2) / r)]`` with ``u``/``v`` along/across the panel, ``p(t)`` the face
    position and ``Phi`` the standard normal CDF: monotonic in time.
:class:`PumpingBowl` -- aquifer-system compaction under groundwater pumping: a Gaussian
    bowl (radius 0.4-1.5 km) whose rate changes at 1-3 change points in the record
    (pumping regime changes), between -50 and -5 mm/yr, or +2 to +8 mm/yr of elastic
    rebound after pumping stops (Galloway & Burbey 2011, Hydrogeol. J. 19:1459; EGMS
    rates over European aquifers). At least one change point falls in the last 40 % of
    the record, so a velocity fitted over the whole record is wrong at its end.
:class:`Consolidation` -- primary consolidation under a new fill or building:
    ``-S (1 - exp(-(t - t0) / tau))`` after ``t0`` (in the record), S 10-60 mm, tau
    0.2-1.5 yr (soft clays under new loads, land reclamation), on a patch of radius
    60-250 m.
:class:`Collapse` -- a sinkhole or collapse: a step of 5-40 mm at a random date on a
    patch of radius 40-150 m (sudden, unpredictable from the past: no model should win
    there, and none may be blamed for it).
Year-to-year seasonal amplitude (dry and wet years) -- a factor of 0.5-1.6 per
    hydrological year on the annual cycle (clay shrink-swell and thermal dilation scale
    with the year's rainfall and temperature), interpolated between mid-years.
AR(1) atmosphere -- residual tropospheric delay carried from one acquisition to the
    next, correlation ``phi`` 0.5-0.7 per 12 days (seasonal stratification and slowly
    varying water vapour are not removed by EGMS' filtering).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

#: Displacement (mm) from which a front has "reached" a cell (above MP noise).
FRONT_REACH_MM = 2.0


@dataclass(frozen=True)
class Front:
    """One mining panel / advancing front (see the module docstring)."""

    x0: float  # start of the face's centre line (m)
    y0: float
    direction: float  # advance direction (rad, from +x towards +y)
    speed: float  # m/yr
    t_start: float  # yr
    length: float  # m travelled before the face stops
    width: float  # m
    subsidence: float  # mm (final, positive)
    influence: float  # m

    def displacement(self, x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.direction), np.sin(self.direction)
        dx, dy = x - self.x0, y - self.y0
        u = (dx * c + dy * s)[:, None]
        v = (-dx * s + dy * c)[:, None]
        p = np.clip(self.speed * (np.asarray(t)[None, :] - self.t_start), 0.0, self.length)
        r = self.influence
        along = ndtr(u / r) - ndtr((u - p) / r)
        across = ndtr((v + self.width / 2) / r) - ndtr((v - self.width / 2) / r)
        return -self.subsidence * along * across


@dataclass(frozen=True)
class PumpingBowl:
    """Gaussian bowl whose rate (mm/yr) is piecewise constant between change points."""

    x0: float
    y0: float
    radius: float  # m
    change_times: tuple  # yr, increasing
    rates: tuple  # mm/yr, one more than change_times

    def displacement(self, x, y, t):
        t = np.asarray(t, dtype=float)
        bowl = np.exp(-((x - self.x0) ** 2 + (y - self.y0) ** 2) / (2 * self.radius**2))
        edges = np.concatenate([[-np.inf], self.change_times, [np.inf]])
        series = np.zeros_like(t)
        for k, rate in enumerate(self.rates):
            lo = max(edges[k], 0.0)
            series += rate * np.clip(np.minimum(t, edges[k + 1]) - lo, 0.0, None)
        return bowl[:, None] * series[None, :]


@dataclass(frozen=True)
class Consolidation:
    """Settlement ``-S (1 - exp(-(t - t0) / tau))`` of a new fill/building after ``t0``."""

    x0: float
    y0: float
    radius: float
    t0: float
    tau: float
    settlement: float  # mm

    def displacement(self, x, y, t):
        patch = np.exp(-((x - self.x0) ** 2 + (y - self.y0) ** 2) / (2 * self.radius**2))
        dt = np.clip(np.asarray(t, dtype=float) - self.t0, 0.0, None)
        return -self.settlement * patch[:, None] * (1 - np.exp(-dt / self.tau))[None, :]


@dataclass(frozen=True)
class Collapse:
    """A step of ``depth`` mm at ``t0`` on a small patch (sinkhole, collapse)."""

    x0: float
    y0: float
    radius: float
    t0: float
    depth: float

    def displacement(self, x, y, t):
        patch = np.exp(-((x - self.x0) ** 2 + (y - self.y0) ** 2) / (2 * self.radius**2))
        return -self.depth * patch[:, None] * (np.asarray(t, dtype=float) >= self.t0)[None, :]


def mining_districts(
    rng: np.random.Generator, extent: tuple[float, float], duration: float, n_districts: int
) -> list[Front]:
    """Panels mined one after the other, side by side, in ``n_districts`` districts.

    Each district starts between 1 year before the record and 0.3 year into it and keeps
    mining until the record ends, so fronts advance in every part of the record.
    """
    height, width = extent
    fronts = []
    for _ in range(n_districts):
        theta = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(2000.0, 5000.0)
        length = rng.uniform(1500.0, 4000.0)
        panel = rng.uniform(300.0, 800.0)
        influence = rng.uniform(250.0, 600.0)
        subsidence = rng.uniform(20.0, 80.0)
        # District centre inside the scene; the first panel's face starts behind it.
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        c, s = np.cos(theta), np.sin(theta)
        side = rng.choice([-1.0, 1.0])
        t = rng.uniform(-1.0, 0.3)
        k = 0
        while t < duration:
            offset = side * (k - 1) * (panel + 50.0)  # 50 m pillars between panels
            x0 = cx - c * length / 2 - s * offset
            y0 = cy - s * length / 2 + c * offset
            fronts.append(Front(x0, y0, theta, speed, t, length, panel, subsidence * rng.uniform(0.8, 1.2), influence))
            t += length / speed + rng.uniform(0.0, 0.2)
            k += 1
    return fronts


def pumping_bowls(rng, extent, duration, n_bowls: int) -> list[PumpingBowl]:
    """Bowls with 1-3 rate change points, at least one in the last 40 % of the record."""
    height, width = extent
    bowls = []
    for _ in range(n_bowls):
        n_changes = int(rng.integers(1, 4))
        times = np.sort(
            np.concatenate([[rng.uniform(0.6, 0.95) * duration], rng.uniform(0.1, 0.95, n_changes - 1) * duration])
        )
        rates = []
        for _k in range(n_changes + 1):
            rates.append(rng.uniform(2.0, 8.0) if rng.random() < 0.2 else -rng.uniform(5.0, 50.0))
        bowls.append(
            PumpingBowl(
                rng.uniform(0, width), rng.uniform(0, height), rng.uniform(400.0, 1500.0), tuple(times), tuple(rates)
            )
        )
    return bowls


def urban_processes(rng, extent, duration, n_sites: int, town_weight=None) -> list:
    """Consolidating new fills/buildings and collapses; ``town_weight(x, y)`` -> [0, 1]
    (optional) makes sites likelier in towns."""
    height, width = extent
    out = []
    while len(out) < n_sites:
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        if town_weight is not None and rng.random() > 0.2 + 0.8 * town_weight(x, y):
            continue
        if rng.random() < 0.75:
            out.append(
                Consolidation(
                    x,
                    y,
                    rng.uniform(60.0, 250.0),
                    rng.uniform(0.0, 0.95) * duration,
                    rng.uniform(0.2, 1.5),
                    rng.uniform(10.0, 60.0),
                )
            )
        else:
            out.append(
                Collapse(x, y, rng.uniform(40.0, 150.0), rng.uniform(0.05, 0.98) * duration, rng.uniform(5.0, 40.0))
            )
    return out


def yearly_seasonal_factor(rng, duration: float, low: float = 0.5, high: float = 1.6):
    """Factors of the annual amplitude at mid-years (-0.5 .. duration + 1.5): dry/wet years."""
    mids = np.arange(-0.5, duration + 1.5, 1.0)
    return mids, rng.uniform(low, high, len(mids))
