"""Fast synthetic EGMS L2b-like CSVs for benchmarks (vectorised; pyarrow writes the text).

Points are uniform over a square (EPSG:3035, near Dublin) minus a 6 x 4 km lake; each series
is a smooth velocity field times time plus a seasonal term and white noise, rounded to
0.1 mm as EGMS ships them. Rows are written in random spatial order, as a worst case
for any reader that hoped for sorted input.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

WEST, SOUTH = 3_150_000.0, 3_350_000.0


def extent_for(n_points: int, density_per_km2: float = 100.0) -> tuple[float, float]:
    """Square side (m) that gives ``density_per_km2`` MPs (EGMS L2b towns: ~100/km2)."""
    side_km = np.sqrt(n_points / density_per_km2)
    return side_km * 1000.0, side_km * 1000.0


def write_synthetic_csv(
    path, n_points: int, n_epochs: int, seed: int = 0, batch: int = 100_000, density_per_km2: float = 100.0
) -> Path:
    """Write an EGMS L2b-like CSV with ``n_points`` rows and ``n_epochs`` date columns."""
    rng = np.random.default_rng(seed)
    width, height = extent_for(n_points, density_per_km2)
    dates = np.datetime64("2018-01-03") + np.arange(n_epochs) * np.timedelta64(6, "D")
    names = [str(d).replace("-", "") for d in dates]
    years = ((dates - dates[0]) / np.timedelta64(1, "D") / 365.25).astype(np.float32)
    path = Path(path)
    t0 = time.perf_counter()
    written = 0
    with pacsv.CSVWriter(path, schema=_schema(names), write_options=pacsv.WriteOptions(quoting_style="none")) as w:
        while written < n_points:
            n = min(batch, n_points - written)
            x = WEST + rng.uniform(0, width, 2 * n)
            y = SOUTH + rng.uniform(0, height, 2 * n)
            # A 6 km x 4 km lake, the same at every size: water gaps do not grow with the
            # scene (a gap as wide as the scene would need halos as wide as the gap).
            lake = ((x - WEST - 0.6 * width) / 3000.0) ** 2 + ((y - SOUTH - 0.4 * height) / 2000.0) ** 2 < 1
            x, y = x[~lake][:n], y[~lake][:n]
            n = len(x)
            velocity = (
                -8 * np.exp(-(((x - WEST - 0.3 * width) ** 2 + (y - SOUTH - 0.6 * height) ** 2) / (0.1 * width) ** 2))
                + 2 * np.sin(x / 7000.0)
            ).astype(np.float32)
            values = velocity[:, None] * years[None, :] + 3 * np.sin(2 * np.pi * years)[None, :]
            values += rng.normal(0, 1.5, (n, n_epochs)).astype(np.float32)
            values -= values[:, :1]
            values = np.round(values, 1).astype(np.float32)
            cols = [
                pa.array(np.char.add("SYN", np.arange(written, written + n).astype(str))),
                pa.array(np.round(x, 1)),
                pa.array(np.round(y, 1)),
                pa.array(np.round(velocity, 2)),
                *[pa.array(values[:, j]) for j in range(n_epochs)],
            ]
            w.write_table(pa.Table.from_arrays(cols, schema=_schema(names)))
            written += n
    print(
        f"wrote {path.name}: {n_points} MPs x {n_epochs} epochs, {path.stat().st_size / 2**30:.2f} GiB "
        f"in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )
    return path


def _schema(names):
    return pa.schema(
        [
            ("pid", pa.string()),
            ("easting", pa.float64()),
            ("northing", pa.float64()),
            ("mean_velocity", pa.float32()),
            *[(n, pa.float32()) for n in names],
        ]
    )
