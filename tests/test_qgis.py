"""Real QGIS opens our outputs as a user would (skipped where QGIS is not installed).

QGIS runs on the system Python (Debian/Ubuntu: ``apt install python3-qgis
qgis-providers``), not in the project's venv, so tests/qgis_probe.py runs there in a
subprocess (headless: QT_QPA_PLATFORM=offscreen) and reports what QGIS shows as JSON.
Set INSAR_RASTER_QGIS_PYTHON to use another interpreter.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from insar_raster.cli import main

PROBE = Path(__file__).with_name("qgis_probe.py")
INSTALL = "real QGIS not found; to run these tests install it (Debian/Ubuntu: apt install python3-qgis qgis-providers)"


def _qgis_python():
    candidates = [os.environ.get("INSAR_RASTER_QGIS_PYTHON"), "/usr/bin/python3", shutil.which("python3")]
    for python in filter(None, candidates):
        try:
            ok = (
                subprocess.run(
                    [python, "-c", "import qgis.core"],
                    capture_output=True,
                    timeout=60,
                    env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                ).returncode
                == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return python
    return None


QGIS_PYTHON = _qgis_python()
pytestmark = pytest.mark.skipif(QGIS_PYTHON is None, reason=INSTALL)


def probe(kind, path, interval_days, png=None):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(Path(path).parent)}
    env.pop("PYTHONPATH", None)  # the venv's packages are not QGIS's
    args = [QGIS_PYTHON, str(PROBE), kind, str(path), str(interval_days)] + ([str(png)] if png else [])
    run = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("QGIS_PROBE ")), None)
    assert line, f"QGIS probe failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    return json.loads(line[len("QGIS_PROBE ") :])


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """grid -> cube.nc (with mp_count, distance_to_mp) and forecasts as .tif and .nc."""
    d = tmp_path_factory.mktemp("qgis")
    os.chmod(d, 0o700)  # also QGIS's XDG_RUNTIME_DIR
    assert (
        main(
            [
                "synth",
                "-o",
                str(d / "pts.csv"),
                "--points",
                "1500",
                "--shape",
                "24x24",
                "--epochs",
                "36",
                "--no-truth",
                "-q",
            ]
        )
        == 0
    )
    assert main(["grid", str(d / "pts.csv"), "-o", str(d / "cube.nc"), "-q"]) == 0
    fast = [
        "--epochs",
        "1",
        "--window",
        "6",
        "--steps",
        "6",
        "--batch-size",
        "8",
        "--patch-size",
        "16",
        "--samples-per-epoch",
        "16",
    ]
    assert (
        main(
            [
                "forecast",
                str(d / "cube.nc"),
                "-o",
                str(d / "forecast.tif"),
                "--save-model",
                str(d / "m.ipt"),
                "-q",
                *fast,
            ]
        )
        == 0
    )
    assert main(["forecast", str(d / "cube.nc"), "--model", str(d / "m.ipt"), "-o", str(d / "forecast.nc"), "-q"]) == 0
    points = ["--points", str(d / "pts.csv"), "--interval", "80", "-o", str(d / "forecast_points.gpkg")]
    assert main(["forecast", str(d / "cube.nc"), "--model", str(d / "m.ipt"), *points, "-q"]) == 0
    return d


def test_cube_mesh_activates_displacement_with_one_dataset_per_epoch(outputs):
    import xarray as xr

    with xr.open_dataset(outputs / "cube.nc") as cube:
        n_epochs = cube.sizes["time"]
        assert {"mp_count", "distance_to_mp"} <= set(cube.data_vars)  # the static groups are there too
    info = probe("mesh", outputs / "cube.nc", 12)
    assert info["valid"] and info["crs"] == "EPSG:3035"
    assert info["active_group"] == "displacement relative to the first epoch"
    assert info["active_datasets"] == n_epochs
    assert info["min"] == pytest.approx(-info["max"]) and info["max"] > 0  # our diverging ramp, centred on 0
    # Stepping the temporal controller by the acquisition interval reaches every epoch, the last included.
    assert info["frames"] == n_epochs
    with xr.open_dataset(outputs / "cube.nc") as cube:
        dates = [str(t)[:10] for t in cube["time"].values]
    assert info["frame_starts"] == dates


def test_forecast_cog_opens_styled(outputs):
    import rasterio

    info = probe("raster", outputs / "forecast.tif", 12)
    assert info["valid"] and info["crs"] == "EPSG:3035" and info["bands"] == 6
    with rasterio.open(outputs / "forecast.tif") as src:
        dates = list(src.descriptions)
        last = src.read(6)
    assert all(d in name for d, name in zip(dates, info["band_names"]))  # bands named by date
    assert info["renderer"] == "singlebandpseudocolor" and info["band"] == 6  # the .qml applied
    assert info["min"] == pytest.approx(-info["max"])
    assert info["max"] == pytest.approx(np.nanpercentile(np.abs(last), 98), rel=0.05)
    assert info["painted_share"] > 0.5  # it draws (QGIS 3.22 ignores the >= 3.38 temporal mode)
    if "temporal_mode_per_band" in info:  # QGIS >= 3.38: the forecast animates too
        assert info["temporal_mode_per_band"] and info["frames"] == 6


def test_forecast_netcdf_mesh_steps_through_every_forecast_date(outputs):
    info = probe("mesh", outputs / "forecast.nc", 12)
    assert info["valid"] and info["active_datasets"] == 6 and info["frames"] == 6


def test_point_forecast_opens_as_a_point_layer_with_date_fields(outputs):
    import geopandas as gpd

    info = probe("points", outputs / "forecast_points.gpkg", 12)
    written = gpd.read_file(outputs / "forecast_points.gpkg", layer="point_forecast")
    assert info["valid"] and info["geometry"] == "Point" and info["crs"] == "EPSG:3035"
    assert info["features"] == len(written) > 1000
    dates = [f for f in info["fields"] if f.isdigit()]
    assert len(dates) == 6 and dates == sorted(dates) and all(len(d) == 8 for d in dates)
    assert info["fields"][1:5] == ["pid", "easting", "northing", "mean_velocity"]  # after the GeoPackage fid
    assert all(info["numeric"][f] for f in dates + ["mean_velocity", f"{dates[0]}_lower", f"{dates[0]}_upper"])
    assert str(info["first"]["pid"]) == str(written["pid"].iloc[0])
    assert info["first"][dates[0]] == pytest.approx(written[dates[0]].iloc[0], abs=1e-6)
