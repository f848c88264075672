"""What QGIS reads from our files, checked without QGIS (tests/test_qgis.py opens them in QGIS)."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import xarray as xr

from insar_raster.errors import OutputExistsError
from insar_raster.gis.style import epoch_ranges, written_for
from insar_raster.gis.write import write_cube
from insar_raster.synth import make_scene_cube


@pytest.fixture(scope="module")
def cube():
    cube, _ = make_scene_cube(shape=(12, 14), n_epochs=8, seed=4)
    cube["mp_count"] = (("y", "x"), np.ones((12, 14), np.int32))
    cube["mp_count"].attrs.update(units="1", long_name="number of measurement points in the cell")
    cube["distance_to_mp"] = (("y", "x"), np.full((12, 14), 5.0, np.float32))
    cube["distance_to_mp"].attrs.update(units="m", long_name="distance from cell centre to nearest measurement point")
    return cube


def test_displacement_is_the_first_mesh_group(cube):
    # MDAL sorts a NetCDF's mesh groups by long_name and QGIS activates the first.
    names = sorted(str(v.attrs["long_name"]) for v in cube.data_vars.values())
    assert names[0] == cube["displacement"].attrs["long_name"]


def test_epoch_ranges_cover_the_last_epoch():
    times = np.array(["2020-01-01", "2020-01-13", "2020-01-25"], dtype="datetime64[ns]")
    ranges = epoch_ranges(times)
    assert ranges == [
        ("2020-01-01T00:00:00Z", "2020-01-13T00:00:00Z"),
        ("2020-01-13T00:00:00Z", "2020-01-25T00:00:00Z"),
        ("2020-01-25T00:00:00Z", "2020-02-06T00:00:00Z"),
    ]
    # The controller steps (end - start) / interval frames: one per epoch.
    days = (np.datetime64(ranges[-1][1][:10]) - np.datetime64(ranges[0][0][:10])).astype(int)
    assert days // 12 == len(times)


def test_netcdf_style_and_geotiff_style_share_one_file(cube, tmp_path):
    write_cube(cube, tmp_path / "cube.nc", style=True)
    qml = tmp_path / "cube.qml"
    assert written_for(qml) == "cube.nc"
    root = ET.parse(qml).getroot()
    temporal = root.find("temporal")
    assert temporal.get("end-time-extent") == "2019-04-09T00:00:00Z"  # last epoch 2019-03-28 + 12 days
    assert temporal.get("mode") == "3" and len(temporal.findall("ranges/range")) == 8  # QGIS >= 3.38 per band
    assert root.find("mesh-renderer-settings/active-dataset-group").get("scalar") == "0"
    assert root.find("pipe/rasterrenderer").get("band") == "8"
    lo, hi = (float(root.find("mesh-renderer-settings/scalar-settings").get(k)) for k in ("min-val", "max-val"))
    assert lo == -hi and hi > 0
    # cube.tif beside it replaces our style (one document serves both) ...
    write_cube(cube, tmp_path / "cube.tif")
    assert written_for(qml) == "cube.tif"
    # ... but a style saved by the user (QGIS drops our comment) is never replaced without overwrite.
    qml.write_text(qml.read_text().replace("<!-- insar-raster style for cube.tif -->", ""))
    (tmp_path / "cube.tif").unlink()
    with pytest.raises(OutputExistsError):
        write_cube(cube, tmp_path / "cube.tif")
    before = qml.read_text()
    write_cube(cube, tmp_path / "cube2.nc", style=True)
    (tmp_path / "cube.nc").unlink()
    write_cube(cube, tmp_path / "cube.nc", style=True)  # the user's style is kept
    assert qml.read_text() == before


def test_forecast_netcdf_has_the_cube_coordinate_attributes(cube, tmp_path):
    forecast = cube.isel(time=slice(0, 3))[["displacement"]]
    forecast = forecast.assign_coords(x=cube["x"].values, y=cube["y"].values)  # as the forecaster does
    assert "axis" not in forecast["x"].attrs
    write_cube(forecast, tmp_path / "f.nc")
    with xr.open_dataset(tmp_path / "f.nc") as ds:
        assert ds["x"].attrs["axis"] == "X" and ds["x"].attrs["standard_name"] == "projection_x_coordinate"
        assert ds["y"].attrs["axis"] == "Y" and ds["time"].attrs["axis"] == "T"
        assert ds["displacement"].attrs["grid_mapping"] == "spatial_ref"
