"""EGMS products as distributed: every release's header, file names, levels, geometry."""

import zipfile
from xml.etree import ElementTree

import numpy as np
import pytest

from insar_raster.errors import InputError
from insar_raster.io import egms
from insar_raster.io.points import read_points

DATES = ["20200105", "20200111", "20200117", "20200123"]
# Track angles and LOS as Sentinel-1 gives them (ground-to-satellite unit vector).
ASC = {"track_angle": -9.5, "incidence_angle": 38.0, "los_east": -0.608, "los_north": -0.102, "los_up": 0.788}
DESC = {"track_angle": 190.6, "incidence_angle": 41.0, "los_east": 0.645, "los_north": -0.121, "los_up": 0.755}


def egms_csv_text(columns, n=5, geometry=ASC, seed=0, dates=DATES, pid_prefix="1a2B3c"):
    """An EGMS CSV with exactly ``columns`` then ``dates``; plausible values per column."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        values = {
            "pid": f"{pid_prefix}{i:04d}",
            "mp_type": "PS",
            "latitude": f"{53.3 + 0.001 * i:.7f}",
            "longitude": f"{-6.25 + 0.001 * i:.7f}",
            "easting": f"{3180050.0 + 100 * i:.1f}",
            "northing": f"{3470050.0 + 37 * i:.1f}",
            "cluster_label": "0",
            **{k: str(v) for k, v in geometry.items()},
        }
        row = [values.get(c, f"{rng.normal():.3f}") for c in columns]
        row += ["0.0"] + [f"{rng.normal():.2f}" for _ in dates[1:]]
        rows.append(",".join(row))
    return ",".join(list(columns) + list(dates)) + "\n" + "\n".join(rows) + "\n"


def write_egms_zip(path, columns, **kwargs):
    csv = path.with_suffix(".csv")
    csv.write_text(egms_csv_text(columns, **kwargs))
    egms.write_zip(csv, path)
    csv.unlink()
    return path


NAMES = {
    "2020_2024 L2a": ("EGMS_L2a_088_0286_IW2_VV_2020_2024_1.zip", "L2a", 88),
    "2020_2024 L2b": ("EGMS_L2b_088_0286_IW2_VV_2020_2024_1.zip", "L2b", 88),
    "2020_2024 L3": ("EGMS_L3_E32N34_100km_U_2020_2024_1.zip", "L3U", None),
    "2018_2022 L2a": ("EGMS_L2a_088_0286_IW2_VV_2018_2022_1.zip", "L2a", 88),
    "2018_2022 L2b": ("EGMS_L2b_088_0286_IW2_VV_2018_2022_1.zip", "L2b", 88),
    "2018_2022 L3": ("EGMS_L3_E32N34_100km_E_2018_2022_1.zip", "L3E", None),
}


@pytest.mark.parametrize("variant", sorted(egms.HEADERS))
def test_every_release_header_parses(tmp_path, variant):
    columns = egms.HEADERS[variant]
    name, level, track = NAMES[variant]
    path = write_egms_zip(tmp_path / name, columns)
    with zipfile.ZipFile(path) as zf:  # as distributed: one .csv and one .xml
        assert sorted(n.rsplit(".", 1)[1] for n in zf.namelist()) == ["csv", "xml"]
        xml = zf.read(path.with_suffix(".xml").name)
    # Its XML header file states the level as EGMS writes it (L3 for Up and East alike).
    assert egms.xml_product_level(xml) == level[:3].replace("L3U", "L3").replace("L3E", "L3")
    pts = read_points(path)
    assert pts.sizes == {"point": 5, "time": 4}
    assert pts.attrs["product_level"] == level
    assert pts.attrs.get("track") == track
    assert pts.pid.values[0] == "1a2B3c0000"
    np.testing.assert_allclose(pts.x.values[:2], [3180050.0, 3180150.0])
    assert "mean_velocity" in pts and pts["mean_velocity"].dtype == np.float32
    if level.startswith("L2"):
        for name in egms.GEOMETRY_COLUMNS:
            assert pts[name].dtype == np.float32
            np.testing.assert_allclose(pts[name].values, ASC[name], rtol=1e-6)
        assert pts.attrs["pass_direction"] == "ascending"
        assert egms.points_geometry(pts) == egms.Geometry(level, track, "ascending")
    else:
        assert "los_east" not in pts and "pass_direction" not in pts.attrs
    # Both releases' names for height and rmse are kept as they are.
    assert ("height_ortho" in pts) == ("height_ortho" in columns)
    assert ("rmse" in pts) == ("rmse" in columns)


def test_headers_are_the_documented_ones():
    new, old = egms.HEADERS["2020_2024 L2b"], egms.HEADERS["2018_2022 L2b"]
    assert {"height_ortho", "height_ellipse", "rmse_ts", "gnss_velocity"} <= set(new)
    assert {"height", "height_wgs84", "rmse"} <= set(old) and not any(c.startswith("gnss") for c in old)
    assert "cluster_label" in egms.HEADERS["2018_2022 L2a"]
    assert {"gnss_velocity_n", "gnss_velocity_e", "gnss_velocity_u"} <= set(egms.HEADERS["2020_2024 L3"])
    assert egms.header_kind(new) == "L2" and egms.header_kind(egms.HEADERS["2018_2022 L2a"]) == "L2a"
    assert egms.header_kind(egms.HEADERS["2020_2024 L3"]) == "L3" and egms.header_kind(["a", "b"]) is None


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "EGMS_L2b_088_0286_IW2_VV_2020_2024_1.zip",
            egms.FileName("L2b", "2020_2024", 1, track=88, burst=286, swath=2),
        ),
        ("some/dir/EGMS_L2a_146_0012_IW3_VV_2018_2022_2.csv", egms.FileName("L2a", "2018_2022", 2, 146, 12, 3)),
        ("x.zip!EGMS_L2B_015_0999_IW1_VV_2019_2023_1.csv", egms.FileName("L2b", "2019_2023", 1, 15, 999, 1)),
        ("EGMS_L3_E32N34_100km_U_2020_2024_1.zip", egms.FileName("L3U", "2020_2024", 1, tile="E32N34")),
        ("EGMS_L3_E40N25_100km_E_2018_2022_1.csv", egms.FileName("L3E", "2018_2022", 1, tile="E40N25")),
        # The baseline and the first update carry no release/version suffix.
        ("EGMS_L2b_088_0286_IW2_VV.zip", egms.FileName("L2b", None, None, track=88, burst=286, swath=2)),
        ("EGMS_L3_E40N28_100km_E.zip", egms.FileName("L3E", None, None, tile="E40N28")),
        ("EGMS_L2b_088_0286_IW2_VV_2020.zip", None),
        ("EGMS_L2b_088_0286_IW4_VV_2020_2024_1.zip", None),  # no IW4 swath
        ("EGMS_L3_E32N34_100km_N_2020_2024_1.zip", None),  # no north component is distributed
        ("points.csv", None),
    ],
)
def test_parse_file_name(name, expected):
    assert egms.parse_file_name(name) == expected


@pytest.mark.parametrize(
    "angles, expected",
    [([-9.2, -9.8], "ascending"), ([350.5], "ascending"), ([190.6, 191.2], "descending"), ([], None), ([np.nan], None)],
)
def test_pass_direction_from_track_angle(angles, expected):
    assert egms.pass_direction(angles) == expected


def test_name_and_header_disagreeing_is_refused(tmp_path):
    path = write_egms_zip(tmp_path / "EGMS_L3_E32N34_100km_U_2020_2024_1.zip", egms.HEADERS["2020_2024 L2b"])
    with pytest.raises(InputError, match="L3U but the columns are those of an L2"):
        read_points(path)


def test_bursts_of_one_track_merge_and_geometries_do_not(tmp_path):
    cols = egms.HEADERS["2020_2024 L2b"]
    a = write_egms_zip(tmp_path / "EGMS_L2b_088_0286_IW2_VV_2020_2024_1.zip", cols, pid_prefix="AAAAAA")
    b = write_egms_zip(tmp_path / "EGMS_L2b_088_0287_IW3_VV_2020_2024_1.zip", cols, pid_prefix="BBBBBB")
    merged = read_points([a, b])
    assert merged.sizes["point"] == 10 and merged.attrs["track"] == 88
    assert merged.attrs["pass_direction"] == "ascending"
    d = write_egms_zip(tmp_path / "EGMS_L2b_139_0490_IW1_VV_2020_2024_1.zip", cols, geometry=DESC)
    with pytest.raises(egms.MixedGeometryError) as err:
        read_points([a, d])
    text = str(err.value)
    assert "EGMS_L2b_088_0286" in text and "L2b track 88 ascending" in text
    assert "L2b track 139 descending" in text and "--" not in text  # a library names no flag
    # Same track number, other pass direction (or no number): still refused.
    e = tmp_path / "desc.csv"
    e.write_text(egms_csv_text(cols, geometry=DESC))
    with pytest.raises(egms.MixedGeometryError):
        read_points([a, e])
    up = write_egms_zip(tmp_path / "EGMS_L3_E32N34_100km_U_2020_2024_1.zip", egms.HEADERS["2020_2024 L3"])
    east = write_egms_zip(tmp_path / "EGMS_L3_E32N34_100km_E_2020_2024_1.zip", egms.HEADERS["2020_2024 L3"])
    for pair in ([a, up], [up, east]):
        with pytest.raises(egms.MixedGeometryError):
            read_points(pair)


def test_probe_reads_geometry_from_the_first_rows(tmp_path):
    cols = egms.HEADERS["2018_2022 L2b"]
    d = write_egms_zip(tmp_path / "EGMS_L2b_139_0490_IW1_VV_2018_2022_1.zip", cols, geometry=DESC)
    [(name, geometry)] = egms.probe(d)
    assert name.endswith("!EGMS_L2b_139_0490_IW1_VV_2018_2022_1.csv")
    assert geometry == egms.Geometry("L2b", 139, "descending", "L2")


def test_epochs_not_in_every_input_are_counted(tmp_path):
    cols = egms.HEADERS["2020_2024 L2b"]
    a = tmp_path / "a.csv"
    a.write_text(egms_csv_text(cols, pid_prefix="AAAAAA"))
    b = tmp_path / "b.csv"
    b.write_text(egms_csv_text(cols, pid_prefix="BBBBBB", dates=DATES[:2] + ["20200120"]))
    with pytest.warns(UserWarning, match=r"a.csv: 4, b.csv: 3\); keeping the 2 common to all, dropping 3"):
        pts = read_points([a, b])
    assert pts.sizes["time"] == 2 and pts.attrs["epochs_dropped"] == 3


def test_streaming_cache_follows_the_same_rules(tmp_path):
    from insar_raster.io.cache import cached_points

    cols = egms.HEADERS["2020_2024 L2b"]
    d = write_egms_zip(tmp_path / "EGMS_L2b_139_0490_IW1_VV_2020_2024_1.zip", cols, geometry=DESC)
    pts = cached_points(d, cache_dir=tmp_path / "cache")
    ref = read_points(d)
    for key in ("product_level", "track", "pass_direction", "epochs_dropped"):
        assert pts.attrs[key] == ref.attrs[key]
    for name in egms.GEOMETRY_COLUMNS:
        np.testing.assert_array_equal(pts[name].values, ref[name].values)
    a = write_egms_zip(tmp_path / "EGMS_L2b_088_0286_IW2_VV_2020_2024_1.zip", cols)
    with pytest.raises(egms.MixedGeometryError):
        cached_points([a, d], cache_dir=tmp_path / "cache")


def test_cli_grid_refuses_mixed_geometries_and_leaves_the_output(tmp_path, capsys):
    from insar_raster.cli import main

    cols = egms.HEADERS["2020_2024 L2b"]
    a = write_egms_zip(tmp_path / "EGMS_L2b_088_0286_IW2_VV_2020_2024_1.zip", cols)
    d = write_egms_zip(tmp_path / "EGMS_L2b_139_0490_IW1_VV_2020_2024_1.zip", cols, geometry=DESC)
    out = tmp_path / "cube.nc"
    out.write_bytes(b"an earlier cube")
    code = main(["grid", str(a), str(d), "-o", str(out), "--overwrite"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "EGMS_L2b_088_0286_IW2_VV_2020_2024_1.zip: L2b track 88 ascending" in err[0]
    assert "EGMS_L2b_139_0490_IW1_VV_2020_2024_1.zip: L2b track 139 descending" in err[0]
    assert "--decompose" in err[0] and "separate run" in err[0]
    assert out.read_bytes() == b"an earlier cube"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_cli_grid_summary_counts_dropped_epochs(tmp_path, capsys):
    from insar_raster.cli import main

    cols = egms.HEADERS["2020_2024 L2b"]
    a = tmp_path / "a.csv"
    a.write_text(egms_csv_text(cols, n=8, pid_prefix="AAAAAA"))
    b = tmp_path / "b.csv"
    b.write_text(egms_csv_text(cols, n=8, pid_prefix="BBBBBB", dates=DATES[:3] + ["20200120"], seed=1))
    code = main(["grid", str(a), str(b), "-o", str(tmp_path / "c.nc"), "--method", "nearest"])
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: inputs have different epochs (a.csv: 4, b.csv: 4); keeping the 3 common to all, dropping 2" in err
    summary = next(line for line in err.splitlines() if line.startswith("grid: "))
    assert "16 MPs, 3 epochs (2 dropped: not in every input)" in summary


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_per_mp_geometry_survives_vector_round_trip(tmp_path, suffix):
    from insar_raster.io.points import write_points

    path = write_egms_zip(
        tmp_path / "EGMS_L2b_139_0490_IW1_VV_2020_2024_1.zip", egms.HEADERS["2020_2024 L2b"], geometry=DESC
    )
    pts = read_points(path)
    back = read_points(write_points(pts, tmp_path / f"pts{suffix}"))
    for name in egms.GEOMETRY_COLUMNS:
        np.testing.assert_allclose(back[name].values, pts[name].values)
    assert back.attrs["pass_direction"] == "descending"


def test_write_zips_xml_header_file_is_read_where_the_name_says_nothing(tmp_path):
    """write_zip's XML header file has the documented layout (``<BURST>``, ``product_level``,
    ``burst_id``, the images of each date): a renamed zip of a 2020_2024 L2 header, which
    L2a and L2b share, takes its level from it, as a real product's does."""
    columns = egms.HEADERS["2020_2024 L2a"]
    csv = tmp_path / "x.csv"
    csv.write_text(egms_csv_text(columns))
    named = egms.write_zip(csv, tmp_path / "EGMS_L2a_088_0286_IW2_VV_2020_2024_1.zip")
    with zipfile.ZipFile(named) as zf:
        root = ElementTree.fromstring(zf.read("EGMS_L2a_088_0286_IW2_VV_2020_2024_1.xml"))
    assert root.tag == "BURST" and root.findtext("product_level") == "L2a" and root.findtext("burst_id") == "0286"
    assert root.findtext("clusters") == "0" and root.find("gnss") is None  # L2a: clusters, no GNSS model
    header = csv.read_text().split("\n", 1)[0].split(",")
    days = [c for c in header if c.isdigit()]
    assert [p.findtext("product_id")[17:25] for p in root.iter("image")][1:] == days  # reference, then each date
    # Renamed: the name and the header say nothing, the XML says L2a (or L2b).
    for level in ("L2a", "L2b"):
        mine = egms.write_zip(csv, tmp_path / f"mine_{level}.zip", level=level)
        assert read_points(mine).attrs["product_level"] == level
    # Nothing says the level: none is written, none is read.
    plain = egms.write_zip(csv, tmp_path / "plain.zip")
    with zipfile.ZipFile(plain) as zf:
        assert ElementTree.fromstring(zf.read("plain.xml")).find("product_level") is None
    assert "product_level" not in read_points(plain).attrs
