"""Synthetic EGMS-like scenes with their noise-free truth.

No real EGMS tile can be downloaded on the build machines, so the demo, tests and
benchmarks use scenes generated here. A scene is a set of smooth fields on a grid:

- a land mask (a curved coastline and a lake: water has no measurement points);
- mean velocity (mm/yr): subsidence bowls (some accelerating) over a gentle regional tilt;
- annual seasonal amplitude (mm) and phase;
- per epoch, spatially correlated "atmospheric" noise (mm) and white noise (mm).

Truth displacement is ``v t + a t^2 / 2 + A [sin(2 pi t + phi) - sin(phi)]`` with ``t`` in
years since the first epoch, so every series starts at 0 mm as EGMS products do.
Everything is deterministic for a given ``seed``.

The scenes ``mixed``, ``bowl`` and ``seasonal`` are only that (each series is exactly
the history fit's functional form). The scenes ``fronts``, ``switching``, ``urban`` and
``realistic`` add motion that no per-pixel curve can extrapolate, each a small function
of (x, y, t) documented with its physical parameter ranges in
:mod:`insar_raster.synth_processes`:

- ``fronts``: mining panels / dewatering fronts advancing at 2-5 km/yr, whose trough
  reaches cells that have not moved yet;
- ``switching``: pumping bowls whose rate changes at change points;
- ``urban``: consolidation of new fills/buildings starting in the record, collapses
  (steps), and a seasonal amplitude that changes from year to year;
- ``realistic``: all of these, with AR(1) (temporally correlated) atmosphere.

Truth cubes of these scenes carry ``front_reach_days`` (y, x): days from the first
epoch to the first epoch where the fronts have moved the cell by
:data:`~insar_raster.synth_processes.FRONT_REACH_MM` (NaN: never), so forecasts can be
scored on the cells a front reaches during the horizon, and ``front_reach_start_days``
(y, x): the start (days from the first epoch) of the panel whose motion reached the cell,
so those cells split into the ones a panel already advancing at forecast time reaches
(its neighbours' past tells) and the ones a panel that starts during the horizon reaches
(nothing in the past moves there yet).

Measurement points (:func:`make_scene`) also behave individually, as real point clouds
do (:class:`MPBehaviour`, on by default): each MP has its own constant offset, its own
seasonal amplitude and its own noise level (2-4 mm). The truth cube is the common ground
motion field only: it holds none of these per-MP parts, so it is what a grid forecast
should recover, while an MP's own future also carries its offset and seasonal amplitude.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter, map_coordinates

from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube
from insar_raster.units import DAYS_PER_YEAR

SCENES = ("mixed", "bowl", "seasonal", "fronts", "switching", "urban", "realistic")
#: Scenes whose truth is exactly the history fit's form (trend, acceleration, annual cycle).
CURVE_SCENES = ("mixed", "bowl", "seasonal")
#: Upper-left corner of generated scenes in EPSG:3035 (near Dublin, as in the paper).
ORIGIN_3035 = (3_180_000.0, 3_470_000.0)


@dataclass
class Scene:
    """Fields of a synthetic scene on ``grid_spec`` (arrays are (y, x))."""

    grid_spec: GridSpec
    times: np.ndarray
    land: np.ndarray
    town_density: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    seasonal_amplitude: np.ndarray
    seasonal_phase: np.ndarray
    atmosphere_mm: float
    white_noise_mm: float
    seed: int
    processes: tuple = ()
    seasonal_years: tuple | None = None  # (mid-years, amplitude factors): dry/wet years
    atmosphere_ar1: float = 0.0  # correlation of the atmosphere per 12 days

    def _positions(self, rows, cols):
        res = self.grid_spec.resolution
        return (np.asarray(cols, float) + 0.5) * res, (np.asarray(rows, float) + 0.5) * res

    def process_truth(self, rows: np.ndarray, cols: np.ndarray, kinds=None) -> np.ndarray:
        """Displacement (n, time) in mm of the scene's processes (all, or of the given
        classes), relative to the first epoch."""
        x, y = self._positions(rows, cols)
        t = self.years
        out = np.zeros((len(x), len(t)))
        for proc in self.processes:
            if kinds is None or isinstance(proc, kinds):
                d = proc.displacement(x, y, t)
                out += d - d[:, :1]
        return out

    @property
    def years(self) -> np.ndarray:
        """Time since the first epoch, in years."""
        return (self.times - self.times[0]) / np.timedelta64(1, "D") / DAYS_PER_YEAR

    def truth_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Noise-free displacement (n, time) in mm at fractional grid positions."""

        def sample(field):
            return map_coordinates(field, [rows, cols], order=1, mode="nearest")

        v, a = sample(self.velocity), sample(self.acceleration)
        amp, phase = sample(self.seasonal_amplitude), sample(self.seasonal_phase)
        t = self.years[None, :]
        if self.seasonal_years is None:
            seasonal = amp[:, None] * (np.sin(2 * np.pi * t + phase[:, None]) - np.sin(phase[:, None]))
        else:  # the amplitude changes from year to year; the series still starts at 0
            amp_t = amp[:, None] * np.interp(self.years, *self.seasonal_years)[None, :]
            seasonal = amp_t * np.sin(2 * np.pi * t + phase[:, None]) - amp_t[:, :1] * np.sin(phase[:, None])
        out = v[:, None] * t + 0.5 * a[:, None] * t**2 + seasonal
        if self.processes:
            out = out + self.process_truth(rows, cols)
        return out.astype(np.float32)

    def front_reach_days(self) -> np.ndarray | None:
        """(y, x) days from the first epoch until the fronts have moved a cell by
        :data:`~insar_raster.synth_processes.FRONT_REACH_MM`; NaN where they never do
        (None: the scene has no front)."""
        from insar_raster.synth_processes import FRONT_REACH_MM, Front

        if not any(isinstance(p, Front) for p in self.processes):
            return None
        h, w = self.grid_spec.shape
        rr, cc = np.mgrid[0:h, 0:w]
        moved = np.abs(self.process_truth(rr.ravel(), cc.ravel(), Front)) >= FRONT_REACH_MM
        days = (self.times - self.times[0]) / np.timedelta64(1, "D")
        first = np.where(moved.any(axis=1), days[np.argmax(moved, axis=1)], np.nan)
        return first.reshape(h, w).astype(np.float32)

    def front_reach_start_days(self) -> np.ndarray | None:
        """(y, x) start (days from the first epoch) of the panel that reached each cell:
        the front whose displacement is largest at the cell's reach epoch
        (:meth:`front_reach_days`); NaN where no front reaches it (None: no front)."""
        from insar_raster.synth_processes import FRONT_REACH_MM, Front

        fronts = [p for p in self.processes if isinstance(p, Front)]
        if not fronts:
            return None
        h, w = self.grid_spec.shape
        rr, cc = np.mgrid[0:h, 0:w]
        rows, cols = rr.ravel(), cc.ravel()
        moved = np.abs(self.process_truth(rows, cols, Front)) >= FRONT_REACH_MM
        reached = moved.any(axis=1)
        epoch = np.argmax(moved, axis=1)
        x, y = self._positions(rows, cols)
        t = self.years
        best = np.zeros(len(rows))
        start = np.full(len(rows), np.nan)
        for front in fronts:
            d = front.displacement(x, y, t)
            at_reach = np.abs(d[np.arange(len(rows)), epoch] - d[:, 0])
            better = reached & (at_reach > best)
            best[better] = at_reach[better]
            start[better] = front.t_start * DAYS_PER_YEAR
        return start.reshape(h, w).astype(np.float32)

    def truth_grid(self) -> np.ndarray:
        """Noise-free displacement (time, y, x) in mm at the cell centres (water included)."""
        h, w = self.grid_spec.shape
        rr, cc = np.mgrid[0:h, 0:w]
        return self.truth_at(rr.ravel().astype(float), cc.ravel().astype(float)).T.reshape(-1, h, w)

    def atmosphere(self, rng: np.random.Generator) -> np.ndarray:
        """Spatially correlated noise (time, y, x) in mm; zero at the first epoch."""
        h, w = self.grid_spec.shape
        sigma_cells = max(1.0, 1500.0 / self.grid_spec.resolution)  # ~1.5 km correlation
        atm = np.empty((len(self.times), h, w), np.float32)
        atm[0] = 0.0
        gaps = np.diff(self.times) / np.timedelta64(12, "D")
        for k in range(1, len(self.times)):
            field = gaussian_filter(rng.standard_normal((h, w)), sigma_cells, mode="wrap")
            # RMS (not std) normalisation: a smooth field over a small scene is mostly
            # offset, and that offset must not exceed the nominal amplitude.
            field = field / (np.sqrt(np.mean(field**2)) + 1e-12) * self.atmosphere_mm
            if self.atmosphere_ar1 > 0 and k > 1:  # AR(1): part of the last delay carries over
                phi = self.atmosphere_ar1 ** gaps[k - 1]
                field = phi * atm[k - 1] + np.sqrt(1 - phi**2) * field
            atm[k] = field
        return atm


def _smooth_random(rng, shape, sigma):
    f = gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return f / (np.abs(f).max() + 1e-12)


def sample_positions(rng, density, n):
    """``n`` MP positions (fractional row, column) drawn by rejection from ``density``.

    ``density`` is a (rows, columns) map of acceptance probabilities in [0, 1]; positions
    are uniform inside each cell (cell centres at whole numbers).
    """
    h, w = density.shape
    rows, cols = [], []
    while sum(map(len, rows)) < n:
        r = rng.uniform(-0.5, h - 0.5, 2 * n)
        c = rng.uniform(-0.5, w - 0.5, 2 * n)
        d = density[np.clip(np.rint(r).astype(int), 0, h - 1), np.clip(np.rint(c).astype(int), 0, w - 1)]
        keep = rng.random(2 * n) < d
        rows.append(r[keep])
        cols.append(c[keep])
    return np.concatenate(rows)[:n], np.concatenate(cols)[:n]


#: First date of a synthetic record; a record that would end after :data:`LATEST_END`
#: starts earlier (fixed dates, so a seed gives the same file on any day).
DEFAULT_START = np.datetime64("2019-01-03", "D")
LATEST_END = np.datetime64("2025-12-31", "D")
#: Never before Sentinel-1A's first operational acquisitions.
EARLIEST_START = np.datetime64("2014-10-03", "D")


def record_start(n_epochs: int, interval_days: int, extra_days: int = 0) -> str:
    """First date of a record of ``n_epochs`` every ``interval_days`` (plus ``extra_days``,
    e.g. a later pass): 2019-01-03, or earlier (not before 2014-10-03) so that it ends by
    2025-12-31. A 300-epoch 12-day record from 2019 would end in 2028, and ``grid`` refuses
    dates after today as not Sentinel-1.

    >>> record_start(100, 12), record_start(300, 12), record_start(900, 12)
    ('2019-01-03', '2016-02-25', '2014-10-03')
    """
    span = np.timedelta64((n_epochs - 1) * interval_days + extra_days, "D")
    return str(max(min(DEFAULT_START, LATEST_END - span), EARLIEST_START))


def build_scene(
    shape: tuple[int, int] = (64, 64),
    n_epochs: int = 60,
    interval_days: int = 12,
    scene: str = "mixed",
    seed: int = 0,
    resolution: float = 100.0,
    start: str = "2019-01-03",
    missing_fraction: float = 0.0,
    atmosphere_mm: float = 1.5,
    white_noise_mm: float = 1.0,
) -> Scene:
    """Generate the fields of a scene.

    Parameters
    ----------
    shape : (int, int)
        Grid size (rows, cols); the extent is ``shape * resolution`` metres.
    n_epochs : int
        Number of acquisitions.
    interval_days : int
        Nominal revisit, days (6 or 12 for Sentinel-1).
    scene : {"mixed", "bowl", "seasonal", "fronts", "switching", "urban", "realistic"}
        Which signal dominates (see the module docstring).
    missing_fraction : float
        Share of acquisitions dropped at random (irregular sampling), never the first.
    """
    if scene not in SCENES:
        raise ValueError(f"scene must be one of {SCENES}, got {scene!r}")
    rng = np.random.default_rng(seed)
    h, w = shape
    grid_spec = GridSpec("EPSG:3035", resolution, ORIGIN_3035[0], ORIGIN_3035[1], w, h)
    times = np.datetime64(start, "D") + np.arange(n_epochs) * np.timedelta64(interval_days, "D")
    if missing_fraction > 0:
        keep = rng.random(n_epochs) >= missing_fraction
        keep[0] = True
        times = times[keep]
    rr, cc = np.mgrid[0:h, 0:w].astype(float)
    # Coastline: a wavy line across one corner; plus an elliptical lake.
    coast = (cc / w + rr / h) + 0.08 * np.sin(6 * rr / h + rng.uniform(0, 6)) > 1.55
    ly, lx = rng.uniform(0.25, 0.55) * h, rng.uniform(0.2, 0.5) * w
    lake = ((rr - ly) / (0.09 * h)) ** 2 + ((cc - lx) / (0.14 * w)) ** 2 < 1
    land = ~(coast | lake)
    # Towns: dense MP clusters.
    towns = np.zeros((h, w))
    for _ in range(max(2, (h * w) // 1500)):
        ty, tx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.05, 0.12) * min(h, w)
        towns += np.exp(-(((rr - ty) ** 2 + (cc - tx) ** 2) / (2 * r**2)))
    town_density = np.clip(towns, 0, 1) * land

    bowl_mm_yr = {
        "mixed": 25.0,
        "bowl": 40.0,
        "seasonal": 6.0,
        "fronts": 8.0,
        "switching": 8.0,
        "urban": 8.0,
        "realistic": 10.0,
    }[scene]
    seasonal_mm = {
        "mixed": 4.0,
        "bowl": 1.5,
        "seasonal": 9.0,
        "fronts": 3.0,
        "switching": 3.0,
        "urban": 4.0,
        "realistic": 4.0,
    }[scene]
    velocity = 2.0 * _smooth_random(rng, shape, min(h, w) / 3)  # regional tilt, mm/yr
    acceleration = np.zeros(shape)
    for k in range(max(2, (h * w) // 1200)):
        by, bx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
        r = rng.uniform(0.04, 0.1) * min(h, w)
        bowl = np.exp(-(((rr - by) ** 2 + (cc - bx) ** 2) / (2 * r**2)))
        velocity -= bowl_mm_yr * rng.uniform(0.5, 1.0) * bowl
        if k % 2 == 0:  # some bowls accelerate: a trend fit alone falls behind
            acceleration -= 0.3 * bowl_mm_yr * bowl
    amplitude = seasonal_mm * (0.5 + 0.5 * (_smooth_random(rng, shape, min(h, w) / 4) + 1) / 2 + town_density)
    phase = np.pi * (0.2 + 0.3 * _smooth_random(rng, shape, min(h, w) / 4))
    processes, seasonal_years, ar1 = _scene_processes(scene, seed, grid_spec, times, town_density)
    return Scene(
        grid_spec,
        times,
        land,
        town_density,
        velocity,
        acceleration,
        amplitude,
        phase,
        atmosphere_mm,
        white_noise_mm,
        seed,
        processes,
        seasonal_years,
        ar1,
    )


def _scene_processes(scene, seed, grid_spec, times, town_density):
    """Processes of the non-curve scenes (own generator: the curve scenes are unchanged)."""
    from insar_raster import synth_processes as sp

    if scene in CURVE_SCENES:
        return (), None, 0.0
    rng = np.random.default_rng([seed, 12])
    h, w = grid_spec.shape
    extent = (h * grid_spec.resolution, w * grid_spec.resolution)
    area_km2 = extent[0] * extent[1] / 1e6
    duration = float((times[-1] - times[0]) / np.timedelta64(1, "D") / 365.25) if len(times) > 1 else 1.0
    res = grid_spec.resolution

    def town(x, y):
        return float(town_density[min(h - 1, int(y / res)), min(w - 1, int(x / res))])

    procs, seasonal_years, ar1 = [], None, 0.0
    if scene in ("fronts", "realistic"):
        n = max(1, round(area_km2 / (30.0 if scene == "fronts" else 60.0)))
        procs += sp.mining_districts(rng, extent, duration, n)
    if scene in ("switching", "realistic"):
        n = max(2 if scene == "switching" else 1, round(area_km2 / (10.0 if scene == "switching" else 25.0)))
        procs += sp.pumping_bowls(rng, extent, duration, n)
    if scene in ("urban", "realistic"):
        n = max(4, round(area_km2 * (0.6 if scene == "urban" else 0.3)))
        procs += sp.urban_processes(rng, extent, duration, n, town)
        seasonal_years = sp.yearly_seasonal_factor(rng, duration)
    if scene == "realistic":
        ar1 = 0.6
    return tuple(procs), seasonal_years, ar1


def make_scene_cube(
    shape: tuple[int, int] = (64, 64),
    n_epochs: int = 60,
    interval_days: int = 12,
    scene: str = "mixed",
    seed: int = 0,
    resolution: float = 100.0,
    **kwargs,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Observed and truth cubes of a scene, directly on the grid (no points).

    Returns
    -------
    observed_cube, truth_cube : xarray.Dataset
        Cube layout of :mod:`insar_raster.io.cube`; NaN over water in both. ``observed``
        is truth + atmosphere + white noise (first epoch exactly 0).
    """
    sc = build_scene(shape, n_epochs, interval_days, scene, seed, resolution, **kwargs)
    rng = np.random.default_rng(seed + 1)
    truth = sc.truth_grid()
    noise = sc.atmosphere(rng) + rng.normal(0, sc.white_noise_mm, truth.shape).astype(np.float32)
    noise[0] = 0.0
    observed = truth + noise
    truth[:, ~sc.land] = np.nan
    observed[:, ~sc.land] = np.nan
    attrs = {"source": f"insar_raster.synth scene={scene} seed={seed}", "method": "synthetic"}
    return (
        make_cube(observed.astype(np.float32), sc.times, sc.grid_spec, attrs=attrs),
        _truth_cube(sc, truth, {**attrs, "title": "noise-free truth"}),
    )


def _truth_cube(sc: Scene, truth: np.ndarray, attrs: dict) -> xr.Dataset:
    """Truth cube (NaN over water), with ``front_reach_days`` when the scene has fronts."""
    reach = sc.front_reach_days()
    extra = None
    if reach is not None:
        reach[~sc.land] = np.nan
        start = sc.front_reach_start_days()
        start[~sc.land] = np.nan
        extra = {"front_reach_days": reach, "front_reach_start_days": start}
    cube = make_cube(truth.astype(np.float32), sc.times, sc.grid_spec, extra=extra, attrs=attrs)
    if reach is not None:
        cube["front_reach_days"].attrs.update(
            units="days", long_name="days from the first epoch until a front has moved the cell by 2 mm (NaN: never)"
        )
        cube["front_reach_start_days"].attrs.update(
            units="days", long_name="start of the panel that reached the cell, days from the first epoch (NaN: never)"
        )
    return cube


@dataclass(frozen=True)
class MPBehaviour:
    """Per-MP individual behaviour added to each point's series by :func:`make_scene`.

    Real MPs are not samples of one smooth field: a point on a roof, a pier or a lamp
    post moves with the ground plus its own thermal dilation, and each is measured with
    its own noise. The deviations, per MP ``i`` with ``t`` in years since the first epoch:

    - ``offset_i`` (mm, normal with std ``offset_mm``) added to every epoch but the
      first: EGMS references each series to its first epoch, so that epoch's error
      (and any reference or unwrapping error) shifts the whole later series;
    - an own seasonal amplitude: the local annual term of the scene is scaled by
      ``g_i``, uniform in ``seasonal_scale`` (thermal dilation of structures typically
      adds 1-5 mm a year, more on steel and tall buildings);
    - white noise (mm) with the MP's own standard deviation ``sigma_i``, uniform in
      ``noise_mm`` (EGMS L2b MPs have ``rmse`` of about 2-4 mm); it replaces the scene's
      ``white_noise_mm`` at points.

    Parameters
    ----------
    offset_mm : float
        Standard deviation of the per-MP offset (mm).
    seasonal_scale : (float, float)
        Range of the factor on the local seasonal amplitude (1 = the field's own).
    noise_mm : (float, float)
        Range of the per-MP noise standard deviation (mm).
    """

    offset_mm: float = 3.0
    seasonal_scale: tuple[float, float] = (0.3, 1.7)
    noise_mm: tuple[float, float] = (2.0, 4.0)

    def deviations(self, scene: Scene, rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per-MP deviation from the common motion, (n, time) mm, 0 at the first epoch."""
        n, t = len(rows), scene.years[None, :]
        amp = map_coordinates(scene.seasonal_amplitude, [rows, cols], order=1, mode="nearest")[:, None]
        phase = map_coordinates(scene.seasonal_phase, [rows, cols], order=1, mode="nearest")[:, None]
        scale = rng.uniform(*self.seasonal_scale, n)[:, None]
        offset = rng.normal(0.0, self.offset_mm, n)[:, None]
        sigma = rng.uniform(*self.noise_mm, n)[:, None]
        out = (scale - 1.0) * amp * (np.sin(2 * np.pi * t + phase) - np.sin(phase))
        out = out + offset + sigma * rng.standard_normal((n, t.shape[1]))
        out[:, 0] = 0.0
        return out.astype(np.float32)


def make_scene(
    n_points: int = 5000,
    shape: tuple[int, int] = (64, 64),
    n_epochs: int = 60,
    interval_days: int = 12,
    scene: str = "mixed",
    seed: int = 0,
    resolution: float = 100.0,
    mp_behaviour: MPBehaviour | None = MPBehaviour(),
    **kwargs,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Measurement points of a scene (EGMS L2b-like) and its truth cube.

    Points cluster in towns, are sparse in fields and absent on water. Each point's
    series is the truth at its position plus atmosphere (bilinear from the grid), plus
    the MP's individual behaviour (``mp_behaviour``: own offset, seasonal amplitude and
    2-4 mm noise; see :class:`MPBehaviour`), or with ``mp_behaviour=None`` plain white
    noise of the scene's ``white_noise_mm``. The truth cube never includes the per-MP
    parts (it is the common motion field).

    Returns
    -------
    points : xarray.Dataset
        Points layout of :mod:`insar_raster.io.points` (EPSG:3035 metres).
    truth_cube : xarray.Dataset
        Noise-free cube on the scene grid, NaN over water.
    """
    from insar_raster.io.points import make_points

    sc = build_scene(shape, n_epochs, interval_days, scene, seed, resolution, **kwargs)
    rng = np.random.default_rng(seed + 2)
    h, w = shape
    # Towns dense, fields sparse, water empty.
    density = (0.04 + sc.town_density) * sc.land
    rows, cols = sample_positions(rng, density / density.max(), n_points)
    truth = sc.truth_at(rows, cols)
    atm = sc.atmosphere(rng)
    noise = np.stack(
        [map_coordinates(atm[k], [rows, cols], order=1, mode="nearest") for k in range(len(sc.times))], axis=1
    )
    if mp_behaviour is None:
        observed = truth + noise + rng.normal(0, sc.white_noise_mm, truth.shape).astype(np.float32)
    else:  # own generator: the positions and atmosphere stay those of mp_behaviour=None
        observed = truth + noise + mp_behaviour.deviations(sc, rows, cols, np.random.default_rng(seed + 3))
    observed[:, 0] = 0.0
    gs = sc.grid_spec
    x = gs.west + (cols + 0.5) * gs.resolution
    y = gs.north - (rows + 0.5) * gs.resolution
    years = sc.years
    points = make_points(
        x,
        y,
        observed.astype(np.float32),
        sc.times,
        crs=gs.crs,
        pid=np.array([f"SYN{seed:02d}{i:08d}" for i in range(n_points)]),
        extra={"mean_velocity": np.polyfit(years, observed.T, 1)[0].astype(np.float32)} if len(years) > 1 else None,
        attrs={
            "source": f"insar_raster.synth scene={scene} seed={seed}",
            "product": "L2b",
            "mp_behaviour": "none" if mp_behaviour is None else repr(mp_behaviour),
        },
    )
    truth_grid = sc.truth_grid()
    truth_grid[:, ~sc.land] = np.nan
    truth_cube = _truth_cube(
        sc, truth_grid, {"source": points.attrs["source"], "title": "noise-free truth (common motion, no per-MP parts)"}
    )
    return points, truth_cube
