"""Gridding: sparse weights vs scipy, gap mask, chunked writing, real file round trips."""

import numpy as np
import pytest
import rasterio
import xarray as xr
from pyproj import CRS
from scipy.interpolate import LinearNDInterpolator

from insar_raster.cli import main
from insar_raster.gis.write import write_cube
from insar_raster.grid.gridders import METHODS, make_gridder
from insar_raster.grid.gridding import grid_points
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import open_cube
from insar_raster.io.points import make_points, write_points


def test_linear_matches_independent_linearndinterpolator(small_scene):
    points, _ = small_scene
    cube = grid_points(points, method="linear", max_gap=np.inf).compute()
    xx, yy = np.meshgrid(cube.x.values, cube.y.values)
    epochs = [1, 17, 39]
    refs = LinearNDInterpolator(np.c_[points.x.values, points.y.values], points.displacement.values[:, epochs])(xx, yy)
    for j, k in enumerate(epochs):
        ref = refs[..., j]
        got = cube.displacement.values[k]
        inside = np.isfinite(ref)
        assert inside.mean() > 0.8
        np.testing.assert_allclose(got[inside], ref[inside], atol=1e-3)
        assert np.isnan(got[~inside]).all()  # outside the hull: no extrapolation


def test_triangulation_is_exactly_delaunay():
    """No MP lies strictly inside any triangle's circumcircle, decided in integer
    arithmetic (coordinates on a 0.1 m grid, as EGMS ships them, at EPSG:3035 magnitudes),
    and every MP is a vertex."""
    from scipy.spatial import cKDTree

    from insar_raster.grid.gridders import Triangulation

    rng = np.random.default_rng(5)
    units = rng.integers(0, 20_000, size=(8000, 2))  # 2 km x 2 km in 0.1 m units
    units = np.unique(units, axis=0)
    origin = np.array([31_500_000, 33_500_000])  # 3150 km, 3350 km in 0.1 m units
    xy = (units + origin) / 10.0
    tri = Triangulation(xy)
    assert tri.simplices.shape[1] == 3 and set(np.unique(tri.simplices)) == set(range(len(xy)))
    a, b, c = (units[tri.simplices[:, k]] for k in range(3))
    orient = np.sign((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    assert (orient != 0).all()
    # Candidates: MPs within the (float) circumradius plus a margin; the test itself is exact.
    centre = xy[tri.simplices].mean(axis=1)
    radius = np.linalg.norm(xy[tri.simplices[:, 0]] - centre, axis=1) * 2
    tree = cKDTree(xy)
    for t, near in enumerate(tree.query_ball_point(centre, radius)):
        d = units[[i for i in near if i not in tri.simplices[t]]]
        if len(d) == 0:
            continue
        ax, ay = a[t][0] - d[:, 0], a[t][1] - d[:, 1]
        bx, by = b[t][0] - d[:, 0], b[t][1] - d[:, 1]
        cx, cy = c[t][0] - d[:, 0], c[t][1] - d[:, 1]
        # |offsets| < 2e4 units: every term stays below 2**63.
        det = (
            (ax * ax + ay * ay) * (bx * cy - cx * by)
            - (bx * bx + by * by) * (ax * cy - cx * ay)
            + (cx * cx + cy * cy) * (ax * by - bx * ay)
        )
        assert (det * orient[t] <= 0).all(), f"triangle {t} has an MP inside its circumcircle"


def test_cell_location_does_not_depend_on_batching(monkeypatch):
    """Triangles are rasterised in batches to bound memory; tiny batches (one triangle
    larger than a batch included) must locate every cell as one batch does."""
    from insar_raster.grid import gridders

    rng = np.random.default_rng(8)
    xy = np.c_[rng.uniform(0, 2000, 300), rng.uniform(0, 2000, 300)] + 3_300_000
    xy = np.r_[xy, [[3_290_000, 3_295_000]]]  # a far MP: long triangles over many cells
    gs = GridSpec("EPSG:3035", 50.0, 3_289_000.0, 3_302_100.0, 270, 270)
    tri = gridders.Triangulation(xy)
    simplex, bary = tri.locate_cells(gs)
    monkeypatch.setattr(gridders, "LOCATE_BATCH", 7)
    simplex_small, bary_small = tri.locate_cells(gs)
    assert (simplex >= 0).mean() > 0.05  # the hull covers part of the grid
    np.testing.assert_array_equal(simplex_small >= 0, simplex >= 0)
    # A cell on a shared edge may pick the other triangle: compare interpolated values.
    values = rng.normal(0, 1, len(xy))
    inside = simplex >= 0
    got = (bary_small[inside] * values[tri.simplices[simplex_small[inside]]]).sum(1)
    want = (bary[inside] * values[tri.simplices[simplex[inside]]]).sum(1)
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_coincident_mps_are_gridded_once():
    """Two MPs at the same place (merged products, a PS and a DS): the triangulation keeps
    one, so the cube equals the one gridded without the copies."""
    rng = np.random.default_rng(4)
    x, y = rng.uniform(0, 3000, 400) + 3_200_000, rng.uniform(0, 3000, 400) + 3_400_000
    values = rng.normal(0, 4, (400, 2))
    times = np.array(["2020-01-01", "2020-01-13"], "datetime64[D]")
    gs = GridSpec("EPSG:3035", 100.0, 3_200_000.0, 3_403_000.0, 30, 30)
    once = grid_points(make_points(x, y, values, times, "EPSG:3035"), grid_spec=gs).compute()
    twice = grid_points(
        make_points(np.r_[x, x[:50]], np.r_[y, y[:50]], np.r_[values, values[:50]], times, "EPSG:3035"), grid_spec=gs
    ).compute()
    assert np.isfinite(once.displacement.values).mean() > 0.8
    np.testing.assert_allclose(twice.displacement.values, once.displacement.values, atol=1e-5)
    assert int(twice.mp_count.sum()) == int(once.mp_count.sum()) + 50


def test_cells_on_mps_and_edges_take_exact_values():
    """MPs exactly at cell centres (and cells on triangle edges between them): the cell
    must be found, not lost to round-off, and take the MP's value."""
    gs = GridSpec("EPSG:3035", 100.0, 3_200_000.0, 3_402_000.0, 20, 20)
    xx, yy = np.meshgrid(gs.x, gs.y)
    hole = np.zeros(xx.shape, bool)
    hole[5:15:2, 5:15:2] = True  # single empty cells: on an edge of the square around them
    rng = np.random.default_rng(2)
    values = rng.normal(0, 5, (int((~hole).sum()), 2))
    points = make_points(
        xx[~hole], yy[~hole], values, np.array(["2020-01-01", "2020-01-13"], "datetime64[D]"), "EPSG:3035"
    )
    cube = grid_points(points, grid_spec=gs, method="linear").compute()
    got = cube.displacement.values[1]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[~hole], values[:, 1], atol=1e-5)
    # An empty cell is the centre of the square (a diamond) of its four edge neighbours,
    # which are cocircular: whichever diagonal is used, the cell lies on it and takes the
    # mean of its two ends.
    grid = np.full(xx.shape, np.nan)
    grid[~hole] = values[:, 1]
    for r, c in zip(*np.nonzero(hole)):
        diagonals = [(grid[r - 1, c] + grid[r + 1, c]) / 2, (grid[r, c - 1] + grid[r, c + 1]) / 2]
        assert np.isclose(got[r, c], diagonals, atol=1e-5).any()


@pytest.mark.parametrize("method", METHODS)
def test_gridding_error_against_truth_is_within_noise(small_scene, method):
    points, truth = small_scene
    cube = grid_points(points, method=method).compute()
    err = cube.displacement.values - truth.displacement.values
    rmse = float(np.sqrt(np.nanmean(err**2)))
    # The points' own error against the common motion at their positions: atmosphere
    # (1.5 mm) plus each MP's offset, seasonal amplitude and 2-4 mm noise (~4.7 mm here).
    at_points = truth.displacement.interp(x=("point", points.x.values), y=("point", points.y.values)).values.T
    per_point = float(np.sqrt(np.nanmean((points.displacement.values - at_points) ** 2)))
    print(f"{method}: gridding RMSE vs truth {rmse:.2f} mm, points {per_point:.2f} mm")
    assert 3.0 < per_point < 6.0
    # Gridding must not add much to the points' own error.
    assert rmse < 1.25 * per_point


def test_gap_mask_blanks_cells_far_from_points():
    # Two clusters of MPs 5 km apart: linear interpolation would bridge them.
    rng = np.random.default_rng(0)
    xa, ya = rng.uniform(0, 1000, 200), rng.uniform(0, 1000, 200)
    xb, yb = rng.uniform(6000, 7000, 200), rng.uniform(0, 1000, 200)
    x, y = np.r_[xa, xb], np.r_[ya, yb]
    values = np.c_[np.zeros(400), np.r_[np.full(200, -10.0), np.full(200, 10.0)]]
    pts = make_points(x + 3e6, y + 3e6, values, np.array(["2020-01-01", "2020-01-13"], "datetime64[D]"), "EPSG:3035")
    cube = grid_points(pts, resolution=100, max_gap=300).compute()
    gap = (cube.x > 3e6 + 1600) & (cube.x < 3e6 + 5400)
    assert np.isnan(cube.displacement.isel(time=1).where(gap, drop=True)).all()
    assert (cube.distance_to_mp.where(gap, drop=True) > 300).all()
    bridged = grid_points(pts, resolution=100, max_gap=np.inf).compute()
    assert np.isfinite(bridged.displacement.isel(time=1).where(gap, drop=True)).mean() > 0.5
    assert int(cube.mp_count.sum()) == 400


def test_cube_written_chunk_by_chunk(small_scene, tmp_path, monkeypatch):
    """A cube longer than one time chunk is computed block by block, never whole."""
    points, _ = small_scene
    gs = GridSpec.from_points(points.x.values, points.y.values, points.rio.crs, resolution=100)
    gridder = make_gridder("linear", gs).fit((points.x.values, points.y.values))
    seen = []
    original = gridder._apply_block

    def spy(block):
        seen.append(block.shape[1])
        return original(block)

    monkeypatch.setattr(gridder, "_apply_block", spy)
    import dask.array as da

    values = da.from_array(points.displacement.values, chunks=(-1, 8))
    cube = gridder.grid(points.time.values, values)
    assert cube.displacement.data.numblocks[0] == 5
    write_cube(cube, tmp_path / "c.nc")
    assert sorted(seen) == [8] * 5  # 40 epochs in 5 chunks of 8, each computed once
    back = open_cube(tmp_path / "c.nc")
    assert back.sizes["time"] == 40


def _check_georef(cube_path, gs):
    with rasterio.open(f"netcdf:{cube_path}:displacement") as src:
        assert CRS.from_user_input(src.crs) == gs.crs
        assert src.transform.almost_equals(gs.transform)
        assert src.count == 40


@pytest.mark.parametrize("fmt,layout", [(".csv", "L2b"), (".csv", "L3UD"), (".gpkg", None)])
def test_cli_grid_round_trip(tmp_path, small_scene, fmt, layout, capsys):
    points, _ = small_scene
    src = write_points(points, tmp_path / f"pts{fmt}", layout=layout or "L2b")
    assert main(["grid", str(src), "--resolution", "100", "-q"]) == 0
    out = tmp_path / "pts_cube.nc"
    ds = xr.open_dataset(out, decode_coords="all")
    assert ds.displacement.dims == ("time", "y", "x")
    assert ds.displacement.dtype == np.float32
    assert ds.displacement.attrs["units"] == "mm"
    assert ds.x.attrs["standard_name"] == "projection_x_coordinate" and ds.y.attrs["units"] == "m"
    assert bool((np.diff(ds.y.values) < 0).all()) and bool((np.diff(ds.x.values) > 0).all())
    assert np.issubdtype(ds.time.dtype, np.datetime64)
    np.testing.assert_array_equal(ds.time.values, points.time.values)
    assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["method"] == "linear"
    import netCDF4

    with netCDF4.Dataset(out) as raw:  # CF: no missing values on coordinates
        assert not any("_FillValue" in raw[c].ncattrs() for c in ("x", "y", "time"))
    assert ds.rio.crs == CRS.from_epsg(3035)
    gs = GridSpec.from_points(points.x.values, points.y.values, "EPSG:3035", resolution=100)
    if layout != "L3UD":
        assert ds.sizes["y"] == gs.height and ds.sizes["x"] == gs.width
        _check_georef(out, gs)
    # Compression and chunking are on.
    enc = ds.displacement.encoding
    assert enc.get("zlib") and enc.get("chunksizes")
    # Refuses to overwrite, then does with --overwrite.
    assert main(["grid", str(src), "-q"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["grid", str(src), "-q", "--overwrite", "--method", "mean"]) == 0


def test_cli_grid_shape_and_bounds(tmp_path, small_scene, capsys):
    points, _ = small_scene
    src = write_points(points, tmp_path / "p.parquet")
    w, s = points.x.values.min(), points.y.values.min()
    bounds = f"{w:.0f},{s:.0f},{w + 2000:.0f},{s + 1500:.0f}"
    assert main(["grid", str(src), "--shape", "30x40", "--bounds", bounds, "-o", str(tmp_path / "c.nc"), "-q"]) == 0
    inside = ((points.x >= w) & (points.x <= w + 2000) & (points.y >= s) & (points.y <= s + 1500)).sum()
    assert (
        f"warning: ignored {points.sizes['point'] - int(inside)} measurement point(s) outside --bounds"
        in capsys.readouterr().err
    )
    ds = open_cube(tmp_path / "c.nc")
    assert ds.sizes["y"] == 30 and ds.sizes["x"] == 40
    west, south, east, north = ds.rio.bounds()
    assert west <= w + 1 and east >= w + 1999 and north >= s + 1499


def test_zarr_output_round_trip(tmp_path, small_scene):
    points, _ = small_scene
    cube = grid_points(points, resolution=200)
    write_cube(cube, tmp_path / "c.zarr")
    back = open_cube(tmp_path / "c.zarr")
    assert back.rio.crs == CRS.from_epsg(3035)
    np.testing.assert_allclose(back.displacement.values, cube.displacement.values, equal_nan=True)


def test_netcdf_chunks_split_the_grid_evenly():
    """Spatial chunks are equal parts of at most 256 cells: no padded chunk to compress."""
    from insar_raster.io.cube import netcdf_encoding

    ds = xr.Dataset({"displacement": (("time", "y", "x"), np.zeros((20, 449, 100), np.float32))})
    assert netcdf_encoding(ds)["displacement"]["chunksizes"] == (16, 225, 100)
    ds = xr.Dataset({"displacement": (("time", "y", "x"), np.zeros((3, 1000, 256), np.float32))})
    assert netcdf_encoding(ds, time_chunk=8)["displacement"]["chunksizes"] == (3, 250, 256)


def test_netcdf_chunks_fit_inside_dask_blocks():
    """Tiled cubes: no file chunk may straddle two tiles or two time blocks."""
    import dask.array as da

    from insar_raster.io.cube import netcdf_encoding

    def chunks(shape, blocks):
        return netcdf_encoding(
            xr.Dataset({"displacement": (("time", "y", "x"), da.zeros(shape, np.float32, chunks=blocks))})
        )["displacement"]["chunksizes"]

    assert chunks((300, 1415, 1416), (8, 256, 256)) == (8, 256, 256)  # not 16 x 236 x 236
    assert chunks((100, 449, 448), (32, -1, -1)) == (16, 225, 224)  # one block: even split
    assert chunks((100, 600, 600), (24, 200, 300)) == (12, 200, 150)  # divisors of the blocks


def test_grid_spec_repr_with_a_crs_given_as_text():
    """Specs built with ``crs="EPSG:3035"`` (synth, users) print like those built with a CRS."""
    from pyproj import CRS

    from insar_raster.grid.spec import GridSpec

    as_text = GridSpec("EPSG:3035", 100.0, 4_000_000.0, 3_000_000.0, 4, 3)
    assert repr(as_text) == repr(GridSpec(CRS.from_epsg(3035), 100.0, 4_000_000.0, 3_000_000.0, 4, 3))
    assert "crs='EPSG:3035'" in repr(as_text)


def test_cli_start_or_end_alone_outside_the_data_names_only_that_option(tmp_path, capsys):
    """Was: '--start/--end: no epoch between 2030-01-01 and None'."""
    from insar_raster.synth import make_scene

    points, _ = make_scene(200, (10, 10), 12, seed=1)
    csv = write_points(points, tmp_path / "p.csv")
    assert main(["grid", str(csv), "--start", "2030-01-01", "-o", str(tmp_path / "a.nc")]) == 2
    assert "error: --start: no epoch from 2030-01-01 on (data: " in capsys.readouterr().err
    assert main(["grid", str(csv), "--end", "2010-01-01", "-o", str(tmp_path / "a.nc")]) == 2
    assert "error: --end: no epoch up to 2010-01-01 (data: " in capsys.readouterr().err
    assert main(["grid", str(csv), "--start", "2030-01-01", "--end", "2031-01-01", "-o", str(tmp_path / "a.nc")]) == 2
    assert "error: --start/--end: no epoch between 2030-01-01 and 2031-01-01" in capsys.readouterr().err


def test_cli_grid_with_no_cell_gets_a_value_is_refused(tmp_path, capsys):
    """A strip of MPs (one row of cells) gridded with --shape 20x1: every linear cell
    centre misses the strip's triangles. Was: an all-NaN cube written, exit 0."""
    rng = np.random.default_rng(2)
    x, y = 3e6 + rng.uniform(0, 4000, 200), 3e6 + rng.uniform(0, 100, 200)
    times = np.array(["2020-01-01", "2020-01-13", "2020-01-25"], "datetime64[D]")
    csv = write_points(make_points(x, y, rng.normal(0, 2, (200, 3)), times, "EPSG:3035"), tmp_path / "strip.csv")
    out = tmp_path / "c.nc"
    assert main(["grid", str(csv), "--shape", "20x1", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "strip.csv: no cell of the 20x1 grid" in err and "--method nearest" in err
    assert not out.exists()
    assert main(["grid", str(csv), "--shape", "20x1", "--method", "nearest", "-o", str(out), "-q"]) == 0
    assert np.isfinite(open_cube(out).displacement.values).any()
