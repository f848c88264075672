"""Cubes from other tools in a geographic CRS (EPSG:4326, degrees).

The default models work in cells: nothing they compute uses the cell size in metres, so a
degree cube is forecast as the same values on a projected grid would be. Where metres are
used (MPs placed on the cube's grid, advection's front speeds) such a cube is refused,
naming its CRS and how to get a projected one; messages and files say degrees, not metres.
"""

import numpy as np
import pytest
import xarray as xr
from test_forecast import TINY

from insar_raster import TrainConfig, train_model
from insar_raster.cli import main
from insar_raster.errors import InputError
from insar_raster.gis.write import write_cube
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube
from insar_raster.io.points import make_points, write_points
from insar_raster.synth import make_scene_cube


@pytest.fixture(scope="module")
def cubes():
    projected, _ = make_scene_cube(shape=(24, 24), n_epochs=30, scene="mixed", seed=3)
    spec = GridSpec("EPSG:4326", 0.001, 10.0, 45.0, 24, 24)
    geographic = make_cube(projected["displacement"].values, projected["time"].values, spec)
    return projected, geographic


def test_geographic_cube_is_forecast_as_its_cells_on_a_projected_grid(cubes, tmp_path):
    projected, geographic = cubes
    config = TrainConfig(**TINY)
    a = train_model(projected, config, progress=False).forecast(projected)
    model = train_model(geographic, config, progress=False)
    b = model.forecast(geographic)
    np.testing.assert_array_equal(a["displacement"].values, b["displacement"].values)
    # Written as longitude/latitude in degrees (CF), not as projected metres.
    write_cube(b, tmp_path / "f.nc")
    with xr.open_dataset(tmp_path / "f.nc") as ds:
        assert (ds["x"].attrs["units"], ds["y"].attrs["units"]) == ("degrees_east", "degrees_north")
        assert ds["x"].attrs["standard_name"] == "longitude"
    # Another grid's model names both cell sizes in their units.
    projected_model = train_model(projected, config, progress=False)
    with pytest.raises(InputError, match=r"cells of 0\.001°\).*cells of 100 m\)"):
        projected_model.forecast(geographic)


def test_advection_on_a_geographic_cube_is_refused(cubes):
    _, geographic = cubes
    with pytest.raises(InputError, match=r"EPSG:4326\) is geographic .*advection needs the cell size in metres"):
        train_model(geographic, TrainConfig(**{**TINY, "advection": True}), progress=False)


def test_forecast_points_on_a_geographic_cube_is_refused_in_one_line(cubes, tmp_path, capsys, monkeypatch):
    """--points with a degree cube: one line naming the cube, its CRS and the grid command to
    run (was: 'crs: WGS 84 is not a projected CRS', naming neither the cube nor a fix)."""
    import insar_raster.forecast.forecaster as forecaster_module

    _, geographic = cubes
    write_cube(geographic, tmp_path / "geo.nc")
    times = geographic["time"].values
    points = make_points([3.0e6, 3.0e6 + 50], [2.0e6, 2.0e6], np.zeros((2, len(times)), "float32"), times, "EPSG:3035")
    write_points(points, tmp_path / "pts.gpkg")
    monkeypatch.setattr(forecaster_module, "train_model", lambda *a, **k: pytest.fail("trained"))
    out = tmp_path / "f.gpkg"
    assert main(["forecast", str(tmp_path / "geo.nc"), "--points", str(tmp_path / "pts.gpkg"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "geo.nc: the cube's CRS (EPSG:4326) is geographic" in err and "insar-raster grid" in err
    assert not out.exists()
