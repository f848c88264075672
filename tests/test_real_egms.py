"""EGMS files as Copernicus ships them, quirks included, through every reader and check.

The zips below are written byte for byte like the 2020_2024 downloads: the full header,
the CSV (and its .xml) inside a folder of the zip, CRLF line ends, numbers written both
``-0.1`` and ``-1.2e-01``, empty values, an MP without any value, irregular dates (6- and
12-day revisits and a gap of months), bursts of one track with slightly different dates.
"""

import zipfile

import numpy as np
import pytest
from pyproj import Transformer

from insar_raster.errors import InputError
from insar_raster.io import egms
from insar_raster.io.cache import cached_points
from insar_raster.io.points import read_points

L2 = egms.HEADERS["2020_2024 L2b"]
ASC = {"track_angle": "-9.4912", "incidence_angle": "38.1022", "los_east": "-0.608714", "los_north": "-0.101634"}
ASC["los_up"] = "0.786913"
DESC = {"track_angle": "190.5830", "incidence_angle": "41.3101", "los_east": "0.648021", "los_north": "-0.121202"}
DESC["los_up"] = "0.751655"


def irregular_dates(first="2020-01-05", n6=8, n12=4, gap=150, n_after=6):
    """6-day, then 12-day revisits, a gap of ``gap`` days, then 6-day again."""
    days = [6 * k for k in range(n6)]
    days += [days[-1] + 12 * (k + 1) for k in range(n12)]
    days += [days[-1] + gap + 6 * k for k in range(n_after)]
    return np.datetime64(first) + np.array(days).astype("timedelta64[D]")


def real_zip(folder, name, dates, n=12, geometry=ASC, seed=0, x0=3180050.0):
    """An EGMS 2020_2024 L2b zip as downloaded, and the series (n, dates) it holds (mm, NaN
    where empty): MP 3 has two empty epochs, MP 5 none at all, every third MP's numbers
    are written in scientific notation."""
    rng = np.random.default_rng(seed)
    values = np.round(np.cumsum(rng.normal(0, 1.5, (n, len(dates))), axis=1), 2)
    values[:, 0] = 0.0  # the first epoch is the reference
    values[3, [2, 7]] = np.nan
    values[5, :] = np.nan
    east = x0 + 37.3 * np.arange(n)
    north = 3469950.0 - 41.9 * np.arange(n)
    lon, lat = Transformer.from_crs("EPSG:3035", "EPSG:4326", always_xy=True).transform(east, north)
    lines = [",".join(list(L2) + [str(d).replace("-", "") for d in dates])]
    for i in range(n):
        meta = {
            "pid": f"1J2s3Kx{seed}{i:05d}",
            "mp_type": "PS" if i % 2 else "DS",
            "latitude": f"{lat[i]:.7f}",
            "longitude": f"{lon[i]:.7f}",
            "easting": f"{east[i]:.1f}",
            "northing": f"{north[i]:.1f}",
            "line": str(1000 + i),
            "pixel": str(300 + i),
            "gnss_velocity": "" if i % 4 else "-0.5",
            **geometry,
        }
        row = [meta.get(c, f"{rng.normal():.2f}") for c in L2]
        sci = i % 3 == 0
        row += ["" if not np.isfinite(v) else (f"{v:.2e}" if sci else f"{v:.2f}") for v in values[i]]
        lines.append(",".join(row))
    stem = name[:-4]
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{stem}/{stem}.csv", "\r\n".join(lines) + "\r\n")
        zf.writestr(f"{stem}/{stem}.xml", f'<?xml version="1.0" encoding="UTF-8"?>\r\n<product name="{stem}"/>\r\n')
    return path, values, east, north


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_a_real_layout_zip_reads_exactly(tmp_path, reader):
    dates = irregular_dates()
    path, values, east, north = real_zip(tmp_path, "EGMS_L2b_015_0100_IW1_VV_2020_2024_1.zip", dates)
    with pytest.warns(UserWarning, match=r"dropped 2 point\(s\) with missing"):
        pts = read_points(path) if reader == "memory" else cached_points(path, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(pts.time.values.astype("datetime64[D]"), dates)
    kept = np.isfinite(values).all(axis=1)  # MP 3 (two empty epochs) and MP 5 (none) dropped
    assert list(pts.pid.values) == [f"1J2s3Kx0{i:05d}" for i in np.flatnonzero(kept)]
    # Every number as written, -1.2e-01 as well as -0.12; coordinates are easting/northing.
    np.testing.assert_allclose(np.asarray(pts.displacement.values), values[kept], atol=6e-3)
    np.testing.assert_array_equal(pts.x.values, east[kept])
    np.testing.assert_array_equal(pts.y.values, north[kept])
    assert pts.rio.crs.to_epsg() == 3035
    assert (pts.attrs["product_level"], pts.attrs["track"], pts.attrs["pass_direction"]) == ("L2b", 15, "ascending")
    np.testing.assert_allclose(pts["los_up"].values, 0.786913, rtol=1e-6)


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_series_stay_relative_to_the_first_kept_epoch(tmp_path, reader):
    """Dropping an input's first epoch (a start date, or a date another burst lacks) must
    re-reference its series: a cube is relative to its first epoch."""
    dates = irregular_dates()
    a, va, *_ = real_zip(tmp_path, "EGMS_L2b_015_0100_IW1_VV_2020_2024_1.zip", dates, seed=1)
    b, vb, *_ = real_zip(tmp_path, "EGMS_L2b_015_0101_IW2_VV_2020_2024_1.zip", dates[1:], seed=2, x0=3181050.0)

    def read(paths, **kw):
        with pytest.warns(UserWarning):
            if reader == "memory":
                return read_points(paths, **kw)
            return cached_points(paths, cache_dir=tmp_path / f"cache{len(kw)}", **kw)

    pts = read([a, b])  # burst b has no 2020-01-05: the common first epoch is a's second
    assert pts.time.values[0].astype("datetime64[D]") == dates[1] and pts.attrs["epochs_dropped"] == 1
    disp = np.asarray(pts.displacement.values)
    np.testing.assert_array_equal(disp[:, 0], 0.0)
    ka = np.isfinite(va).all(axis=1)
    np.testing.assert_allclose(disp[: ka.sum()], (va[:, 1:] - va[:, 1:2])[ka], atol=6e-3)
    kb = np.isfinite(vb).all(axis=1)
    np.testing.assert_allclose(disp[ka.sum() :], vb[kb], atol=6e-3)  # already relative to its first
    late = read(a, start=str(dates[9]))
    np.testing.assert_array_equal(np.asarray(late.displacement.values)[:, 0], 0.0)
    kl = np.isfinite(va[:, 9:]).all(axis=1)  # MP 3's empty epochs lie before the start: kept
    assert kl.sum() == ka.sum() + 1
    np.testing.assert_allclose(np.asarray(late.displacement.values), (va[:, 9:] - va[:, 9:10])[kl], atol=6e-3)


def _geometry(level=None, track=None, direction=None):
    return egms.Geometry(level, track, direction)


@pytest.mark.parametrize(
    ("cube_attrs", "points", "ok"),
    [
        ({"product_level": "L2b", "track": 15, "pass_direction": "ascending"}, _geometry("L2b", 15, "ascending"), True),
        # L2a and L2b of one track: the same LOS against other references (grid refuses them together)
        (
            {"product_level": "L2b", "track": 15, "pass_direction": "ascending"},
            _geometry("L2a", 15, "ascending"),
            False,
        ),
        ({"product_level": "L2a", "track": 15}, _geometry("L2b", 15, "ascending"), False),
        (
            {"product_level": "L2b", "track": 15, "pass_direction": "ascending"},
            _geometry("L2b", 139, "descending"),
            False,
        ),
        (
            {"product_level": "L2b", "track": 15, "pass_direction": "ascending"},
            _geometry("L2b", 88, "ascending"),
            False,
        ),
        ({"product_level": "L2b", "track": 15, "pass_direction": "ascending"}, _geometry("L3U"), False),
        ({"product_level": "L3U"}, _geometry("L3U"), True),
        ({"product_level": "L2a", "track": 15}, _geometry("L2a", 15, "ascending"), True),
        ({"product_level": "L3U"}, _geometry("L3E"), False),
        ({"component": "vertical"}, _geometry("L3U"), True),
        ({"component": "vertical"}, _geometry("L2b", 15, "ascending"), False),
        ({"component": "east_west"}, _geometry("L3E"), True),
        ({"component": "east_west"}, _geometry("L3U"), False),
        ({}, _geometry("L2b", 15, "ascending"), True),  # a cube of unknown geometry (another tool's)
        ({"component": "vertical"}, _geometry(), True),  # points of unknown geometry
    ],
)
def test_points_must_measure_what_the_cube_holds(cube_attrs, points, ok):
    if ok:
        egms.check_points_on_cube(points, cube_attrs, "pts.zip")
        return
    with pytest.raises(InputError) as err:
        egms.check_points_on_cube(points, cube_attrs, "pts.zip")
    text = str(err.value)
    assert "pts.zip" in text and str(points) in text and "--" not in text


def test_cli_forecast_refuses_los_points_on_a_vertical_cube_before_training(tmp_path, capsys, monkeypatch):
    import xarray as xr

    import insar_raster.forecast.forecaster as forecaster
    from insar_raster.cli import main
    from insar_raster.gis.write import write_cube
    from insar_raster.grid.spec import GridSpec
    from insar_raster.io.cube import make_cube

    dates = irregular_dates()
    asc, *_ = real_zip(tmp_path, "EGMS_L2b_015_0100_IW1_VV_2020_2024_1.zip", dates)
    spec = GridSpec("EPSG:3035", 100.0, 3180000.0, 3470000.0, 6, 6)
    data = np.zeros((len(dates), 6, 6), np.float32)
    cube = make_cube(data, dates, spec).rename({"displacement": "vertical"})
    cube["east_west"] = xr.zeros_like(cube["vertical"])
    path = write_cube(cube, tmp_path / "ortho.nc")
    monkeypatch.setattr(forecaster, "train_model", lambda *a, **k: pytest.fail("trained before checking the points"))
    out = tmp_path / "f.gpkg"
    code = main(["forecast", str(path), "--points", str(asc), "-o", str(out), "-q"])
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning:")]
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "L2b track 15 ascending" in err[0] and "'vertical' decomposed" in err[0] and "L3 Up" in err[0]


def test_bounds_on_the_egms_grid_are_the_grid_edges(tmp_path):
    """An EGMS L3 tile's bounds give its 1000 x 1000 cells (not 1001 x 1001), edges on
    multiples of 100 m; a point on the east/south edge belongs to the next tile."""
    import xarray as xr

    from insar_raster.cli import main
    from insar_raster.grid.spec import GridSpec

    tile = (3200000.0, 3400000.0, 3300000.0, 3500000.0)  # E32N34
    spec = GridSpec.from_points(np.array([3250000.0]), np.array([3450000.0]), "EPSG:3035", bounds=tile)
    assert spec.shape == (1000, 1000) and spec.bounds == tile
    path, values, east, north = real_zip(tmp_path, "EGMS_L2b_015_0100_IW1_VV_2020_2024_1.zip", irregular_dates(), n=12)
    # 400 m x 600 m on the 100 m grid; the MP at easting 3180311.1 lies inside, the one at
    # 3180348.4 too, those beyond 3180400 not.
    out = tmp_path / "c.nc"
    code = main(["grid", str(path), "--bounds", "3180000,3469400,3180400,3470000", "-o", str(out), "-q"])
    assert code == 0
    with xr.open_dataset(out) as cube:
        assert (cube.sizes["y"], cube.sizes["x"]) == (6, 4)
        np.testing.assert_array_equal(cube.x.values, [3180050.0, 3180150.0, 3180250.0, 3180350.0])
        assert int(cube["mp_count"].sum()) == int(((east < 3180400) & np.isfinite(values).all(axis=1)).sum())


def test_forecast_dates_follow_the_current_revisit(tmp_path):
    """EGMS 2020_2024: 6-day revisits until Sentinel-1B's loss, 12-day after (more 6-day
    gaps in all). The forecast epochs must come every 12 days, as the next acquisitions."""
    import xarray as xr
    from cli_args import TINY_TRAIN

    from insar_raster.cli import main
    from insar_raster.forecast.data import acquisition_step_days
    from insar_raster.gis.write import write_cube
    from insar_raster.grid.spec import GridSpec
    from insar_raster.io.cube import make_cube

    days = np.concatenate([6 * np.arange(40), 6 * 39 + 12 * np.arange(1, 26)])
    dates = np.datetime64("2020-01-05") + days.astype("timedelta64[D]")
    rng = np.random.default_rng(0)
    data = np.cumsum(rng.normal(0, 1, (len(dates), 16, 16)), axis=0).astype(np.float32)
    cube = make_cube(data - data[:1], dates, GridSpec("EPSG:3035", 100.0, 3180000.0, 3470000.0, 16, 16))
    assert np.median(np.diff(days)) == 6 and acquisition_step_days(cube) == 12
    path = write_cube(cube, tmp_path / "cube.nc")
    out = tmp_path / "f.nc"
    assert main(["forecast", str(path), "-o", str(out), *TINY_TRAIN, "-q"]) == 0
    with xr.open_dataset(out) as fc:
        got = fc.time.values.astype("datetime64[D]")
    np.testing.assert_array_equal(got, dates[-1] + np.array([12, 24]).astype("timedelta64[D]"))


def test_cli_grid_suggests_decompose_only_where_it_applies(tmp_path, capsys):
    from test_egms import write_egms_zip

    from insar_raster.cli import main

    l3 = egms.HEADERS["2020_2024 L3"]
    up = write_egms_zip(tmp_path / "EGMS_L3_E32N34_100km_U_2020_2024_1.zip", l3)
    east = write_egms_zip(tmp_path / "EGMS_L3_E32N34_100km_E_2020_2024_1.zip", l3)
    assert main(["grid", str(up), str(east), "-o", str(tmp_path / "c.nc")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "L3U (vertical)" in err[0] and "L3E (east-west)" in err[0]
    assert "separate run" in err[0] and "--decompose" not in err[0]
    asc = write_egms_zip(tmp_path / "EGMS_L2b_088_0286_IW2_VV_2020_2024_1.zip", egms.HEADERS["2020_2024 L2b"])
    assert main(["grid", str(asc), str(up), "-o", str(tmp_path / "c.nc")]) == 2
    assert "--decompose" not in capsys.readouterr().err


def test_cli_decomposed_cube_dates_hint_and_time_origin(tmp_path, capsys):
    """L3 Up points on another 6-day grid than a decomposed cube's: the one error line
    says how to put the cube on the points' dates (``--time-origin``); grid refuses
    ``--time-origin`` without ``--decompose``; a decomposed cube's default name says so."""
    import xarray as xr
    from test_egms import write_egms_zip

    from insar_raster.cli import main
    from insar_raster.gis.write import write_cube
    from insar_raster.grid.spec import GridSpec
    from insar_raster.io.cube import make_cube

    cube_dates = np.datetime64("2020-01-02") + 6 * np.arange(14).astype("timedelta64[D]")
    spec = GridSpec("EPSG:3035", 100.0, 3180000.0, 3470600.0, 6, 6)
    cube = make_cube(np.zeros((14, 6, 6), np.float32), cube_dates, spec).rename({"displacement": "vertical"})
    cube["east_west"] = xr.zeros_like(cube["vertical"])
    cube.attrs.update(time_step_days=6)
    path = write_cube(cube, tmp_path / "ortho.nc")
    l3_dates = [str(d).replace("-", "") for d in cube_dates + np.timedelta64(3, "D")]
    up = write_egms_zip(
        tmp_path / "EGMS_L3_E31N34_100km_U_2020_2024_1.zip", egms.HEADERS["2020_2024 L3"], dates=l3_dates
    )
    out = tmp_path / "f.gpkg"
    assert main(["forecast", str(path), "--points", str(up), "-o", str(out), "-q"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning:")]
    assert len(err) == 1 and not out.exists()
    assert "not in the points" in err[0] and "--time-origin 2020-01-05" in err[0]

    zips = [real_zip(tmp_path, "EGMS_L2b_015_0100_IW1_VV_2020_2024_1.zip", cube_dates)[0]]
    assert main(["grid", str(zips[0]), "--time-origin", "2020-01-05"]) == 2
    assert "--time-origin" in capsys.readouterr().err
    assert not list(tmp_path.glob("*_cube.nc"))
    from insar_raster.cli.grid import default_output

    assert default_output(zips[0], decompose=True).name == "EGMS_L2b_015_0100_IW1_VV_2020_2024_1_decomposed.nc"


def test_cli_baseline_names_without_release_suffix_keep_their_geometry(tmp_path, capsys):
    """The baseline's and first update's files have no ``_{release}_{version}`` suffix
    (EGMS_L3_E40N28_100km_E.zip): their level and track still come from the name, so Up
    and East tiles (same header) are not merged into one cube."""
    from test_egms import write_egms_zip

    from insar_raster.cli import main

    old = egms.HEADERS["2018_2022 L3"]
    up = write_egms_zip(tmp_path / "EGMS_L3_E40N28_100km_U.zip", old)
    east = write_egms_zip(tmp_path / "EGMS_L3_E40N28_100km_E.zip", old)
    out = tmp_path / "c.nc"
    assert main(["grid", str(up), str(east), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "L3U (vertical)" in err[0] and "L3E (east-west)" in err[0] and not out.exists()
    burst = write_egms_zip(tmp_path / "EGMS_L2b_088_0286_IW2_VV.zip", egms.HEADERS["2018_2022 L2b"])
    pts = read_points(burst)
    assert pts.attrs["product_level"] == "L2b" and pts.attrs["track"] == 88
