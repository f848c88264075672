"""QGIS .qml styles: valid XML, diverging ramp centred on 0, robust symmetric limits."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from insar_raster.errors import OutputExistsError
from insar_raster.gis.raster import write_geotiff
from insar_raster.gis.style import read_qml_limits, robust_limit, write_qml
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube


def _cube(values):
    grid = GridSpec("EPSG:32632", 20.0, 500_000.0, 5_000_000.0, values.shape[2], values.shape[1])
    times = np.datetime64("2019-01-01") + np.arange(values.shape[0]) * np.timedelta64(12, "D")
    return make_cube(values.astype("float32"), times, grid)


def test_qml_beside_geotiff_parses_with_diverging_ramp(tmp_path):
    rng = np.random.default_rng(1)
    values = np.zeros((3, 30, 40))
    values[-1] = rng.normal(-4, 6, (30, 40))
    values[-1, 0, 0] = -500.0  # an outlier must not set the limits
    values[-1, 1, 1] = np.nan
    write_geotiff(_cube(values)["displacement"], tmp_path / "d.tif")
    qml = tmp_path / "d.qml"
    assert qml.exists()
    root = ET.parse(qml).getroot()
    assert root.tag == "qgis"
    renderer = root.find("./pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor"
    assert renderer.get("band") == "3"  # the latest epoch, not the all-zero first one
    shader = renderer.find("./rastershader/colorrampshader")
    assert shader.get("colorRampType") == "INTERPOLATED"
    ramp = shader.find("colorramp")
    assert ramp.get("type") == "gradient"
    props = {p.get("k"): p.get("v") for p in ramp.findall("prop")}
    assert props["color1"].startswith("103,0,31")  # dark red at the negative end
    assert props["color2"].startswith("5,48,97")  # dark blue at the positive end
    items = shader.findall("item")
    item_values = [float(i.get("value")) for i in items]
    assert item_values == sorted(item_values)
    assert item_values[len(items) // 2] == 0.0
    lo, hi = read_qml_limits(qml)
    expected = np.nanpercentile(np.abs(values[-1]), 98)
    assert lo == pytest.approx(-hi) and hi == pytest.approx(expected, rel=1e-4)
    assert hi < 100  # robust to the -500 outlier
    assert "mm" in items[0].get("label")


def test_no_style(tmp_path):
    write_geotiff(_cube(np.ones((1, 5, 5)))["displacement"], tmp_path / "d.tif", style=False)
    assert not (tmp_path / "d.qml").exists()


def test_robust_limit_edge_cases():
    assert robust_limit(np.full(10, np.nan)) == 1.0  # no data: a usable non-zero range
    assert robust_limit(np.zeros(10)) == 1.0
    assert robust_limit(np.array([-3.0, 1.0, 2.0]), percentile=100) == 3.0
    values = np.r_[np.linspace(-10, 10, 1001), 1e6]
    assert robust_limit(values) == pytest.approx(np.percentile(np.abs(values), 98))


def test_write_qml_is_atomic_and_refuses_overwrite(tmp_path):
    write_qml(tmp_path / "s.qml", limit=12.5, units="mm/yr")
    assert read_qml_limits(tmp_path / "s.qml") == (-12.5, 12.5)
    with pytest.raises(OutputExistsError):
        write_qml(tmp_path / "s.qml", limit=3)
    write_qml(tmp_path / "s.qml", limit=3, overwrite=True)
    assert read_qml_limits(tmp_path / "s.qml") == (-3.0, 3.0)
    assert [p.name for p in tmp_path.iterdir()] == ["s.qml"]
