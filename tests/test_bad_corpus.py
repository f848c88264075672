"""The bad-input corpus (tests/data/bad/): each file's exact outcome through ``grid``.

Files that are good except for a few rows, as real exports are (make_corpus.py says what
each holds). Each ends in a clean refusal (exit 2, one error line naming the file and the
problem, no output) or in a cube with good.csv's own extent and dates plus one warning.
The CLI runs in-process on 120 MPs x 8 epochs: a second or so per case.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from insar_raster.cli import main

BAD = Path(__file__).parent / "data" / "bad"
_spec = importlib.util.spec_from_file_location("make_corpus", BAD / "make_corpus.py")
make_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_corpus)


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def errors_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """good.csv's cube (x, y, time, displacement)."""
    out = tmp_path_factory.mktemp("ref") / "good.nc"
    assert main(["grid", str(BAD / "good.csv"), "-o", str(out), "-q"]) == 0
    with xr.open_dataset(out) as ds:
        return ds.load()


def test_committed_corpus_is_what_the_script_writes():
    files = make_corpus.corpus()
    assert set(files) == set(make_corpus.CASES)
    for name, data in files.items():
        assert (BAD / name).read_bytes() == data, f"{name} differs: run python tests/data/bad/make_corpus.py"


# --------------------------------------------------------------------------- refusals

REFUSALS = {
    "date_99991231.csv": ["'99991231'", "beyond the dates a cube can hold"],
    "date_18000101.csv": ["'18000101'", "before Sentinel-1", "--allow-dates"],
    "date_future.csv": ["'22000101'", "after today", "--allow-dates"],
    "latlon_swapped_all.csv": ["latitude outside [-90, 90] in 120 of 120 rows", "swapped"],
    "header_repeated.csv": ["header line appears again", "concatenated"],
    "repeated_pid.zip": ["3,000 of 3,000 rows", "share 1 pid: not an EGMS file?"],
    "two_products.zip": ["different geometries", "L2b track 1", "L3U (vertical)"],  # io/egms.py's rule
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
@pytest.mark.parametrize("path", ["memory", "cache"])
def test_refused_in_one_line_without_output(name, path, tmp_path, capsys):
    assert make_corpus.CASES[name][0] == "refuse"
    src = tmp_path / name
    shutil.copy(BAD / name, src)
    out = tmp_path / "cube.nc"
    cache = ["--cache-dir", tmp_path / "cache"] if path == "cache" else ["--no-cache"]
    code, err = run(["grid", src, "-o", out, "-q", *cache], capsys)
    lines = errors_of(err)
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("insar-raster grid: error: "), err
    assert "Traceback" not in err and name in lines[0]
    for word in REFUSALS[name]:
        assert word in lines[0], lines[0]
    assert not out.exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == [name]


def test_allow_dates_accepts_an_old_epoch(tmp_path, capsys):
    out = tmp_path / "cube.nc"
    code, err = run(["grid", BAD / "date_18000101.csv", "-o", out, "-q", "--allow-dates"], capsys)
    assert code == 0, err
    with xr.open_dataset(out) as ds:
        assert str(ds.time.values[0])[:10] == "1800-01-01" and ds.sizes["time"] == 8


def test_allow_dates_never_accepts_a_wrapped_date(tmp_path, capsys):
    code, err = run(["grid", BAD / "date_99991231.csv", "-o", tmp_path / "c.nc", "-q", "--allow-dates"], capsys)
    assert code == 2 and "'99991231'" in err and "1816" not in err


# --------------------------------------------------------------------------- results

#: Files read as good.csv is, to the same cube, with no warning.
SAME = [
    "crlf.csv",
    "bom.csv",
    "latin1_pids.csv",
    "semicolon.csv",
    "semicolon_decimal_comma.csv",
    "tab_decimal_comma.csv",
]


@pytest.mark.parametrize("name", SAME)
@pytest.mark.parametrize("path", ["memory", "cache"])
def test_same_cube_as_the_comma_version(name, path, reference, tmp_path, capsys):
    assert make_corpus.CASES[name][0] == "ok"
    out = tmp_path / "cube.nc"
    cache = ["--cache-dir", tmp_path / "cache"] if path == "cache" else ["--no-cache"]
    code, err = run(["grid", BAD / name, "-o", out, "-q", *cache], capsys)
    assert code == 0, err
    assert warnings_of(err) == []
    with xr.open_dataset(out) as ds:
        for coord in ("x", "y", "time"):
            np.testing.assert_array_equal(ds[coord].values, reference[coord].values)
        np.testing.assert_array_equal(ds.displacement.values, reference.displacement.values)


def test_latin1_pids_are_read_as_latin1():
    from insar_raster.io.points import read_points

    points = read_points(BAD / "latin1_pids.csv")
    assert points.pid.values[0] == "Bégles00000"


#: file -> (pids dropped, reason in the warning)
DROPPED = {
    "zero_coordinate.csv": (["IE00049"], "1 at (0, 0)"),
    "shifted_3000km.csv": (["IE00059"], "1 far outside the bulk of the points"),
    "nan_inf_coordinates.csv": (["IE00009", "IE00010", "IE00011"], "3 NaN or infinite"),
    "mixed_units.csv": (["IE00019", "IE00020", "IE00021"], "3 far outside the bulk of the points"),
    "latlon_swapped_rows.csv": (["IE00029", "IE00030"], "2 far outside the bulk of the points"),
}


@pytest.mark.parametrize("name", sorted(DROPPED))
@pytest.mark.parametrize("path", ["memory", "cache"])
def test_outlying_rows_dropped_with_one_warning(name, path, reference, tmp_path, capsys):
    assert make_corpus.CASES[name][0] == "warn"
    pids, reason = DROPPED[name]
    out = tmp_path / "cube.nc"
    cache = ["--cache-dir", tmp_path / "cache"] if path == "cache" else ["--no-cache"]
    code, err = run(["grid", BAD / name, "-o", out, "-q", *cache], capsys)
    assert code == 0, err
    lines = warnings_of(err)
    assert len(lines) == 1, err
    assert f"dropped {len(pids)} MP(s)" in lines[0] and reason in lines[0], lines[0]
    assert "pid " + ", ".join(pids) in lines[0] and "--keep-outliers" in lines[0]
    with xr.open_dataset(out) as ds:
        np.testing.assert_array_equal(ds.time.values, reference.time.values)
        assert ds.attrs["coordinate_outliers_dropped"] == len(pids)
        if name != "latlon_swapped_rows.csv":  # that one is gridded in UTM (geographic input)
            np.testing.assert_array_equal(ds.x.values, reference.x.values)
            np.testing.assert_array_equal(ds.y.values, reference.y.values)
        else:
            assert ds.sizes["x"] < 300 and ds.sizes["y"] < 300  # the 26 km scene at 100 m, not a continent


def test_l3_missing_date_drops_that_epoch(reference, tmp_path, capsys):
    out = tmp_path / "cube.nc"
    code, err = run(["grid", BAD / "l3_missing_date.csv", "-o", out, "-q"], capsys)
    assert code == 0, err
    lines = warnings_of(err)
    assert len(lines) == 1 and "dropped 1 epoch(s) with no value in any row (2019-02-20)" in lines[0], err
    with xr.open_dataset(out) as ds:
        expected = np.delete(reference.time.values, make_corpus.EPOCHS // 2)
        np.testing.assert_array_equal(ds.time.values, expected)
        np.testing.assert_array_equal(ds.x.values, reference.x.values)
        assert ds.sizes["time"] == make_corpus.EPOCHS - 1


# --------------------------------------------------------------------------- the table


def test_keep_outliers_with_a_zero_row_is_refused_up_front(tmp_path, capsys):
    """The (0, 0) row kept: a grid from the origin of EPSG:3035 to the scene, refused for
    its work (cells per MP) before anything is written."""
    out = tmp_path / "cube.nc"
    code, err = run(["grid", BAD / "zero_coordinate.csv", "-o", out, "-q", "--keep-outliers"], capsys)
    assert code == 2, err
    line = errors_of(err)[0]
    assert "cells per MP" in line and "--force" in line and "--resolution" in line
    assert len(errors_of(err)) == 1 and not out.exists()
    assert len(warnings_of(err)) == 1 and "kept 1 MP(s)" in warnings_of(err)[0]


def test_resolution_1_on_a_26_km_scene_is_refused_with_what_fits(tmp_path, capsys):
    out = tmp_path / "cube.nc"
    code, err = run(["grid", BAD / "good.csv", "-o", out, "-q", "--resolution", "1"], capsys)
    assert code == 2, err
    (line,) = errors_of(err)
    assert re.search(r"676,\d{3},\d{3} cells for 120 MPs", line), line
    # 26 km square at 1 m = 676 M cells; 16.8 M cells fit (MIN_CELLS_CHECKED): 6.4 m -> 10 m.
    assert "--resolution 10 (m) or coarser fits" in line and "--force" in line, line
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_max_output_size_refuses_and_names_the_limit(tmp_path, capsys):
    out = tmp_path / "cube.nc"
    code, err = run(["grid", BAD / "good.csv", "-o", out, "-q", "--max-output-size", "100kB"], capsys)
    assert code == 2, err
    (line,) = errors_of(err)
    assert "over the limit of 100 kB" in line and "--max-output-size" in line and "--resolution" in line, line
    assert not out.exists()
    code, err = run(["grid", BAD / "good.csv", "-o", out, "-q", "--max-output-size", "lots"], capsys)
    assert code == 2 and "--max-output-size: not a size: 'lots'" in err


def test_free_space_of_the_target_folder_is_checked(tmp_path, capsys, monkeypatch):
    from insar_raster.io import budget  # check_budget reads its free_space

    monkeypatch.setattr(budget, "free_space", lambda target: 50_000)
    out = tmp_path / "cube.nc"
    code, err = run(["grid", BAD / "good.csv", "-o", out, "-q"], capsys)
    assert code == 2, err
    (line,) = errors_of(err)
    assert "would not fit in the 50 kB free" in line and "--resolution" in line, line
    assert not out.exists()


def test_every_writing_command_refuses_an_output_over_the_limit(reference, tmp_path, capsys):
    """synth, forecast and export estimate their output before the work (no file, exit 2)."""
    cube = tmp_path / "cube.nc"
    reference.to_netcdf(cube)
    for argv, what in (
        (
            ["synth", "-o", tmp_path / "s.csv", "--points", "200000", "--epochs", "300"],
            "synthetic points and truth cube",
        ),
        (["forecast", cube, "-o", tmp_path / "f.tif", "--steps", "3"], "forecast"),
        (["export", cube, "--layer", "displacement", "-o", tmp_path / "e.tif"], "displacement layer"),
    ):
        code, err = run([*argv, "-q", "--max-output-size", "20kB"], capsys)
        assert code == 2, err
        (line,) = errors_of(err)
        assert f"{what} of about" in line and "over the limit of 20 kB" in line and "--max-output-size" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.nc"]


def test_one_pid_zip_is_refused_from_the_first_block(tmp_path):
    """The issue's 8 MB zip of 3 GB of rows with one pid: the cache refuses it from its first
    block of text, before streaming the rest (here blocks of 4 kB of a 3,000-row member)."""
    from insar_raster.errors import InputError
    from insar_raster.io.cache import build_points_cache, input_bytes

    zipped = BAD / "repeated_pid.zip"
    assert input_bytes([zipped]) > 20 * zipped.stat().st_size  # uncompressed size decides the cache
    with pytest.raises(InputError) as info:
        build_points_cache(zipped, tmp_path / "cache" / "c", block_bytes=4096)
    m = re.search(r"(\d+) of (\d+) rows of the first block share 1 pid: not an EGMS file\?", info.value.message)
    assert m and int(m[2]) < 100, info.value.message
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []
