"""Property-based tests (hypothesis): the CSV reader and the grid spec on random inputs.

Random column orders, date formats, coordinate ranges and NaN patterns; each property is
checked against an independent expectation computed from the generated table.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pyproj import CRS, Transformer

from insar_raster.errors import InputError
from insar_raster.grid.spec import GridSpec
from insar_raster.io.points import parse_date_column, read_points

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

DATE_FORMATS = {
    "YYYYMMDD": lambda d: d.strftime("%Y%m%d"),
    "DYYYYMMDD": lambda d: "D" + d.strftime("%Y%m%d"),
    "YYYY-MM-DD": lambda d: d.strftime("%Y-%m-%d"),
}
METADATA = ["pid", "easting", "northing", "height", "mean_velocity", "rmse", "mp_type"]
_TO_3035 = Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True)


@st.composite
def egms_tables(draw, shuffle_dates: bool = False):
    """(CSV text, easting, northing, values, NaN mask, dates) of a random EGMS-like table.

    Metadata columns come in any order and interleave with the date columns; the date
    columns keep chronological order unless ``shuffle_dates``.
    """
    import datetime as dt

    n_points = draw(st.integers(1, 12))
    n_dates = draw(st.integers(1, 7))
    start = draw(st.dates(min_value=dt.date(2015, 1, 1), max_value=dt.date(2025, 1, 1)))  # before today
    gaps = draw(st.lists(st.integers(1, 40), min_size=n_dates - 1, max_size=n_dates - 1))
    days = np.cumsum([0, *gaps])
    dates = [start + dt.timedelta(days=int(d)) for d in days]
    # Each date column may use its own naming style (files in the wild mix them).
    styles = draw(st.lists(st.sampled_from(sorted(DATE_FORMATS)), min_size=n_dates, max_size=n_dates))
    date_names = [DATE_FORMATS[s](d) for s, d in zip(styles, dates)]
    # Coordinates: projected easting/northing (EPSG:3035, Europe), geographic latitude/longitude
    # (EGMS L2 has both; then easting/northing win), in ranges from one spot to a region.
    coords = draw(st.sampled_from(["easting/northing", "latitude/longitude", "both"]))
    spread = draw(st.sampled_from([0.0, 1.0, 100.0, 10_000.0, 300_000.0]))
    unit_x = draw(st.lists(st.floats(0, 1), min_size=n_points, max_size=n_points).map(np.array))
    unit_y = draw(st.lists(st.floats(0, 1), min_size=n_points, max_size=n_points).map(np.array))
    if coords == "latitude/longitude":
        lon = draw(st.floats(-10, 30)) + unit_x * spread / 100_000
        lat = draw(st.floats(36, 68)) + unit_y * spread / 100_000
        east, north = _TO_3035.transform(lon, lat)
        geo = {"longitude": lon, "latitude": lat}
    else:
        east = draw(st.floats(2_600_000, 6_000_000)) + unit_x * spread
        north = draw(st.floats(1_400_000, 5_000_000)) + unit_y * spread
        geo = {"longitude": np.full(n_points, 99.0), "latitude": np.full(n_points, 99.0)}  # must be ignored
    values = np.array(
        draw(
            st.lists(
                st.lists(st.floats(-500, 500, allow_nan=False, width=32), min_size=n_dates, max_size=n_dates),
                min_size=n_points,
                max_size=n_points,
            )
        ),
        dtype=np.float32,
    ).reshape(n_points, n_dates)
    # NaN pattern: each cell independently missing, written in one of the usual spellings.
    nan_mask = np.array(
        draw(
            st.lists(st.lists(st.booleans(), min_size=n_dates, max_size=n_dates), min_size=n_points, max_size=n_points)
        )
    ).reshape(n_points, n_dates)
    nan_mask &= draw(st.booleans())  # half the tables have no NaN at all
    nan_text = draw(st.sampled_from(["", "NaN", "nan", "NA"]))
    metadata = draw(st.lists(st.sampled_from(METADATA[3:]), unique=True))
    coordinate_columns = {
        "easting/northing": ["easting", "northing"],
        "latitude/longitude": ["latitude", "longitude"],
        "both": ["easting", "northing", "latitude", "longitude"],
    }[coords]
    if shuffle_dates:
        columns = draw(st.permutations(["pid", *coordinate_columns, *metadata, *date_names]))
    else:
        # Insert the metadata columns at random places between the (ordered) date columns.
        columns = list(date_names)
        for name in draw(st.permutations(["pid", *coordinate_columns, *metadata])):
            columns.insert(draw(st.integers(0, len(columns))), name)
    cells = {
        "pid": [f"PT{i:04d}" for i in range(n_points)],
        "easting": [repr(float(v)) for v in east],
        "northing": [repr(float(v)) for v in north],
        "latitude": [repr(float(v)) for v in geo["latitude"]],
        "longitude": [repr(float(v)) for v in geo["longitude"]],
        "height": ["12.5"] * n_points,
        "mean_velocity": ["-1.25"] * n_points,
        "rmse": ["0.9"] * n_points,
        "mp_type": ["PS"] * n_points,
    }
    for j, name in enumerate(date_names):
        cells[name] = [nan_text if nan_mask[i, j] else repr(float(values[i, j])) for i in range(n_points)]
    line_end = draw(st.sampled_from(["\n", "\r\n"]))
    # Separators and decimal marks of EGMStoolkit and European spreadsheet exports.
    sep, decimal = draw(st.sampled_from([(",", "."), (";", "."), (";", ","), ("\t", "."), ("\t", ",")]))
    for name in cells if decimal == "," else ():
        if name not in ("pid", "mp_type"):
            cells[name] = [v.replace(".", ",") for v in cells[name]]
    text = (
        line_end.join([sep.join(columns)] + [sep.join(cells[c][i] for c in columns) for i in range(n_points)])
        + line_end
    )
    return text, np.asarray(east), np.asarray(north), values, nan_mask, np.array(dates, dtype="datetime64[D]")


@FAST
@given(egms_tables())
def test_csv_reader_any_column_order_date_style_and_nan_pattern(table):
    check_read_points(table)


@settings(FAST)
@given(egms_tables(shuffle_dates=True))
@example(
    (  # unsorted date columns: each value must stay with its own date
        "pid,easting,northing,20150101,20150201,20150125,20150301\nA,4000000.0,3000000.0,1.0,2.0,3.0,4.0\n",
        np.array([4_000_000.0]),
        np.array([3_000_000.0]),
        np.array([[1, 2, 3, 4]], np.float32),
        np.zeros((1, 4), bool),
        np.array(["2015-01-01", "2015-02-01", "2015-01-25", "2015-03-01"], dtype="datetime64[D]"),
    )
)
def test_csv_reader_shuffled_date_columns(table):
    check_read_points(table)


def _pids(text):
    lines = text.splitlines()
    sep = max([",", ";", "\t"], key=lines[0].count)
    col = lines[0].split(sep).index("pid")
    return [line.split(sep)[col] for line in lines[1:]]


def check_read_points(table):
    from insar_raster.io.sanitize import EMPTY_EPOCH_MIN_ROWS

    text, east, north, values, nan_mask, dates = table
    empty = nan_mask.all(axis=0)  # an epoch empty in every row of a big enough file is dropped, not the rows
    if len(values) >= EMPTY_EPOCH_MIN_ROWS and empty.any() and not empty.all():
        values, nan_mask, dates = values[:, ~empty], nan_mask[:, ~empty], dates[~empty]
    keep = ~nan_mask.any(axis=1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tile.csv"
        path.write_text(text)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if not keep.any():
                with pytest.raises(InputError) as info:
                    read_points(path, keep_outliers=True)
                assert "tile.csv" in info.value.message
                return
            # Parsing is the subject here (a few random points may well look like outliers:
            # test_coordinate_outliers_never_widen_the_grid covers those).
            points = read_points(path, keep_outliers=True)
    dropped = [str(w.message) for w in caught if "NaN" in str(w.message)]
    if keep.all():
        assert dropped == []
    else:
        assert len(dropped) == 1 and f"dropped {int((~keep).sum())} point(s)" in dropped[0]

    order = np.argsort(dates)
    assert points.rio.crs == CRS.from_epsg(3035)
    np.testing.assert_array_equal(points.time.values.astype("datetime64[D]"), dates[order])
    assert list(points.pid.values) == [pid for pid, k in zip(_pids(text), keep) if k]
    # Exact for projected input; reprojected (same PROJ pipeline, so to well below a millimetre) for lat/lon.
    np.testing.assert_allclose(points.x.values, east[keep], rtol=0, atol=1e-3)
    np.testing.assert_allclose(points.y.values, north[keep], rtol=0, atol=1e-3)
    np.testing.assert_array_equal(points.displacement.values, values[keep][:, order])
    assert points.displacement.dtype == np.float32


@FAST
@given(
    st.dates(min_value=__import__("datetime").date(1000, 1, 1)).map(lambda d: d.strftime("%Y%m%d")),
    st.sampled_from(["", "D", "dash"]),
)
def test_parse_date_column_round_trip(yyyymmdd, style):
    name = f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}" if style == "dash" else style + yyyymmdd
    if int(yyyymmdd[:4]) < 1000:
        return  # four-digit years only
    assert str(parse_date_column(name)) == f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"
    assert parse_date_column(f" {name} ") == parse_date_column(name)


@FAST
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12))
def test_parse_date_column_never_raises(name):
    result = parse_date_column(name)
    assert result is None or isinstance(result, np.datetime64)


# --------------------------------------------------------------------------- grid spec

coordinate = st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False)
resolution = st.one_of(st.floats(0.01, 5000, allow_nan=False), st.sampled_from([1.0, 10.0, 20.0, 100.0, 250.0]))


@st.composite
def point_clouds(draw):
    n = draw(st.integers(1, 30))
    x0, y0 = draw(coordinate), draw(coordinate)
    spread = draw(st.sampled_from([0.0, 1e-3, 1.0, 1e3, 1e5]))
    dx = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    dy = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    return x0 + dx * spread, y0 + dy * spread


def cell_index(spec: GridSpec, x, y):
    """(row, col) as the gridders compute it (mp_count, block mean)."""
    col = np.floor((x - spec.west) / spec.resolution).astype(np.int64)
    row = np.floor((spec.north - y) / spec.resolution).astype(np.int64)
    return row, col


@FAST
@given(point_clouds(), resolution)
def test_grid_spec_from_resolution_covers_every_point(cloud, res):
    x, y = cloud
    # Keep the grid a sane size (the CLI would be asked for at most a few million cells).
    assume((np.ptp(x) / res + 2) * (np.ptp(y) / res + 2) < 1e7)
    spec = GridSpec.from_points(x, y, "EPSG:3035", resolution=res)
    assert spec.resolution == res
    # Corners snap to multiples of the resolution, so neighbouring runs line up.
    assert math.isclose(spec.west / res, round(spec.west / res), abs_tol=1e-6)
    assert math.isclose(spec.north / res, round(spec.north / res), abs_tol=1e-6)
    row, col = cell_index(spec, x, y)
    assert (col >= 0).all() and (col < spec.width).all(), (spec, x.min(), x.max())
    assert (row >= 0).all() and (row < spec.height).all(), (spec, y.min(), y.max())
    # Not larger than needed: at most one spare column/row. The slack is float rounding:
    # x 0 - 1e-63 and 999.9999999999999 at 25 m snap to west -25 and need column 41
    # ((999.9999999999999 + 25) / 25 rounds to 41.0), 42 columns against 41.999999999999996.
    slack = 1e-9
    assert spec.width <= np.ptp(x) / res + 2 + slack and spec.height <= np.ptp(y) / res + 2 + slack
    # Cell centres, transform and bounds agree.
    assert np.all(np.diff(spec.x) > 0) and np.all(np.diff(spec.y) < 0)
    assert spec.transform @ (0.5, 0.5) == pytest.approx((spec.x[0], spec.y[0]))
    west, south, east, north = spec.bounds
    assert east - west == pytest.approx(spec.width * res) and north - south == pytest.approx(spec.height * res)


@FAST
@given(point_clouds(), st.integers(1, 300), st.integers(1, 300))
def test_grid_spec_from_shape_covers_the_extent(cloud, height, width):
    x, y = cloud
    spec = GridSpec.from_points(x, y, "EPSG:3035", resolution=None, shape=(height, width))
    assert spec.shape == (height, width)
    assert spec.resolution > 0
    west, south, east, north = spec.bounds
    tol = 1e-9 * max(1.0, np.abs(x).max(), np.abs(y).max())
    assert west <= x.min() + tol and east >= x.max() - tol
    assert south <= y.min() + tol and north >= y.max() - tol
    # The cell is the smallest square that covers the extent in the tighter direction (up to
    # the few ulps added so that MPs on the east/south edge still fall inside a cell).
    if np.ptp(x) > 0 or np.ptp(y) > 0:
        exact = max(np.ptp(x) / width, np.ptp(y) / height)
        slack = 1e-9 * exact + 16 * np.spacing(max(np.abs(x).max(), np.abs(y).max())) / min(width, height)
        assert exact * (1 - 1e-12) <= spec.resolution <= exact + slack
    # Every MP falls in a cell by the gridders' index formula (not only on the closed boundary).
    row, col = cell_index(spec, x, y)
    assert (col >= 0).all() and (col < width).all() and (row >= 0).all() and (row < height).all()


@FAST
@given(
    st.one_of(st.floats(allow_nan=True), st.just(0.0), st.floats(max_value=0)),
)
def test_grid_spec_rejects_non_positive_or_non_finite_resolution(res):
    assume(not (res > 0 and math.isfinite(res)))
    with pytest.raises(InputError) as info:
        GridSpec.from_points(np.array([0.0, 1.0]), np.array([0.0, 1.0]), "EPSG:3035", resolution=res)
    assert info.value.param == "resolution" and info.value.path is None


@FAST
@given(point_clouds(), st.floats(1, 1000))
@example((np.full(15, -5e-324), np.zeros(15)), 2.0)  # subnormal west edge (found by hypothesis)
def test_grid_spec_with_bounds_contains_the_bounds(cloud, res):
    x, y = cloud
    west, east = sorted((float(x.min()), float(x.max()) + res))
    south, north = sorted((float(y.min()), float(y.max()) + res))
    assume((east - west) / res * (north - south) / res < 1e7)
    spec = GridSpec.from_points(x, y, "EPSG:3035", resolution=res, bounds=(west, south, east, north))
    gw, gs, ge, gn = spec.bounds
    assert gw <= west and gn >= north
    assert ge >= east - 1e-6 * max(1, abs(east)) and gs <= south + 1e-6 * max(1, abs(south))


@FAST
@given(
    point_clouds(),
    st.one_of(
        st.tuples(st.just("resolution"), st.sampled_from([1.0, 7.5, 100.0, 1000.0])),
        st.tuples(st.just("shape"), st.tuples(st.integers(1, 40), st.integers(1, 40))),
    ),
)
def test_every_point_is_counted_in_some_cell(cloud, grid):
    """Spec and gridder agree: the mp_count layer accounts for every measurement point."""
    from insar_raster.grid.gridding import grid_points
    from insar_raster.io.points import make_points

    x, y = cloud
    mode, value = grid
    assume(mode == "shape" or (np.ptp(x) / value + 2) * (np.ptp(y) / value + 2) < 1e5)
    times = np.array(["2020-01-01", "2020-01-13"], dtype="datetime64[D]")
    points = make_points(x, y, np.zeros((len(x), 2)), times, "EPSG:3035")
    kwargs = {"resolution": value} if mode == "resolution" else {"resolution": None, "shape": value}
    cube = grid_points(points, method="nearest", **kwargs)
    assert int(cube.mp_count.sum()) == len(x)
