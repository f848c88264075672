"""Quicklook PNGs: written atomically, non-empty, real PNGs; point handling."""

import numpy as np
import pytest
from matplotlib.image import imread

from insar_raster.errors import InputError, OutputExistsError
from insar_raster.gis.quicklook import plot_cube, plot_forecast, resolve_points
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube
from insar_raster.io.points import make_points

GRID = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 2_000_000.0, 24, 20)


def _cubes():
    times = np.datetime64("2021-01-01") + np.arange(14) * np.timedelta64(12, "D")
    yy, xx = np.mgrid[0:20, 0:24]
    bowl = -np.exp(-((yy - 8) ** 2 + (xx - 12) ** 2) / 20.0)
    values = (np.arange(14)[:, None, None] * 2.0 * bowl).astype("float32")
    values[:, 15:, :5] = np.nan  # water
    cube = make_cube(values, times, GRID)
    return cube.isel(time=slice(0, 10)), cube.isel(time=slice(10, None))


def _assert_png(path):
    assert path.exists() and path.stat().st_size > 10_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # something was drawn, not a blank canvas


def test_forecast_quicklook_default_points(tmp_path):
    observed, forecast = _cubes()
    path = plot_forecast(observed, forecast, tmp_path / "forecast.png")
    _assert_png(path)
    assert [p.name for p in tmp_path.iterdir()] == ["forecast.png"]  # no temporaries left


def test_forecast_quicklook_points_by_xy_and_pid(tmp_path):
    observed, forecast = _cubes()
    x, y = float(GRID.x[12]), float(GRID.y[8])
    points = make_points([x + 20], [y - 30], np.zeros((1, 3)), observed.time.values[:3], "EPSG:3035", pid=["PS42"])
    picks = resolve_points([(x, y), f"{x + 300},{y}", "PS42"], observed["displacement"], points)
    assert [p[0] for p in picks] == ["P1", "P2", "PS42"]
    assert picks[2][1:] == (x + 20, y - 30)
    path = plot_forecast(observed, forecast, tmp_path / "f.png", points=[(x, y), "PS42"], points_dataset=points)
    _assert_png(path)


def test_cube_quicklook_and_overwrite(tmp_path):
    observed, _ = _cubes()
    path = plot_cube(observed, tmp_path / "cube.png")
    _assert_png(path)
    with pytest.raises(OutputExistsError):
        plot_cube(observed, path)
    plot_cube(observed, path, overwrite=True)


def test_point_errors_and_masked_point_warning(tmp_path):
    observed, forecast = _cubes()
    disp = observed["displacement"]
    with pytest.raises(InputError, match="outside the grid"):
        resolve_points([(0.0, 0.0)], disp)
    with pytest.raises(InputError, match="neither x,y nor a known pid"):
        resolve_points(["PS1"], disp)
    with pytest.raises(InputError, match="PNG"):
        plot_cube(observed, tmp_path / "cube.jpg")
    on_water = (float(GRID.x[1]), float(GRID.y[18]))
    with pytest.warns(UserWarning, match="masked cell"):
        plot_forecast(observed, forecast, tmp_path / "w.png", points=[on_water])


def test_cli_plot_options():
    import argparse

    from insar_raster.cli.options import add_plot_options, plot_output

    parser = argparse.ArgumentParser()
    parser.add_argument("cube")
    add_plot_options(parser)
    args = parser.parse_args(["c.nc"])
    assert plot_output(args, "out/forecast.tif") is None
    args = parser.parse_args(["c.nc", "--plot-points", "3000150,1999050", "PS42", "--plot"])
    assert str(plot_output(args, "out/forecast.tif")) == "out/forecast.png"
    assert args.plot_points == ["3000150,1999050", "PS42"]
    assert str(plot_output(parser.parse_args(["c.nc", "--plot", "q.png"]), "x.tif")) == "q.png"


def test_cli_plot_points_are_checked_before_the_work_and_take_pids_from_points(tmp_path, capsys):
    """``forecast --plot --plot-points``: a bad point is refused as --plot-points before any
    output is written (was: named '--points', after the forecast was written, exit 2 with the
    raster left behind); pids are looked up in --points (was: never, so no pid could work);
    --plot-points without --plot is refused (was: ignored)."""
    from cli_args import TINY_TRAIN

    from insar_raster.cli import main
    from insar_raster.gis.write import write_cube
    from insar_raster.grid.gridding import grid_points
    from insar_raster.io.points import write_points
    from insar_raster.synth import make_scene

    points, _ = make_scene(300, (16, 16), 30, seed=3)
    csv = write_points(points, tmp_path / "p.csv")
    cube = write_cube(grid_points(points).compute(), tmp_path / "cube.nc")
    base = ["forecast", str(cube), "-q", "-o", str(tmp_path / "f.tif")]
    assert main([*base, "--plot-points", "1,2"]) == 2
    assert capsys.readouterr().err.strip().endswith("error: --plot-points: only applies with --plot")
    assert main([*base, "--plot", "--plot-points", "1,2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--plot-points: point 1.0,2.0 is outside the grid" in err[0], err
    assert main([*base, "--plot", "--plot-points", "PS1"]) == 2
    assert "--plot-points: 'PS1' is neither x,y nor a known pid" in capsys.readouterr().err
    assert list(tmp_path.glob("f.*")) == []

    pid = str(points["pid"].values[7])
    out = tmp_path / "f.gpkg"
    argv = ["forecast", str(cube), "--points", str(csv), "-o", str(out), "--plot", str(tmp_path / "q.png")]
    assert main([*argv, "--plot-points", pid, "-q", *TINY_TRAIN]) == 0
    assert out.exists()
    _assert_png(tmp_path / "q.png")
