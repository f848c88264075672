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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter, map_coordinates

from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube

SCENES = ("mixed", "bowl", "seasonal")
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

    @property
    def years(self) -> np.ndarray:
        """Time since the first epoch, in years."""
        return (self.times - self.times[0]) / np.timedelta64(1, "D") / 365.25

    def truth_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Noise-free displacement (n, time) in mm at fractional grid positions."""
        def sample(field):
            return map_coordinates(field, [rows, cols], order=1, mode="nearest")

        v, a = sample(self.velocity), sample(self.acceleration)
        amp, phase = sample(self.seasonal_amplitude), sample(self.seasonal_phase)
        t = self.years[None, :]
        return (
            v[:, None] * t
            + 0.5 * a[:, None] * t**2
            + amp[:, None] * (np.sin(2 * np.pi * t + phase[:, None]) - np.sin(phase[:, None]))
        ).astype(np.float32)

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
        for k in range(1, len(self.times)):
            field = gaussian_filter(rng.standard_normal((h, w)), sigma_cells, mode="wrap")
            # RMS (not std) normalisation: a smooth field over a small scene is mostly
            # offset, and that offset must not exceed the nominal amplitude.
            atm[k] = field / (np.sqrt(np.mean(field**2)) + 1e-12) * self.atmosphere_mm
        return atm


def _smooth_random(rng, shape, sigma):
    f = gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return f / (np.abs(f).max() + 1e-12)


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
    scene : {"mixed", "bowl", "seasonal"}
        Which signal dominates.
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

    bowl_mm_yr = {"mixed": 25.0, "bowl": 40.0, "seasonal": 6.0}[scene]
    seasonal_mm = {"mixed": 4.0, "bowl": 1.5, "seasonal": 9.0}[scene]
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
    return Scene(grid_spec, times, land, town_density, velocity, acceleration, amplitude, phase,
                 atmosphere_mm, white_noise_mm, seed)


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
        make_cube(truth.astype(np.float32), sc.times, sc.grid_spec, attrs={**attrs, "title": "noise-free truth"}),
    )


def make_scene(
    n_points: int = 5000,
    shape: tuple[int, int] = (64, 64),
    n_epochs: int = 60,
    interval_days: int = 12,
    scene: str = "mixed",
    seed: int = 0,
    resolution: float = 100.0,
    **kwargs,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Measurement points of a scene (EGMS L2b-like) and its truth cube.

    Points cluster in towns, are sparse in fields and absent on water. Each point's
    series is the truth at its position plus atmosphere (bilinear from the grid) and
    white noise.

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
    # Rejection sampling from the density: towns dense, fields sparse, water empty.
    density = (0.04 + sc.town_density) * sc.land
    density = density / density.max()
    rows, cols = [], []
    while sum(map(len, rows)) < n_points:
        r = rng.uniform(-0.5, h - 0.5, 2 * n_points)
        c = rng.uniform(-0.5, w - 0.5, 2 * n_points)
        d = density[np.clip(np.rint(r).astype(int), 0, h - 1), np.clip(np.rint(c).astype(int), 0, w - 1)]
        keep = rng.random(2 * n_points) < d
        rows.append(r[keep])
        cols.append(c[keep])
    rows = np.concatenate(rows)[:n_points]
    cols = np.concatenate(cols)[:n_points]
    truth = sc.truth_at(rows, cols)
    atm = sc.atmosphere(rng)
    noise = np.stack([map_coordinates(atm[k], [rows, cols], order=1, mode="nearest") for k in range(len(sc.times))], axis=1)
    observed = truth + noise + rng.normal(0, sc.white_noise_mm, truth.shape).astype(np.float32)
    observed[:, 0] = 0.0
    gs = sc.grid_spec
    x = gs.west + (cols + 0.5) * gs.resolution
    y = gs.north - (rows + 0.5) * gs.resolution
    years = sc.years
    points = make_points(
        x, y, observed.astype(np.float32), sc.times, crs=gs.crs,
        pid=np.array([f"SYN{seed:02d}{i:08d}" for i in range(n_points)]),
        extra={"mean_velocity": np.polyfit(years, observed.T, 1)[0].astype(np.float32)} if len(years) > 1 else None,
        attrs={"source": f"insar_raster.synth scene={scene} seed={seed}", "product": "L2b"},
    )
    truth_grid = sc.truth_grid()
    truth_grid[:, ~sc.land] = np.nan
    truth_cube = make_cube(truth_grid, sc.times, gs, attrs={"source": points.attrs["source"], "title": "noise-free truth"})
    return points, truth_cube
