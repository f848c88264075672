"""Ingestion: EGMS CSV layouts, zip/folder, GeoPackage/GeoParquet, CRS handling."""

import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from pyproj import CRS

from insar_raster.errors import InputError
from insar_raster.io.points import parse_date_column, read_points, write_points


@pytest.mark.parametrize("layout", ["L2a", "L2b"])
def test_egms_l2_csv_round_trip(tmp_path, small_scene, layout):
    points, _ = small_scene
    path = write_points(points, tmp_path / "tile.csv", layout=layout)
    header = path.read_text().splitlines()[0].split(",")
    # EGMS layout: metadata first, then one column per acquisition named YYYYMMDD.
    assert header[:4] == ["pid", "mp_type", "latitude", "longitude"]
    assert header[-1] == str(points.time.values[-1])[:10].replace("-", "")
    back = read_points(path)
    assert back.rio.crs == CRS.from_epsg(3035)
    assert back.sizes == points.sizes
    np.testing.assert_allclose(back.x.values, points.x.values, atol=0.06)  # CSV keeps 0.1 m
    np.testing.assert_allclose(back.displacement.values, points.displacement.values, atol=0.006)  # 2 decimals
    np.testing.assert_array_equal(back.time.values, points.time.values)
    assert back.displacement.dtype == np.float32


def test_egms_l3_layout_is_cell_aggregated(tmp_path, small_scene):
    points, _ = small_scene
    path = write_points(points, tmp_path / "l3_up.csv", layout="L3UD")
    header = path.read_text().splitlines()[0].split(",")
    assert "latitude" not in header and header[:3] == ["pid", "easting", "northing"]
    back = read_points(path)
    # L3 points sit at 100 m cell centres.
    np.testing.assert_allclose(np.mod(back.x.values, 100), 50, atol=0.06)
    assert 0 < back.sizes["point"] < points.sizes["point"]
    assert back.attrs["product"] == "EGMS L3"


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_vector_round_trip_keeps_crs(tmp_path, small_scene, suffix):
    points, _ = small_scene
    path = write_points(points, tmp_path / f"pts{suffix}")
    back = read_points(path)
    assert back.rio.crs == CRS.from_epsg(3035)
    if suffix == ".gpkg":
        import sqlite3

        with sqlite3.connect(path) as db:  # GeoPackage 1.2, as the point forecasts
            assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
    np.testing.assert_allclose(back.x.values, points.x.values)
    np.testing.assert_allclose(back.displacement.values, points.displacement.values)


def test_geographic_vector_is_projected_to_utm(tmp_path, small_scene):
    import geopandas as gpd

    points, _ = small_scene
    sub = points.isel(point=slice(0, 50))
    path = write_points(sub, tmp_path / "pts.gpkg")
    gdf = gpd.read_file(path).to_crs(4326)
    gdf.to_file(tmp_path / "geo.gpkg")
    back = read_points(tmp_path / "geo.gpkg")
    crs = CRS.from_user_input(back.rio.crs)
    assert crs.is_projected and "UTM" in crs.name
    back3035 = read_points(tmp_path / "geo.gpkg", crs="EPSG:3035")
    np.testing.assert_allclose(back3035.x.values, sub.x.values, atol=1e-3)


def test_multi_layer_geopackage_warns_that_only_the_first_layer_is_read(tmp_path, small_scene):
    import warnings

    import geopandas as gpd

    points, _ = small_scene
    one = write_points(points.isel(point=slice(0, 40)), tmp_path / "one.gpkg")
    gdf = gpd.read_file(one)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_points(one).sizes["point"] == 40  # one layer: no warning
    gdf.iloc[:10].to_file(one, layer="extra", engine="pyogrio")
    with pytest.warns(UserWarning, match="first layer .* 1 other layer.*'extra'"):
        back = read_points(one)
    assert back.sizes["point"] == 40


def test_merge_tiles_drops_duplicate_pids(tmp_path, small_scene):
    points, _ = small_scene
    n = points.sizes["point"]
    write_points(points.isel(point=slice(0, 2000)), tmp_path / "a.csv")
    write_points(points.isel(point=slice(1500, n)), tmp_path / "b.csv")  # 500 overlap
    with pytest.warns(UserWarning, match="500 duplicate"):
        merged = read_points([tmp_path / "a.csv", tmp_path / "b.csv"])
    assert merged.sizes["point"] == n
    assert len(np.unique(merged.pid.values)) == n
    # A folder and a zip of the same tiles give the same points.
    with pytest.warns(UserWarning):
        folder = read_points(tmp_path)
    with zipfile.ZipFile(tmp_path / "tiles.zip", "w") as zf:
        zf.write(tmp_path / "a.csv", "EGMS_L2b_a.csv")
        zf.write(tmp_path / "b.csv", "EGMS_L2b_b.csv")
    (tmp_path / "a.csv").unlink()
    (tmp_path / "b.csv").unlink()
    with pytest.warns(UserWarning):
        zipped = read_points(tmp_path / "tiles.zip")
    np.testing.assert_array_equal(np.sort(folder.pid.values), np.sort(zipped.pid.values))


def test_a_pid_reused_for_another_mp_is_not_called_overlapping_tiles(tmp_path, small_scene):
    """One file whose pids repeat at other positions (was: 'dropped N duplicate pid(s)
    from overlapping tiles', wrong for one file of distinct MPs); the same MPs met again
    in an overlapping tile keep that message. The first of each pid is kept either way."""
    points, _ = small_scene
    n = points.sizes["point"]
    reused = points.isel(point=slice(0, 300)).copy()
    pid = reused["pid"].values.copy()
    pid[200:] = pid[:100]  # 100 later rows named like earlier, other MPs
    reused = reused.assign_coords(pid=("point", pid))
    write_points(reused, tmp_path / "one.csv")
    with pytest.warns(UserWarning) as record:
        read = read_points(tmp_path / "one.csv")
    said = [str(w.message) for w in record if "duplicate pid" in str(w.message)]
    assert len(said) == 1 and "dropped 100 duplicate pid(s), 100 of them at another position" in said[0]
    assert "overlapping tiles" not in said[0].split("(")[0] and read.sizes["point"] == 200
    from insar_raster.io.cache import cached_points

    with pytest.warns(UserWarning) as record:  # the cached reader (large CSVs) says the same
        cached = cached_points(tmp_path / "one.csv", cache_dir=tmp_path / "cache")
    assert [str(w.message) for w in record if "duplicate pid" in str(w.message)] == said
    assert cached.sizes["point"] == 200
    write_points(points.isel(point=slice(0, 2000)), tmp_path / "a.csv")
    write_points(points.isel(point=slice(1500, n)), tmp_path / "b.csv")
    with pytest.warns(UserWarning) as record:
        read_points([tmp_path / "a.csv", tmp_path / "b.csv"])
    said = [str(w.message) for w in record if "duplicate pid" in str(w.message)]
    assert said == ["dropped 500 duplicate pid(s) from overlapping tiles"]


def test_start_end_and_nan_rows(tmp_path):
    cols = {
        "pid": pa.array(["a", "b", "c", "d"]),
        "easting": pa.array([3.0e6, 3.0e6 + 100, 3.0e6 + 200, 3.0e6 + 300]),
        "northing": pa.array([3.2e6, 3.2e6, 3.2e6 + 100, 3.2e6 + 100]),
        "20200101": pa.array([0.0, 0.0, 0.0, 0.0]),
        "20200113": pa.array([1.0, None, 2.0, 3.0]),
        "20200125": pa.array([2.0, 2.0, 3.0, 4.0]),
    }
    pacsv.write_csv(pa.table(cols), tmp_path / "p.csv")
    with pytest.warns(UserWarning, match="dropped 1 point"):
        pts = read_points(tmp_path / "p.csv")
    assert list(pts.pid.values) == ["a", "c", "d"]
    # The NaN lies outside the selected period: nothing dropped.
    sel = read_points(tmp_path / "p.csv", start="2020-01-20")
    assert sel.sizes == {"point": 4, "time": 1}
    # Re-referenced to the first epoch kept (it was 2, 2, 3, 4 relative to 2020-01-01).
    np.testing.assert_array_equal(sel.displacement.values[:, 0], [0, 0, 0, 0])
    two = read_points(tmp_path / "p.csv", start="2020-01-10")  # b's NaN is inside: b dropped
    np.testing.assert_array_equal(two.displacement.values, [[0, 1], [0, 1], [0, 1]])


@pytest.mark.parametrize(
    "name,expected",
    [
        ("20180110", "2018-01-10"),
        ("D20180110", "2018-01-10"),
        ("2018-01-10", "2018-01-10"),
        ("mean_velocity", None),
        ("20181310", None),
        ("2018011", None),
    ],
)
def test_parse_date_column(name, expected):
    got = parse_date_column(name)
    assert (None if got is None else str(got)) == expected


def test_iso_date_columns_and_errors(tmp_path):
    (tmp_path / "iso.csv").write_text(
        "pid,easting,northing,2020-01-01,2020-01-13\na,1,2,0,1.5\nb,3,4,0,2.5\nc,5,1,0,1\n"
    )
    pts = read_points(tmp_path / "iso.csv")
    assert pts.sizes == {"point": 3, "time": 2}
    (tmp_path / "nodate.csv").write_text("pid,easting,northing,velocity\na,1,2,0\n")
    with pytest.raises(InputError, match="nodate.csv: no date columns"):
        read_points(tmp_path / "nodate.csv")
    (tmp_path / "nocoord.csv").write_text("pid,foo,20200101\na,1,2\n")
    with pytest.raises(InputError, match="no coordinate columns"):
        read_points(tmp_path / "nocoord.csv")
    (tmp_path / "text.csv").write_text("pid,easting,northing,20200101\na,1,2,abc\n")
    with pytest.raises(InputError, match="non-numeric"):
        read_points(tmp_path / "text.csv")
    with pytest.raises(InputError, match="unknown CRS"):
        read_points(tmp_path / "iso.csv", crs="EPSG:999999")
