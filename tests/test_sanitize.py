"""Bad rows (io/sanitize.py), CSV dialects (io/dialect.py) and size before work (io/budget.py, grid/budget.py).

Includes the coordinate property: any finite set of outliers (up to the handful the bulk
box tolerates) never widens the grid beyond the bulk's box plus the margin.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insar_raster.errors import InputError
from insar_raster.grid import budget
from insar_raster.grid.spec import GridSpec
from insar_raster.io import sanitize
from insar_raster.io.dialect import sniff
from insar_raster.io.points import make_points, read_points

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def points_at(x, y):
    n = len(x)
    return make_points(
        x,
        y,
        np.zeros((n, 2), np.float32),
        np.array(["2020-01-01", "2020-01-13"], "datetime64[D]"),
        "EPSG:3035",
        pid=[f"P{i}" for i in range(n)],
    )


# --------------------------------------------------------------------------- coordinates


@FAST
@given(
    n=st.integers(20, 300),
    size=st.sampled_from([50.0, 2_000.0, 26_000.0, 300_000.0]),
    origin=st.tuples(st.floats(2e6, 6e6), st.floats(1e6, 5e6)),
    unit=st.data(),
)
def test_coordinate_outliers_never_widen_the_grid(n, size, origin, unit):
    """Outliers anywhere finite ((0, 0), next door, 10,000 km away, on one axis only) never
    take the grid beyond the bulk's box plus the documented margin (plus one cell)."""
    draw = unit.draw
    ux = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    uy = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    bx, by = origin[0] + ux * size, origin[1] + uy * size
    k = draw(st.integers(1, sanitize.outlier_budget(n)))
    far = st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False)
    ox = np.array(draw(st.lists(st.one_of(st.just(0.0), far), min_size=k, max_size=k)))
    oy = np.array(draw(st.lists(st.one_of(st.just(0.0), far), min_size=k, max_size=k)))
    # Some outliers stay inside the bulk on one axis (a shifted easting only).
    inside = np.array(draw(st.lists(st.booleans(), min_size=k, max_size=k)))
    ox = np.where(inside, bx[:k], ox)
    x, y = np.concatenate([bx, ox]), np.concatenate([by, oy])
    order = np.array(draw(st.permutations(range(n + k))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = sanitize.drop_coordinate_outliers(points_at(x[order], y[order]))
    res = 100.0
    spec = GridSpec.from_points(kept.x.values, kept.y.values, "EPSG:3035", resolution=res)
    w, s, e, nn = spec.bounds
    margin = max(bx.max() - bx.min(), by.max() - by.min(), sanitize.OUTLIER_MIN_MARGIN)
    assert w >= bx.min() - margin - res and e <= bx.max() + margin + res
    assert s >= by.min() - margin - res and nn <= by.max() + margin + res


def test_uniform_scene_keeps_every_mp_and_drops_the_zero_row():
    rng = np.random.default_rng(0)
    x, y = 3.18e6 + rng.uniform(0, 26e3, 500), 3.44e6 + rng.uniform(0, 26e3, 500)
    x[7], y[7] = 0.0, 0.0
    x[9] += 3e6
    with pytest.warns(UserWarning) as caught:
        kept = sanitize.drop_coordinate_outliers(points_at(x, y), source="t.csv")
    assert kept.sizes["point"] == 498 and kept.attrs["coordinate_outliers_dropped"] == 2
    (message,) = [str(w.message) for w in caught]
    assert message == (
        "t.csv: dropped 2 MP(s) with unusable coordinates (1 at (0, 0), 1 far outside the bulk of "
        "the points): pid P7, P9; keep_outliers=True keeps them"
    )
    assert "--" not in message  # the library names the parameter, the CLI the option


def test_keep_outliers_keeps_them_and_says_so():
    x = np.r_[np.linspace(0, 1000, 50) + 4e6, 1e7]
    y = np.r_[np.linspace(0, 1000, 50) + 3e6, 3e6]
    with pytest.warns(UserWarning, match=r"kept 1 MP\(s\) far outside .*pid P50.*set the grid's extent"):
        kept = sanitize.drop_coordinate_outliers(points_at(x, y), keep_outliers=True)
    assert kept.sizes["point"] == 51 and kept.attrs["coordinate_outliers_kept"] == 1


def test_few_points_only_drop_invalid_coordinates():
    x, y = np.array([4e6, 4.001e6, 9e6, np.nan]), np.array([3e6, 3e6, 3e6, 3e6])
    with pytest.warns(UserWarning, match=r"dropped 1 MP\(s\) .*1 NaN or infinite"):
        kept = sanitize.drop_coordinate_outliers(points_at(x, y))
    assert kept.sizes["point"] == 3


def test_lonlat_out_of_range_refused_as_swapped():
    with pytest.raises(InputError, match=r"latitude outside \[-90, 90\] in 3 of 3 rows.*swapped"):
        sanitize.check_coordinate_frame(np.array([30.0, 31, 32]), np.array([120.0, 121, 122]), "EPSG:4326", "f.csv")
    sanitize.check_coordinate_frame(np.array([4e6, 4e6, 4e6]), np.array([120.0, 121, 122]) + 3e6, "EPSG:3035", "f.csv")
    sanitize.check_coordinate_frame(np.array([10.0, 10, 95]), np.array([50.0, 50, 10]), "EPSG:4326", "f.csv")  # one row


# --------------------------------------------------------------------------- dates


def test_dates_beyond_datetime64_ns_are_errors_never_wrapped():
    with pytest.raises(InputError, match=r"date column 'D99991231' \(9999-12-31\) is beyond"):
        sanitize.check_dates(
            ["20200101", "D99991231"],
            [np.datetime64("2020-01-01"), np.datetime64("9999-12-31")],
            "f.csv",
            allow_dates=True,
        )


@pytest.mark.parametrize(
    "column, date, words",
    [
        ("18000101", "1800-01-01", "before Sentinel-1's first acquisitions (2014-04)"),
        ("20140331", "2014-03-31", "before Sentinel-1"),
        ("22000101", "2200-01-01", "after today"),
    ],
)
def test_epochs_outside_sentinel1_refused_unless_allowed(column, date, words):
    dates = [np.datetime64("2020-01-01"), np.datetime64(date)]
    with pytest.raises(InputError) as info:
        sanitize.check_dates(["20200101", column], dates, "f.csv")
    assert info.value.message.startswith(f"f.csv: date column '{column}'") and words in info.value.message
    assert "allow_dates=True" in info.value.message
    sanitize.check_dates(["20200101", column], dates, "f.csv", allow_dates=True)
    sanitize.check_dates(["20140401"], [np.datetime64("2014-04-01")], "f.csv")  # the first S1 month is fine


# --------------------------------------------------------------------------- pids


def test_pid_majority_refused_overlap_duplicates_not():
    with pytest.raises(InputError, match=r"^f.csv: 999 of 1,000 rows share 1 pid: not an EGMS file\?"):
        sanitize.check_pid_majority(np.r_[["A"] * 999, ["B"]], "f.csv")
    # Three copies of the same tile: every pid thrice, not "one pid".
    sanitize.check_pid_majority(np.tile(np.arange(400).astype(str), 3), "f.csv")
    import pyarrow as pa

    with pytest.raises(InputError, match="share 2 pids"):
        sanitize.check_pid_majority(pa.chunked_array([["A"] * 500, ["B"] * 500]), "f.csv")


# --------------------------------------------------------------------------- dialects


@pytest.mark.parametrize(
    "head, delimiter, decimal",
    [
        (b"pid,easting,20200101\nA,4000000.5,1.25\n", ",", "."),
        (b"pid;easting;20200101\nA;4000000.5;1.25\n", ";", "."),
        (b"pid;easting;20200101\nA;4000000,5;1,25\nB;4000001;-3,5\n", ";", ","),
        (b"pid\teasting\t20200101\r\nA\t4000000,5\t1,25\r\n", "\t", ","),
        (b"\xef\xbb\xbfpid;easting;20200101\nA;4000000;1\n", ";", "."),  # integers only: either mark reads them
    ],
)
def test_sniff_delimiter_and_decimal(head, delimiter, decimal):
    d = sniff(head)
    assert (d.delimiter, d.decimal, d.encoding) == (delimiter, decimal, "utf8")
    assert d.split_header(head.split(b"\n")[0]) == ["pid", "easting", "20200101"]


def test_sniff_latin1_data_under_an_ascii_header():
    assert sniff("pid,20200101\nBégles,1.0\n".encode("latin-1")).encoding == "latin-1"
    assert sniff("pid,20200101\nBégles,1.0\n".encode("utf-8")).encoding == "utf8"
    assert sniff("pid,20200101\nBé".encode("utf-8")[:-1]).encoding == "utf8"  # a character cut by the head's end


def test_semicolon_decimal_comma_file_reads_as_the_comma_file(tmp_path):
    comma = "pid,easting,northing,20200101,20200113\nA,4000000.5,3000000.25,0.0,-1.5\nB,4000100.0,3000100.0,0.0,2.25\n"
    semi = comma.replace(",", ";").replace(".", ",")
    (tmp_path / "c.csv").write_text(comma)
    (tmp_path / "s.csv").write_text(semi)
    a, b = read_points(tmp_path / "c.csv"), read_points(tmp_path / "s.csv")
    for name in ("x", "y", "displacement"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert b.x.values[0] == 4000000.5 and b.displacement.values[1, 1] == np.float32(2.25)


def test_info_names_the_delimiter(tmp_path):
    from insar_raster.info import describe_points

    (tmp_path / "s.csv").write_text("pid;easting;northing;20200101\nA;4000000,5;3000000;0,0\n")
    assert describe_points(tmp_path / "s.csv")["csv_format"] == "semicolon (;), decimal comma"


# --------------------------------------------------------------------------- budget


def test_parse_and_format_sizes():
    assert budget.parse_size("50GB") == 50 * 10**9 and budget.parse_size("2GiB") == 2 * 2**30
    assert budget.parse_size("1.5t") == 15 * 10**11 and budget.parse_size("1000") == 1000
    for bad in ("", "lots", "-1GB", "0", "5 parsecs"):
        with pytest.raises(InputError, match="max_output_size"):
            budget.parse_size(bad)
    assert budget.format_size(52.3e9) == "52.3 GB" and budget.format_size(999) == "999 B"


def test_cube_estimate_counts_cells_epochs_and_bytes():
    spec = GridSpec.from_points(np.array([0.0, 26_000]), np.array([0.0, 26_000]), "EPSG:3035", resolution=1.0)
    est = budget.estimate_cube(spec, 40, 3000, "c.nc")
    assert est.cells == spec.width * spec.height == 26_001 * 26_001
    assert est.raw_bytes == est.cells * (40 * 4 + budget.LAYER_BYTES)  # float32 epochs + two layers
    assert est.output_bytes < est.raw_bytes / 50  # mostly masked: compresses
    assert est.cells_per_mp > 200_000
    with pytest.raises(InputError, match=r"cells per MP.*resolution=5 \(m\) or coarser fits.*force=True"):
        budget.check_budget(est, "c.nc")
    budget.check_budget(est, "c.nc", force=True, max_output_size=None)
    tif = budget.estimate_cube(spec, 40, 3000, "c.csv")  # not a compressed format: raw
    assert tif.output_bytes == tif.raw_bytes


def test_points_cache_budget_refuses_before_streaming(tmp_path):
    from insar_raster.io.cache import build_points_cache

    text = "pid,easting,northing," + ",".join(f"2020{m:02d}01" for m in range(1, 13)) + "\n"
    text += "".join(f"P{i},{4e6 + i},{3e6 + i}," + ",".join(["1.5"] * 12) + "\n" for i in range(2000))
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(InputError, match=r"points cache of about .* is over the limit of 10 kB"):
        build_points_cache(tmp_path / "p.csv", tmp_path / "cache" / "c", max_output_size=10_000)
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_cli_maps_parameters_to_options():
    from insar_raster.cli import build_parser

    parser = build_parser(["grid"])
    grid = next(a for a in parser._actions if a.dest == "command").choices["grid"]
    to_flags = grid.get_default("_flags").translate

    text = "x (allow_dates=True accepts); keep_outliers=True keeps; resolution=20 (m) fits; max_output_size raises"
    assert (
        to_flags(text)
        == "x (--allow-dates accepts); --keep-outliers keeps; --resolution 20 (m) fits; --max-output-size raises"
    )
    assert to_flags("the resolution of the grid") == "the resolution of the grid"


@pytest.mark.parametrize("column", ["20201301", "00000000", "D20200230", "2020-02-30"])
def test_column_named_like_a_date_that_is_none_is_refused(column, tmp_path):
    (tmp_path / "p.csv").write_text(f"pid,easting,northing,20200101,{column}\nA,4000000,3000000,0,1\n")
    with pytest.raises(InputError, match=rf"column '{column}' is named like a date \(YYYYMMDD\) but is not a valid"):
        read_points(tmp_path / "p.csv")


@pytest.mark.parametrize("scale, where", [(1e-3, "lon"), (1e-6, "lon")])
def test_projected_coordinates_outside_the_crs_area_are_warned(scale, where, tmp_path):
    """Eastings/northings in km (or degrees in easting/northing columns) are not in EPSG:3035's Europe."""
    rows = "".join(f"P{i},{(3.18e6 + 100 * i) * scale},{(3.44e6 + 50 * i) * scale},0,1\n" for i in range(20))
    (tmp_path / "p.csv").write_text("pid,easting,northing,20200101,20200113\n" + rows)
    with pytest.warns(UserWarning, match=r"median position .* is outside the area of ETRS89-extended / LAEA Europe"):
        read_points(tmp_path / "p.csv")
    (tmp_path / "q.csv").write_text(
        "pid,easting,northing,20200101,20200113\n"
        + "".join(f"P{i},{3.18e6 + 100 * i},{3.44e6 + 50 * i},0,1\n" for i in range(20))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_points(tmp_path / "q.csv").sizes["point"] == 20
