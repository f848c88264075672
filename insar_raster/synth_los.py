"""Synthetic ascending and descending EGMS L2b bursts from a known 3-D motion field.

The scene's vertical motion is a scene of :mod:`insar_raster.synth` (default
``mixed``: subsidence bowls, tilt, seasonal motion); east-west motion is a second, independent scene scaled
by ``east_scale``; north-south motion is ``north_scale`` times a third (zero by default,
as the EGMS decomposition assumes). Each geometry gets its own MPs, its own acquisition
dates (Sentinel-1 passes on different days), its own atmosphere and white noise, and
per-MP line-of-sight vectors as EGMS defines them: the unit vector from the ground to
the satellite,

    ``(los_east, los_north, los_up) = (-cos(a) sin(i), sin(a) sin(i), cos(i))``

for track angle (heading) ``a`` and incidence ``i`` (Sentinel-1 looks right of its
track). Ascending: ``a`` about -9 deg, so the satellite is west of the ground
(``los_east < 0``); descending: ``a`` about 191 deg (``los_east > 0``). Incidence grows
from 30 deg in near range to 45 deg in far range across the burst. Observed LOS
displacement is ``e le + n ln + u lu`` plus noise, positive towards the satellite.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter, map_coordinates

from insar_raster.io.cube import make_cube
from insar_raster.synth import build_scene, sample_positions

#: (track, track angle deg, first acquisition offset in days) of the two generated geometries.
GEOMETRIES = {"ascending": (15, -9.2, 0), "descending": (139, 190.8, 5)}
NEAR_INCIDENCE, FAR_INCIDENCE = 30.0, 45.0


def los_vector(track_angle, incidence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EGMS LOS unit vector (east, north, up), ground to satellite, of a right-looking SAR.

    Parameters
    ----------
    track_angle : array-like
        Heading of the satellite track, deg clockwise from north.
    incidence : array-like
        Incidence angle at the ground, deg from the vertical.
    """
    a, i = np.deg2rad(np.asarray(track_angle, float)), np.deg2rad(np.asarray(incidence, float))
    return -np.cos(a) * np.sin(i), np.sin(a) * np.sin(i), np.cos(i)


def make_los_scene(
    n_points: int = 4000,
    shape: tuple[int, int] = (48, 48),
    n_epochs: int = 60,
    interval_days: int = 12,
    seed: int = 0,
    resolution: float = 100.0,
    east_scale: float = 0.6,
    north_scale: float = 0.0,
    atmosphere_mm: float = 1.5,
    white_noise_mm: float = 1.0,
    start: str = "2019-01-03",
    step_days: int = 6,
    scene: str = "mixed",
):
    """Ascending and descending L2b points of one known 3-D motion field, and its truth.

    Parameters
    ----------
    n_points : int
        MPs per geometry.
    shape : (int, int)
        Scene size in cells (rows, cols) of ``resolution`` metres.
    n_epochs, interval_days : int
        Acquisitions per geometry and revisit (days); the descending pass starts 5 days
        after the ascending one.
    east_scale, north_scale : float
        East-west and north-south motion relative to the vertical scene's amplitude.
    atmosphere_mm, white_noise_mm : float
        Noise of each geometry (mm); 0 and 0 give noise-free LOS series.
    step_days : int
        Time step of the truth cube (the decomposition's output grid).
    scene : str
        Scene of the vertical motion (:data:`insar_raster.synth.SCENES`); east-west and
        north-south are ``"mixed"`` scenes of other seeds.

    Returns
    -------
    ascending, descending : xarray.Dataset
        Points layout (:mod:`insar_raster.io.points`) in EPSG:3035 with ``los_east``,
        ``los_north``, ``los_up``, ``incidence_angle``, ``track_angle`` and the geometry
        attrs (``product_level`` L2b, ``track``, ``pass_direction``).
    truth : xarray.Dataset
        ``vertical``, ``east_west`` and ``north_south`` (time, y, x) mm at the cell
        centres every ``step_days`` from the first acquisition, relative to the first
        date on which both geometries have data; NaN over water.
    """
    from insar_raster.io.points import make_points

    days = n_epochs * interval_days + max(off for *_, off in GEOMETRIES.values()) + 1
    fields = [
        build_scene(
            shape,
            days,
            1,
            scene if k == 0 else "mixed",
            seed + k,
            resolution,
            start=start,
            atmosphere_mm=atmosphere_mm,
            white_noise_mm=white_noise_mm,
        )
        for k in range(3)
    ]
    vertical, east, north = fields
    scales = (1.0, east_scale, north_scale)
    spec = vertical.grid_spec
    h, w = shape
    density = (0.04 + vertical.town_density) * vertical.land
    density = density / density.max()
    day0 = vertical.times[0]
    out = {}
    for k, (direction, (track, heading, offset)) in enumerate(GEOMETRIES.items()):
        rng = np.random.default_rng([seed, 13, k])
        rows, cols = sample_positions(rng, density, n_points)
        idx = offset + np.arange(n_epochs) * interval_days
        # Incidence grows with range: the satellite is west of an ascending burst (far range east).
        across = cols / max(w - 1, 1)
        incidence = NEAR_INCIDENCE + (FAR_INCIDENCE - NEAR_INCIDENCE) * (
            across if direction == "ascending" else 1 - across
        )
        track_angle = heading + 0.4 * (rows / max(h - 1, 1) - 0.5)
        le, ln, lu = los_vector(track_angle, incidence)
        motion = [s * f.truth_at(rows, cols)[:, idx] if s else 0.0 for f, s in zip(fields, scales)]
        los = le[:, None] * motion[1] + ln[:, None] * motion[2] + lu[:, None] * motion[0]
        los = los - los[:, :1]
        if atmosphere_mm > 0:
            sigma = max(1.0, 1500.0 / resolution)
            atm = np.empty((len(idx), len(rows)), np.float32)
            for j in range(len(idx)):  # one smooth field per acquisition (a loop over epochs)
                f = gaussian_filter(rng.standard_normal((h, w)), sigma, mode="wrap")
                f = f / (np.sqrt(np.mean(f**2)) + 1e-12) * atmosphere_mm
                atm[j] = map_coordinates(f, [rows, cols], order=1, mode="nearest")
            los = los + (atm - atm[:1]).T
        if white_noise_mm > 0:
            noise = rng.normal(0, white_noise_mm, los.shape)
            los = los + noise - noise[:, :1]
        x = spec.west + (cols + 0.5) * resolution
        y = spec.north - (rows + 0.5) * resolution
        times = day0 + idx.astype("timedelta64[D]")
        geom = {"los_east": le, "los_north": ln, "los_up": lu, "incidence_angle": incidence, "track_angle": track_angle}
        out[direction] = make_points(
            x,
            y,
            los.astype(np.float32),
            times,
            crs=spec.crs,
            pid=np.array([f"{'AD'[k]}{seed:02d}{i:07d}" for i in range(n_points)]),
            extra={name: v.astype(np.float32) for name, v in geom.items()},
            attrs={
                "source": f"insar_raster.synth_los seed={seed} {direction}",
                "product": "EGMS L2",
                "product_level": "L2b",
                "track": track,
                "pass_direction": direction,
            },
        )
    # Truth on the step_days grid over the dates both geometries cover.
    first = max(out[d].time.values[0] for d in out).astype("datetime64[D]")
    last = min(out[d].time.values[-1] for d in out).astype("datetime64[D]")
    grid_first = day0 + np.timedelta64(0, "D")
    grid = grid_first + np.arange(0, days, step_days).astype("timedelta64[D]")
    grid = grid[(grid >= first) & (grid <= last)]
    gidx = ((grid - day0) / np.timedelta64(1, "D")).astype(int)
    data = {}
    for name, f, s in zip(("vertical", "east_west", "north_south"), fields, scales):
        cube = s * f.truth_grid()[gidx] if s else np.zeros((len(gidx), h, w), np.float32)
        cube = cube - cube[:1]
        cube[:, ~vertical.land] = np.nan
        data[name] = cube.astype(np.float32)
    truth = make_cube(
        data["vertical"],
        grid,
        spec,
        attrs={"source": f"insar_raster.synth_los seed={seed}", "title": "noise-free 3-D motion"},
    )
    truth = truth.rename({"displacement": "vertical"})
    for name in ("east_west", "north_south"):
        truth[name] = (("time", "y", "x"), data[name])
        truth[name].attrs.update(units="mm", grid_mapping="spatial_ref")
    return out["ascending"], out["descending"], truth


def synthetic_file_name(points: xr.Dataset, burst: int = 1, swath: int = 2) -> str:
    """The EGMS L2b zip name of a synthetic geometry (release from its first and last year)."""
    years = points.time.values.astype("datetime64[Y]").astype(int) + 1970
    return f"EGMS_L2b_{int(points.attrs['track']):03d}_{burst:04d}_IW{swath}_VV_{years[0]}_{years[-1]}_1.zip"


def write_los_scene(folder, ascending, descending, truth=None, overwrite: bool = False) -> list:
    """Write both geometries as EGMS L2b zips (EGMS names, one .csv + one .xml each) and
    the truth as ``truth.nc`` into ``folder``; returns the paths written."""
    import tempfile
    from pathlib import Path

    from insar_raster.gis.write import write_cube
    from insar_raster.io.atomic import check_output_path
    from insar_raster.io.egms import write_zip
    from insar_raster.io.points import write_points

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    targets = [(pts, folder / synthetic_file_name(pts, burst=100 + k)) for k, pts in enumerate((ascending, descending))]
    for _, path in targets:
        check_output_path(path, overwrite)
    if truth is not None:
        check_output_path(folder / "truth.nc", overwrite)
    written = []
    with tempfile.TemporaryDirectory(dir=folder, prefix=".synth-") as tmp:
        for pts, path in targets:
            csv = write_points(pts, Path(tmp) / f"{path.stem}.csv", layout="L2b")
            written.append(write_zip(csv, path, overwrite=overwrite))
    if truth is not None:
        written.append(write_cube(truth, folder / "truth.nc", overwrite=overwrite))
    return written
