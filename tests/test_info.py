"""`info` on every kind of file: points (CSV, GeoPackage, GeoParquet), cubes, GeoTIFF, model."""

import json

import numpy as np
import pytest

from insar_raster.cli import main
from insar_raster.errors import InputError
from insar_raster.gis.raster import write_geotiff
from insar_raster.gis.write import write_cube
from insar_raster.grid.spec import GridSpec
from insar_raster.info import describe, format_description
from insar_raster.io.cube import make_cube
from insar_raster.io.points import make_points, write_points

TIMES = np.datetime64("2020-01-02") + np.array([0, 6, 12, 24, 30]) * np.timedelta64(1, "D")


def _cube():
    grid = GridSpec("EPSG:3035", 50.0, 3_000_000.0, 2_000_000.0, 8, 6)
    values = np.arange(5 * 6 * 8, dtype="float32").reshape(5, 6, 8)
    values[:, :2, :] = np.nan  # 2 of 6 rows masked -> NaN share 1/3
    return make_cube(values, TIMES, grid), grid


def _points(n=40):
    rng = np.random.default_rng(3)
    x = rng.uniform(3_000_000, 3_001_000, n)
    y = rng.uniform(2_000_000, 2_002_000, n)
    values = np.cumsum(rng.normal(0, 1, (n, len(TIMES))), axis=1).astype("float32")
    values[:, 0] = 0
    return make_points(x, y, values, TIMES, "EPSG:3035", pid=[f"P{i}" for i in range(n)])


def _check_epochs(info):
    assert info["n_epochs"] == 5
    assert (info["first_epoch"], info["last_epoch"]) == ("2020-01-02", "2020-02-01")
    assert info["interval_days"] == {"median": 6.0, "min": 6.0, "max": 12.0}


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet", ".csv"])
def test_points_files(tmp_path, suffix):
    points = _points()
    path = write_points(points, tmp_path / f"pts{suffix}")
    info = describe(path)
    assert info["kind"] == "points" and info["n_points"] == 40
    assert info["crs"].startswith("EPSG:3035")
    np.testing.assert_allclose(
        info["extent"], [points.x.min(), points.y.min(), points.x.max(), points.y.max()], atol=0.1
    )
    _check_epochs(info)
    assert info["nan_share"] == 0.0


def test_points_csv_with_nan_rows_reports_them(tmp_path):
    path = tmp_path / "egms.csv"
    path.write_text(
        "pid,easting,northing,20200101,20200113,20200125\n"
        "a,3000000,2000000,0,1.5,2.5\n"
        "b,3000100,2000100,0,,3\n"  # a gap -> the reader drops the point
        "c,3000200,2000300,0,-1,-2\n"
    )
    info = describe(path)
    assert info["n_points"] == 2 and info["points_dropped_for_nan"] == 1
    assert info["nan_share"] == pytest.approx(1 / 3)
    assert info["interval_days"]["median"] == 12.0
    assert any("dropped 1 point" in n for n in info["notes"])


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_cubes(tmp_path, suffix):
    cube, grid = _cube()
    path = write_cube(cube, tmp_path / f"cube{suffix}")
    info = describe(path)
    assert info["kind"] == "cube"
    assert info["grid"] == {"height": 6, "width": 8, "resolution": [50.0, 50.0]}
    assert info["extent"] == pytest.approx(list(grid.bounds))
    assert info["crs"].startswith("EPSG:3035")
    assert info["nan_share"] == pytest.approx(1 / 3)
    assert info["variables"]["displacement"]["units"] == "mm"
    _check_epochs(info)
    assert "2020-01-02" in format_description(info)


def test_geotiff(tmp_path):
    cube, grid = _cube()
    path = write_geotiff(cube["displacement"], tmp_path / "cube.tif")
    info = describe(path)
    assert info["kind"] == "cube" and info["bands"] == 5
    assert info["extent"] == pytest.approx(list(grid.bounds))
    assert info["grid"]["height"] == 6 and info["grid"]["width"] == 8
    assert info["layout"]["cog"] and info["layout"]["tiled"]
    assert info["units"] == ["mm"]
    assert info["nan_share"] == pytest.approx(1 / 3)
    assert info["style"].endswith("cube.qml")
    limit = np.percentile(np.abs(cube["displacement"].values[-1][2:]), 98)
    assert info["style_limits"] == pytest.approx([-limit, limit], rel=1e-4)
    _check_epochs(info)


def test_model_file_header_only(tmp_path):
    from insar_raster.forecast.config import TrainConfig
    from insar_raster.forecast.data import Normalisation, grid_of
    from insar_raster.forecast.forecaster import Forecaster
    from insar_raster.forecast.modelfile import save_model
    from insar_raster.models import build_model

    cube, grid = _cube()
    hp = dict(steps=2, window=3, hidden=4, features=4)
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 0.7},
        {"epoch": 2, "train_loss": 0.8, "val_loss": 0.5},
        {"epoch": 3, "train_loss": 0.6, "val_loss": 0.6},
    ]
    model = Forecaster.from_fitted(
        build_model("convlstm", **hp),
        TrainConfig(arch="convlstm", window=3, steps=2, epochs=3),
        Normalisation(2.0, 6.0),
        grid_of(cube),
        hp,
        history=history,
        metadata={
            "val_rmse_mm": 1.4,
            "prior_filter": {"kept": True, "val_rmse_prior_mm": 1.9, "val_rmse_filtered_mm": 1.8, "kernel": [[0.0]]},
        },
    )
    path = save_model(model, tmp_path / "model.ipt")
    info = describe(path)
    assert info["kind"] == "model" and info["architecture"] == "convlstm"
    assert (info["window"], info["steps"]) == (3, 2)
    assert info["hyperparameters"]["hidden"] == 4
    assert info["grid"]["height"] == 6 and info["grid"]["width"] == 8
    assert info["extent"] == pytest.approx(list(grid.bounds))
    assert info["training"]["epochs_run"] == 3 and info["training"]["best_epoch"] == 2
    assert info["prior_filter"] == {"kept": True, "val_rmse_prior_mm": 1.9, "val_rmse_filtered_mm": 1.8}
    assert "convlstm" in format_description(info)
    assert "  val_rmse_filtered_mm: 1.8" in format_description(info)


def test_pickle_renamed_as_model_is_refused_not_loaded(tmp_path):
    import pickle

    path = tmp_path / "evil.ipt"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InputError) as exc:
        describe(path)
    assert "not an insar-raster model" in str(exc.value)


def test_cli_text_json_and_errors(tmp_path, capsys):
    cube, _ = _cube()
    write_cube(cube, tmp_path / "c.nc")
    assert main(["info", str(tmp_path / "c.nc")]) == 0
    out = capsys.readouterr().out
    assert "EPSG:3035" in out and "6 x 8 cells" in out and "33.3%" in out
    assert main(["info", "--json", str(tmp_path / "c.nc")]) == 0
    assert json.loads(capsys.readouterr().out)["n_epochs"] == 5
    assert main(["info", str(tmp_path / "missing.nc")]) == 2
    assert "missing.nc: file not found" in capsys.readouterr().err
    (tmp_path / "notes.docx").write_text("x")
    assert main(["info", str(tmp_path / "notes.docx")]) == 2
    (tmp_path / "broken.nc").write_text("not netcdf")
    assert main(["info", str(tmp_path / "broken.nc")]) == 2
    err = capsys.readouterr().err
    assert "unknown file type" in err and "cannot read" in err and "Traceback" not in err


def test_reader_closing_the_pipe_is_not_an_error(tmp_path):
    """`insar-raster info cube.nc | head -1`: the closed pipe stops the command quietly."""
    import subprocess
    import sys

    cube, _ = _cube()
    write_cube(cube, tmp_path / "c.nc")
    # Many JSON lines, so the writer is still writing when the reader has gone.
    paths = [str(tmp_path / "c.nc")] * 400
    run = subprocess.run(
        f"{sys.executable} -m insar_raster info {' '.join(paths)} | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        executable="/bin/bash",
    )
    assert len(run.stdout) == 10
    assert run.stderr == "", run.stderr


def test_info_reads_points_grid_needs_input_crs_or_allow_dates_for(tmp_path, capsys):
    """A GeoParquet without a CRS and pre-Sentinel dates: info takes --input-crs and
    --allow-dates as grid does (was: refused, hinting at 'input_crs=' and 'allow_dates=True',
    Python parameters with no flag)."""
    import geopandas as gpd

    times = np.datetime64("2010-01-05") + np.arange(5) * np.timedelta64(12, "D")
    x, y = np.meshgrid(3_500_000.0 + 50 * np.arange(4), 2_800_000.0 + 50 * np.arange(3))
    points = make_points(x.ravel(), y.ravel(), np.zeros((12, 5), "float32"), times, "EPSG:3035")
    write_points(points, tmp_path / "p.parquet")
    gpd.read_parquet(tmp_path / "p.parquet").set_crs(None, allow_override=True).to_parquet(tmp_path / "bare.parquet")
    path = str(tmp_path / "bare.parquet")
    assert main(["info", path]) == 2
    err = capsys.readouterr().err
    assert "before Sentinel-1" in err and "--allow-dates accepts" in err, err
    assert main(["info", path, "--allow-dates"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bare.parquet: unknown CRS" in err[0] and "--input-crs EPSG:XXXX" in err[0], err
    assert main(["info", path, "--allow-dates", "--input-crs", "EPSG:3035", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_points"] == 12 and info["first_epoch"] == "2010-01-05" and info["crs"].startswith("EPSG:3035")


def test_folder_of_ascending_and_descending_bursts_is_described_per_geometry(tmp_path, capsys):
    """`info FOLDER` with an ascending and a descending L2b burst describes each geometry, as
    `info a.zip b.zip` does (was: refused with grid's mixed-geometry error, exit 2)."""
    folder = tmp_path / "los"
    assert main(["synth", "--los", "-q", "-o", str(folder), "--points", "200", "--shape", "12x12"]) == 0
    capsys.readouterr()
    bursts = sorted(f.name for f in folder.glob("*.zip"))
    assert main(["info", "--json", str(folder)]) == 0
    infos = json.loads(capsys.readouterr().out)
    assert [i["pass_direction"] for i in infos] == ["ascending", "descending"]
    assert sorted(f for i in infos for f in i["files"]) == bursts
    assert all(i["path"] == str(folder) and i["n_points"] == 200 for i in infos)
    # The same numbers as for the files named one by one.
    assert main(["info", "--json", *(str(folder / b) for b in bursts)]) == 0
    each = json.loads(capsys.readouterr().out)
    assert [i["track"] for i in infos] == [i["track"] for i in each]
    assert [i["first_epoch"] for i in infos] == [i["first_epoch"] for i in each]
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "ascending" in out and "descending" in out and bursts[0] in out
    # grid still refuses to merge them.
    assert main(["grid", str(folder), "-o", str(tmp_path / "c.nc")]) == 2
    assert "different geometries" in capsys.readouterr().err


def test_folder_of_one_bursts_l2a_and_l2b_is_described_per_level(tmp_path, capsys):
    """`info FOLDER` holding both levels of one burst (L2a relative to a local reference
    point, L2b to GNSS) describes each level, as for two geometries (was: refused with
    grid's L2a/L2b error, exit 2); grid still refuses to merge them."""
    folder = tmp_path / "burst"
    folder.mkdir()
    names = {level: f"EGMS_{level}_015_0123_IW2_VV_2019_2023_1.csv" for level in ("L2a", "L2b")}
    for level, name in names.items():
        args = ["synth", "-q", "-o", str(folder / name), "--layout", level, "--points", "150", "--shape", "10x10"]
        assert main([*args, "--epochs", "20"]) == 0
        (folder / name.replace(".csv", "_truth.nc")).unlink()
    capsys.readouterr()
    assert main(["info", "--json", str(folder)]) == 0
    infos = json.loads(capsys.readouterr().out)
    assert [(i["product_level"], i["files"]) for i in infos] == [(lv, [n]) for lv, n in names.items()]
    assert all(i["n_points"] == 150 and i["n_epochs"] == 20 for i in infos)
    assert main(["grid", str(folder), "-o", str(tmp_path / "c.nc")]) == 2
    assert "inputs mix EGMS L2a" in capsys.readouterr().err
