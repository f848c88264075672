"""Every bad input fails cleanly: exit code, one line naming the file, no traceback, no output.

The CLI runs in-process through ``insar_raster.cli.main([...])`` (fast) and, for a few
cases, as a real ``python -m insar_raster`` process to prove that no traceback reaches a
terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cli_args
import numpy as np
import pytest

from insar_raster.cli import main

# --------------------------------------------------------------------------- helpers

# Tiny, fast training (seconds on 2 CPU cores), on one thread, stopping after one stale epoch.
TINY_TRAIN = [*cli_args.TINY_TRAIN, "--threads", "1", "--patience", "1"]
TINY_TRAIN_NO_STEPS = TINY_TRAIN[:2] + TINY_TRAIN[4:]

DATES = ["20200101", "20200113", "20200125", "20200206", "20200218", "20200301"]


def good_csv_text(n_points: int = 24, dates=DATES, seed: int = 0, pid_prefix: str = "P") -> str:
    """A tiny EGMS-L3-like CSV: pid, easting, northing, one column per date (mm)."""
    rng = np.random.default_rng(seed)
    east = 4_000_000 + rng.uniform(0, 2000, n_points)
    north = 3_000_000 + rng.uniform(0, 2000, n_points)
    lines = [",".join(["pid", "easting", "northing", *dates])]
    for i in range(n_points):
        values = np.round(np.cumsum(rng.normal(0, 1, len(dates))) - 0, 2)
        values[0] = 0.0
        lines.append(",".join([f"{pid_prefix}{i}", f"{east[i]:.1f}", f"{north[i]:.1f}", *(f"{v:.2f}" for v in values)]))
    return "\n".join(lines) + "\n"


def run_cli(argv, capsys):
    """Run the CLI in-process -> (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _case_ids(cases) -> list[str]:
    return [c.values[0] if hasattr(c, "values") else c[0] for c in cases]


def error_lines(err: str) -> list[str]:
    """Non-warning, non-empty stderr lines (progress bars are off with -q)."""
    return [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]


def leftovers(folder: Path, before: set) -> set:
    """Files created in ``folder`` since ``before`` (temp files included)."""
    return {p.name for p in folder.iterdir()} - before


def assert_clean_failure(code, err, expected_code, names, folder: Path, before: set, output: Path | None):
    lines = error_lines(err)
    assert code == expected_code, err
    assert "Traceback" not in err
    assert len(lines) == 1, f"expected one error line, got {lines!r}"
    assert lines[0].startswith("insar-raster ") and ": error: " in lines[0], lines[0]
    for name in names:
        assert name in lines[0], f"{name!r} not named in {lines[0]!r}"
    if output is not None:
        assert not output.exists()
    assert leftovers(folder, before) == set(), "a partial or temporary file was left behind"


# --------------------------------------------------------------------------- grid: bad inputs


def _write(path: Path, content) -> Path:
    if content == "<folder>":
        path.mkdir()
    elif isinstance(content, str) and content.startswith("<zip:"):
        import zipfile

        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(content[5:-1], "not a csv")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _text_in_displacement():
    lines = good_csv_text().splitlines()
    cells = lines[5].split(",")
    cells[5] = "abc"
    lines[5] = ",".join(cells)
    return "\n".join(lines) + "\n"


def _truncated_last_row():
    text = good_csv_text()
    return text[: len(text) - 20]  # cut in the middle of the last row


def _no_coordinates():
    return (
        "\n".join(
            ",".join(c for i, c in enumerate(line.split(",")) if i not in (1, 2))
            for line in good_csv_text().splitlines()
        )
        + "\n"
    )


def _no_dates():
    return (
        "\n".join(
            ",".join(line.split(",")[:3] + ["1.0"] if k else line.split(",")[:3] + ["velocity"])
            for k, line in enumerate(good_csv_text().splitlines())
        )
        + "\n"
    )


BINARY_GARBAGE = bytes(np.random.default_rng(42).integers(0, 256, 3000, dtype=np.uint8))
# Garbage without NUL bytes and not UTF-8 either (e.g. a Latin-1 or compressed file).
HIGH_GARBAGE = bytes(np.random.default_rng(43).integers(128, 256, 3000, dtype=np.uint8))

# (case id, input file name, content or None for "missing", extra args, expected code, words in the message)
GRID_CASES = [
    ("missing_file", "points.csv", None, [], 2, ["not found"]),
    ("empty_file", "points.csv", "", [], 2, ["empty"]),
    ("whitespace_only", "points.csv", "\n \n", [], 2, ["empty"]),
    ("header_only", "points.csv", good_csv_text().splitlines()[0] + "\n", [], 2, ["header only"]),
    ("no_coordinate_columns", "points.csv", _no_coordinates(), [], 2, ["no coordinate columns"]),
    ("no_date_columns", "points.csv", _no_dates(), [], 2, ["no date columns", "YYYYMMDD"]),
    ("text_in_displacement", "points.csv", _text_in_displacement(), [], 2, ["non-numeric"]),
    ("truncated_last_row", "points.csv", _truncated_last_row(), [], 2, ["truncated"]),
    ("binary_garbage_csv", "points.csv", BINARY_GARBAGE, [], 2, ["binary"]),
    ("non_utf8_garbage_csv", "points.csv", HIGH_GARBAGE, [], 2, ["not a text CSV"]),
    ("binary_garbage_gpkg", "points.gpkg", BINARY_GARBAGE, [], 2, ["cannot read"]),
    ("text_garbage_gpkg", "points.gpkg", "hello, I am not a GeoPackage\n", [], 2, ["cannot read"]),
    ("binary_garbage_zip", "points.zip", BINARY_GARBAGE, [], 2, ["not a valid zip"]),
    ("unsupported_suffix", "points.xlsx", "whatever", [], 2, ["unsupported file type"]),
    ("unknown_crs", "points.csv", good_csv_text(), ["--crs", "EPSG:999999"], 2, ["--crs", "unknown CRS"]),
    ("geographic_crs", "points.csv", good_csv_text(), ["--crs", "EPSG:4326"], 2, ["--crs", "not a projected CRS"]),
    ("zero_resolution", "points.csv", good_csv_text(), ["--resolution", "0"], 2, ["--resolution", "positive"]),
    ("negative_resolution", "points.csv", good_csv_text(), ["--resolution=-100"], 2, ["--resolution", "positive"]),
    ("nan_resolution", "points.csv", good_csv_text(), ["--resolution", "nan"], 2, ["--resolution", "positive"]),
    ("text_resolution", "points.csv", good_csv_text(), ["--resolution", "abc"], 2, ["--resolution", "invalid"]),
    (
        "bounds_without_mp",
        "points.csv",
        good_csv_text(),
        ["--bounds", "0,0,1000,1000"],
        2,
        ["--bounds", "no measurement point"],
    ),
    (
        "bounds_malformed",
        "points.csv",
        good_csv_text(),
        ["--bounds", "1,2,3"],
        2,
        ["--bounds", "west,south,east,north"],
    ),
    ("bounds_inverted", "points.csv", good_csv_text(), ["--bounds", "10,10,0,0"], 2, ["--bounds"]),
    ("bad_shape", "points.csv", good_csv_text(), ["--shape", "0x5"], 2, ["--shape"]),
    (
        "all_rows_nan",
        "points.csv",
        "pid,easting,northing,20200101,20200113\nA,4000000,3000000,,\nB,4000100,3000100,nan,1\n",
        [],
        2,
        ["no valid measurement point"],
    ),
    (
        "epoch_range_empty",
        "points.csv",
        good_csv_text(),
        ["--start", "2030-01-01"],
        2,
        ["--start: no epoch from 2030-01-01 on"],
    ),
    ("bad_time_chunk", "points.csv", good_csv_text(), ["--time-chunk", "0"], 2, ["--time-chunk"]),
    ("bad_max_gap", "points.csv", good_csv_text(), ["--max-gap=-5"], 2, ["--max-gap"]),
    (
        "too_many_cells_resolution",
        "points.csv",
        good_csv_text(),
        ["--resolution", "1e-6"],
        2,
        ["--resolution", "cells"],
    ),
    ("too_many_cells_shape", "points.csv", good_csv_text(), ["--shape", "100000x100000"], 2, ["--shape", "cells"]),
    ("bad_method", "points.csv", good_csv_text(), ["--method", "kriging"], 2, ["--method", "invalid choice"]),
    (
        "unknown_output_format",
        "points.csv",
        good_csv_text(),
        ["-o", "cube.txt"],
        2,
        ["cube.txt", "unknown output format"],
    ),
    ("empty_folder_input", "empty_folder", "<folder>", [], 2, ["folder holds no"]),
    ("zip_without_csv", "points.zip", "<zip:readme.txt>", [], 2, ["no .csv"]),
    ("garbage_parquet", "points.parquet", BINARY_GARBAGE, [], 2, ["cannot read"]),
    (
        "unknown_input_crs",
        "points.csv",
        good_csv_text().replace("easting", "x").replace("northing", "y"),
        ["--input-crs", "FOO"],
        2,
        ["--input-crs", "FOO"],
    ),
    ("start_not_a_date", "points.csv", good_csv_text(), ["--start", "notadate"], 2, ["--start", "notadate"]),
    (
        "two_points_linear",
        "points.csv",
        "\n".join(good_csv_text().splitlines()[:3]) + "\n",
        [],
        2,
        ["points.csv", "at least 3"],
    ),
    (
        "collinear_points_linear",
        "points.csv",
        "pid,easting,northing,20200101,20200113\nA,4000000,3000000,0,1\nB,4000100,3000000,0,1\nC,4000200,3000000,0,2\n",
        [],
        2,
        ["points.csv", "collinear"],
    ),
    (
        "duplicate_date_columns",
        "points.csv",
        "pid,easting,northing,20150101,2015-01-01,20150301\nA,4000000,3000000,1,2,4\n"
        "B,4000100,3000100,1,2,4\nC,4000200,3000000,1,2,4\n",
        [],
        2,
        ["2015-01-01"],
    ),
]


@pytest.mark.parametrize("case, name, content, extra, expected_code, words", GRID_CASES, ids=_case_ids(GRID_CASES))
def test_grid_bad_input_fails_cleanly(tmp_path, capsys, case, name, content, extra, expected_code, words):
    src = tmp_path / name
    if content is not None:
        _write(src, content)
    output = tmp_path / "cube.nc"
    if "-o" in extra:  # the case is about the output name
        output = tmp_path / extra[extra.index("-o") + 1]
        extra = [a for a in extra if a not in ("-o", output.name)]
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(["grid", src, "-o", output, "-q", *extra], capsys)
    # A problem with an option names the option, one with the output names the output;
    # otherwise the input file must be named.
    names = words if any(w.startswith("--") or w == output.name for w in words) else [name, *words]
    assert_clean_failure(code, err, expected_code, names, tmp_path, before, output)


@pytest.mark.parametrize("reader", ["memory", "cache"])
def test_unsorted_date_columns_keep_their_values(tmp_path, reader):
    from insar_raster.io.cache import cached_points
    from insar_raster.io.points import read_points

    src = _write(
        tmp_path / "points.csv",
        "pid,easting,northing,20150101,20150201,20150125,20150301\n"
        "A,4000000,3000000,1,2,3,4\nB,4000100,3000100,1,2,3,4\nC,4000200,3000000,1,2,3,4\n",
    )
    if reader == "memory":
        points = read_points(src)
    else:
        points = cached_points(src, cache_dir=tmp_path / "cache", progress=False)
    assert [str(t)[:10] for t in points.time.values] == ["2015-01-01", "2015-01-25", "2015-02-01", "2015-03-01"]
    np.testing.assert_array_equal(np.asarray(points.displacement.values)[0], [1, 3, 2, 4])


# CSV inputs over 256 MB (or with --cache-dir) go through the streaming cache reader instead:
# the same bad inputs must fail the same way there, and leave no cache entry behind.
_AFTER_READING = {"unknown_output_format", "two_points_linear", "collinear_points_linear"}  # the cache is valid there
_CSV_CASES = [
    c
    for c in GRID_CASES
    if (c.values if hasattr(c, "values") else c)[1].endswith(".csv")
    and not any(str(w).startswith("--") for w in (c.values if hasattr(c, "values") else c)[5])
    and _case_ids([c])[0] not in _AFTER_READING
]


@pytest.mark.parametrize("case, name, content, extra, expected_code, words", _CSV_CASES, ids=_case_ids(_CSV_CASES))
def test_grid_bad_csv_through_the_cache_fails_cleanly(
    tmp_path, tmp_path_factory, capsys, case, name, content, extra, expected_code, words
):
    cache = tmp_path_factory.mktemp("cache")
    src = tmp_path / name
    if content is not None:
        _write(src, content)
    output = tmp_path / "cube.nc"
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(["grid", src, "-o", output, "-q", "--cache-dir", cache, *extra], capsys)
    assert_clean_failure(code, err, expected_code, [name, *words], tmp_path, before, output)
    assert list(cache.iterdir()) == [], "a failed read left a cache entry"


def test_grid_output_in_missing_folder(tmp_path, capsys):
    src = _write(tmp_path / "points.csv", good_csv_text())
    output = tmp_path / "no" / "such" / "cube.nc"
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(["grid", src, "-o", output, "-q"], capsys)
    assert_clean_failure(code, err, 2, ["cube.nc", "does not exist"], tmp_path, before, output)


def test_grid_output_under_a_file_instead_of_a_folder(tmp_path, capsys):
    src = _write(tmp_path / "points.csv", good_csv_text())
    output = src / "cube.nc"  # the "folder" is a file
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(["grid", src, "-o", output, "-q"], capsys)
    assert_clean_failure(code, err, 2, ["cube.nc", "does not exist"], tmp_path, before, output)


def test_grid_output_in_read_only_folder(tmp_path, capsys):
    src = _write(tmp_path / "points.csv", good_csv_text())
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user (root) that can write into read-only folders")
        output = locked / "cube.nc"
        code, _, err = run_cli(["grid", src, "-o", output, "-q"], capsys)
        assert_clean_failure(code, err, 2, ["cube.nc", "not writable"], locked, set(), output)
    finally:
        locked.chmod(0o755)


def test_grid_permission_denied_at_write_time(tmp_path, capsys, monkeypatch):
    """What a read-only folder does when the early check cannot see it (root, ACLs, races):
    the OS refuses the temporary file. Simulated, so that it also runs as root."""
    import tempfile

    src = _write(tmp_path / "points.csv", good_csv_text())
    output = tmp_path / "cube.nc"

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(["grid", src, "-o", output, "-q"], capsys)
    assert_clean_failure(code, err, 2, [str(tmp_path), "Permission denied"], tmp_path, before, output)


@pytest.mark.parametrize("suffix", [".nc", ".tif", ".zarr"])
def test_grid_refuses_existing_output_unless_overwrite(tmp_path, capsys, suffix):
    src = _write(tmp_path / "points.csv", good_csv_text())
    output = tmp_path / f"cube{suffix}"
    code, _, err = run_cli(["grid", src, "-o", output, "-q", "--no-style"], capsys)
    assert code == 0, err
    if output.is_dir():
        stamp = {p.relative_to(output): p.stat().st_mtime_ns for p in output.rglob("*")}
    else:
        stamp = output.read_bytes()
    before = {p.name for p in tmp_path.iterdir()}

    code, _, err = run_cli(["grid", src, "-o", output, "-q", "--no-style"], capsys)
    assert_clean_failure(code, err, 2, [output.name, "already exists", "--overwrite"], tmp_path, before, None)
    if output.is_dir():
        assert {p.relative_to(output): p.stat().st_mtime_ns for p in output.rglob("*")} == stamp
    else:
        assert output.read_bytes() == stamp  # untouched

    # With --overwrite it is replaced, and nothing else is left in the folder.
    code, _, err = run_cli(
        ["grid", src, "-o", output, "-q", "--no-style", "--overwrite", "--resolution", "250"], capsys
    )
    assert code == 0, err
    assert leftovers(tmp_path, before) == set()
    from insar_raster.io.cube import open_cube

    if suffix != ".tif":
        assert float(open_cube(output).x.diff("x")[0]) == 250.0
    else:
        import rasterio

        with rasterio.open(output) as ds:
            assert ds.transform.a == 250.0


@pytest.mark.parametrize(
    "exc", [ZeroDivisionError("division by zero"), MemoryError(), RuntimeError("line one\nline two")]
)
def test_internal_failure_is_one_line_exit_1(tmp_path, capsys, monkeypatch, exc):
    """A bug of ours (not bad input): exit 1, one line, a pointer to --debug, no traceback, no output."""
    from insar_raster.grid import gridding

    def broken(*args, **kwargs):
        raise exc

    monkeypatch.setattr(gridding, "grid_points", broken)
    src = _write(tmp_path / "points.csv", good_csv_text())
    output = tmp_path / "cube.nc"
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(["grid", src, "-o", output, "-q"], capsys)
    assert_clean_failure(code, err, 1, [type(exc).__name__, "--debug"], tmp_path, before, output)


def test_usage_error_is_one_line_exit_2(capsys):
    code, _, err = run_cli(["grid"], capsys)
    assert code == 2
    assert "Traceback" not in err
    assert len(error_lines(err)) == 1 and "error:" in err


def test_unknown_command_exit_2(capsys):
    code, _, err = run_cli(["frobnicate"], capsys)
    assert code == 2 and "Traceback" not in err and len(error_lines(err)) == 1


# --------------------------------------------------------------------------- grid: recoverable oddities


def test_warnings_not_errors_duplicates_nan_rows_outside_bounds(tmp_path, capsys):
    # Two overlapping tiles: pids P0..P11 appear in both.
    tile_a = _write(tmp_path / "tile_a.csv", good_csv_text(n_points=24, seed=1))
    lines = good_csv_text(n_points=24, seed=1).splitlines()
    tile_b_lines = (
        [lines[0]]
        + lines[1:13]
        + [line.replace("P", "Q", 1) for line in good_csv_text(n_points=24, seed=2).splitlines()[1:]]
    )
    # Two rows with a NaN (empty cell) in tile b.
    for k in (14, 15):
        cells = tile_b_lines[k].split(",")
        cells[4] = ""
        tile_b_lines[k] = ",".join(cells)
    tile_b = _write(tmp_path / "tile_b.csv", "\n".join(tile_b_lines) + "\n")
    output = tmp_path / "cube.nc"
    # Bounds covering only part of the points.
    code, _, err = run_cli(
        [
            "grid",
            tile_a,
            tile_b,
            "-o",
            output,
            "-q",
            "--bounds",
            "4000000,3000000,4001000,3002000",
            "--method",
            "nearest",
        ],
        capsys,
    )
    assert code == 0, err
    assert "Traceback" not in err and error_lines(err) == []
    warnings_ = [line for line in err.splitlines() if line.startswith("warning:")]
    assert any("12 duplicate pid" in w for w in warnings_), warnings_
    assert any("dropped 2 point(s)" in w and "NaN" in w for w in warnings_), warnings_
    assert any("outside --bounds" in w for w in warnings_), warnings_
    from insar_raster.io.cube import open_cube

    cube = open_cube(output)
    # 24 + 24 unique - 2 NaN rows = 46 MPs read; those inside the bounds are counted in mp_count.
    assert 0 < int(cube.mp_count.sum()) < 46


# --------------------------------------------------------------------------- real terminal (subprocess)


def _run_module(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "insar_raster", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_subprocess_bad_input_no_traceback(tmp_path):
    _write(tmp_path / "points.csv", "pid,easting,northing\n1,2,3\n")
    proc = _run_module(["grid", "points.csv", "-o", "cube.nc", "-q"], tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert error_lines(proc.stderr) == [
        "insar-raster grid: error: points.csv: no date columns found (expected columns named YYYYMMDD, DYYYYMMDD or YYYY-MM-DD)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.csv"]


def test_subprocess_debug_shows_traceback(tmp_path):
    proc = _run_module(["grid", "missing.csv", "-o", "cube.nc", "-q", "--debug"], tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "InputError" in proc.stderr


# --------------------------------------------------------------------------- commands that read a cube


def _tiny_cube(n_epochs: int = 6, height: int = 8, width: int = 8, seed: int = 0, crs: bool = True):
    from insar_raster.grid.spec import GridSpec
    from insar_raster.io.cube import make_cube

    grid = GridSpec("EPSG:3035", 100.0, 4_000_000.0, 3_000_000.0, width, height)
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.normal(0, 1, (n_epochs, height, width)), axis=0).astype(np.float32)
    values[0] = 0
    times = np.datetime64("2020-01-01") + np.arange(n_epochs) * np.timedelta64(12, "D")
    cube = make_cube(values, times, grid)
    if not crs:
        cube = cube.drop_vars("spatial_ref")
        for name in cube.data_vars:
            cube[name].attrs.pop("grid_mapping", None)
    return cube


def _write_netcdf(path: Path, ds) -> Path:
    ds.to_netcdf(path, engine="netcdf4")
    return path


def make_bad_cube(kind: str, folder: Path) -> Path:
    """Write one kind of unusable cube input into ``folder``; return its path."""
    import xarray as xr

    if kind == "missing":
        return folder / "cube.nc"
    if kind == "empty":
        return _write(folder / "cube.nc", b"")
    if kind == "garbage":
        return _write(folder / "cube.nc", BINARY_GARBAGE)
    if kind == "truncated":
        good = _write_netcdf(folder / "good.tmp", _tiny_cube())
        data = good.read_bytes()
        good.unlink()
        return _write(folder / "cube.nc", data[: len(data) // 2])
    if kind == "bit_rot":
        # Header intact, compressed data damaged: only noticed when the data is read.
        from insar_raster.gis.write import write_cube

        good = write_cube(_tiny_cube(n_epochs=20, height=64, width=64), folder / "good.nc")  # zlib-compressed
        data = bytearray(good.read_bytes())
        good.unlink()
        middle = len(data) // 2
        data[middle : middle + 2000] = bytes(b ^ 0xFF for b in data[middle : middle + 2000])
        return _write(folder / "cube.nc", bytes(data))
    if kind == "truncated_tif":
        # A GeoTIFF cube cut after its header (a copy stopped short): it opens, and fails
        # only when its bands are read.
        from insar_raster.gis.write import write_cube

        good = write_cube(_tiny_cube(n_epochs=20, height=64, width=64), folder / "good.tif", style=False)
        data = good.read_bytes()
        good.unlink()
        return _write(folder / "cube.tif", data[: len(data) // 3])
    if kind == "no_displacement":
        ds = xr.Dataset(
            {"velocity": (("y", "x"), np.zeros((3, 3), np.float32))},
            coords={"y": [3.0, 2.0, 1.0], "x": [1.0, 2.0, 3.0]},
        )
        return _write_netcdf(folder / "cube.nc", ds)
    if kind == "displacement_2d":
        return _write_netcdf(folder / "cube.nc", _tiny_cube().isel(time=0).drop_vars("time"))
    if kind == "no_crs":
        return _write_netcdf(folder / "cube.nc", _tiny_cube(crs=False))
    if kind == "csv_as_cube":
        return _write(folder / "points.csv", good_csv_text())
    if kind == "empty_zarr":
        (folder / "cube.zarr").mkdir()
        return folder / "cube.zarr"
    raise ValueError(kind)


BAD_CUBES = {
    # kind: words the one-line message must contain (besides the file name)
    "missing": ["not found"],
    "empty": ["empty"],
    "garbage": ["cannot read"],
    "truncated": ["cannot read"],
    "bit_rot": ["corrupt"],
    "truncated_tif": ["IReadBlock", "re-create it"],
    "no_displacement": ["displacement"],
    "displacement_2d": ["displacement"],
    "no_crs": ["CRS"],
    "csv_as_cube": ["not a cube file"],
    "empty_zarr": ["Zarr"],
}


# Every command that reads a cube, with the output it would write.
CUBE_COMMANDS = {
    "export": ["-o", "out.tif"],
    "train": ["-o", "out.ipt", *TINY_TRAIN],
    "forecast": ["-o", "out.tif", *TINY_TRAIN],
    "evaluate": ["-o", "report", "--epochs", "1", "--window", "4", "--steps", "2", "--device", "cpu"],
}


@pytest.mark.parametrize("command", sorted(CUBE_COMMANDS))
@pytest.mark.parametrize("kind", sorted(BAD_CUBES))
def test_bad_cube_fails_cleanly(tmp_path, capsys, kind, command):
    src = make_bad_cube(kind, tmp_path)
    args = [str(tmp_path / a) if a.startswith(("out", "report")) else a for a in CUBE_COMMANDS[command]]
    output = Path(args[1])
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli([command, src, *args, "-q"], capsys)
    assert_clean_failure(code, err, 2, [src.name, *BAD_CUBES[kind]], tmp_path, before, output)


def test_a_cube_date_missing_from_the_points_or_the_truth_is_one_clear_error():
    """Points and truth cubes are read on the cube's dates: one rule (io.cube.cube_date_index)
    and one message for both, naming the file (points) or the parameter (truth)."""
    from insar_raster.errors import InputError
    from insar_raster.evaluate.truth import align_truth
    from insar_raster.forecast.points import points_on_cube
    from insar_raster.io.cube import cube_date_index
    from insar_raster.io.points import make_points

    cube = _tiny_cube(n_epochs=6)
    reversed_ = cube.isel(time=slice(None, None, -1))
    np.testing.assert_array_equal(cube_date_index(cube, reversed_, "truth cube"), [5, 4, 3, 2, 1, 0])
    np.testing.assert_array_equal(align_truth(cube, reversed_), cube["displacement"].values)
    gap = cube.isel(time=[0, 1, 2, 4, 5])
    with pytest.raises(InputError, match=r"^truth: 1 of the cube's 6 dates are not in the truth cube \(first: ") as err:
        align_truth(cube, gap)
    assert err.value.param == "truth"
    x, y = np.meshgrid(cube["x"].values, cube["y"].values)
    values = gap["displacement"].values.reshape(5, -1).T
    points = make_points(x.ravel(), y.ravel(), values, gap["time"].values, cube.rio.crs)
    with pytest.raises(InputError, match=r"1 of the cube's 6 dates are not in the points \(first: ") as err:
        points_on_cube(points, cube, name="mps.csv")
    assert str(err.value.path) == "mps.csv"


def test_opened_inputs_are_recorded_by_the_block_that_asks(tmp_path):
    """The cube files a command opened (named in a later data-read error) are recorded in
    the caller's list, by the innermost block only, and nowhere outside a block."""
    from insar_raster.gis.write import write_cube
    from insar_raster.io.cube import open_cube, opened_inputs

    a, b = (write_cube(_tiny_cube(seed=i), tmp_path / f"{name}.nc") for i, name in enumerate("ab"))
    open_cube(a)  # outside any block: recorded nowhere
    with opened_inputs() as outer:
        open_cube(a)
        with opened_inputs() as inner:
            open_cube(b)
        open_cube(a)
    assert outer == [a, a] and inner == [b]
    with opened_inputs() as later:
        pass
    assert later == []


@pytest.mark.parametrize(
    "kind", sorted(set(BAD_CUBES) - {"csv_as_cube", "no_crs", "no_displacement", "displacement_2d"})
)
def test_info_unreadable_file_fails_cleanly(tmp_path, capsys, kind):
    src = make_bad_cube(kind, tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(["info", src, "-q"], capsys)
    assert_clean_failure(code, err, 2, [src.name], tmp_path, before, None)


# --------------------------------------------------------------------------- model files never run code


class _CreatesMarker:
    """Unpickling this object creates ``marker`` (via builtins.open): proof of code execution."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_file(path: Path, marker: Path) -> Path:
    import pickle

    path.write_bytes(pickle.dumps({"model": _CreatesMarker(marker)}))
    return path


def _torch_pickle_file(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"weight": torch.zeros(2), "evil": _CreatesMarker(marker)}, path)
    return path


def _model_with_evil_weights(path: Path, marker: Path, header: dict | None = None) -> Path:
    """A file with a valid model header whose weights section is a malicious pickle."""
    import io
    import json
    import struct

    import torch

    from insar_raster.forecast.modelfile import FORMAT_VERSION, MAGIC

    header = header or {
        "format": "insar-raster-model",
        "format_version": FORMAT_VERSION,
        "arch": "convlstm",
        "hparams": {},
        "config": {},
        "normalisation": {},
        "grid": {},
    }
    raw = json.dumps(header).encode()
    weights = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "evil": _CreatesMarker(marker)}, weights)
    path.write_bytes(MAGIC + struct.pack("<Q", len(raw)) + raw + weights.getvalue())
    return path


def _sanity_check_the_payloads_do_execute(tmp_path):
    """The malicious payloads are real: loading them unsafely creates the marker."""
    import pickle

    marker = tmp_path / "control_marker"
    pickle.loads(_pickle_file(tmp_path / "control.pkl", marker).read_bytes())
    assert marker.exists()
    marker.unlink()
    import torch

    torch.load(_torch_pickle_file(tmp_path / "control.pt", marker), weights_only=False)
    assert marker.exists()
    marker.unlink()
    for p in (tmp_path / "control.pkl", tmp_path / "control.pt"):
        p.unlink()


EVIL_MODELS = {
    "plain_pickle": _pickle_file,
    "torch_save_pickle": _torch_pickle_file,
    "valid_header_evil_weights": _model_with_evil_weights,
}


@pytest.mark.parametrize("kind", sorted(EVIL_MODELS))
@pytest.mark.parametrize("suffix", [".ipt", ".pt"])
def test_load_model_never_executes_a_pickle(tmp_path, kind, suffix):
    from insar_raster import load_model
    from insar_raster.errors import InputError

    _sanity_check_the_payloads_do_execute(tmp_path)
    marker = tmp_path / "marker"
    path = EVIL_MODELS[kind](tmp_path / f"model{suffix}", marker)
    with pytest.raises(InputError) as info:
        load_model(path)
    assert f"model{suffix}" in info.value.message
    assert not marker.exists(), "loading the model file executed code"


@pytest.mark.parametrize("kind", sorted(EVIL_MODELS))
def test_info_on_a_pickle_never_executes_it(tmp_path, capsys, kind):
    marker = tmp_path / "marker"
    path = EVIL_MODELS[kind](tmp_path / "model.ipt", marker)
    code, out, err = run_cli(["info", path], capsys)
    assert not marker.exists(), "'info' executed code from the model file"
    assert "Traceback" not in err
    # A plain pickle is not recognisable as anything: a clean error. A valid header is described.
    if kind == "valid_header_evil_weights":
        assert code == 0 and "convlstm" in out
    else:
        assert code == 2 and len(error_lines(err)) == 1 and "model.ipt" in err


# --------------------------------------------------------------------------- train / forecast


def _scene_cube(n_epochs=24, shape=(16, 16), resolution=100.0, seed=1):
    from insar_raster.synth import make_scene_cube

    return make_scene_cube(shape=shape, n_epochs=n_epochs, seed=seed, resolution=resolution)[0]


@pytest.fixture(scope="module")
def forecast_inputs(tmp_path_factory):
    """A folder with a tiny cube, a model trained on it by the CLI, and assorted bad inputs."""
    from insar_raster.gis.write import write_cube

    folder = tmp_path_factory.mktemp("forecast_inputs")
    cube = _scene_cube()
    write_cube(cube, folder / "cube.nc")
    write_cube(cube.isel(time=slice(0, 1)), folder / "one_epoch.nc")
    write_cube(cube.isel(time=slice(0, 3)), folder / "three_epochs.nc")  # < window
    write_cube(cube.isel(time=slice(0, 5)), folder / "five_epochs.nc")  # < window + steps (+ split)
    write_cube(_scene_cube(resolution=250.0), folder / "other_grid.nc")
    (folder / "sub").mkdir()
    make_bad_cube("no_displacement", folder / "sub").rename(folder / "no_displacement.nc")
    _write(folder / "points.csv", good_csv_text())
    assert main([str(a) for a in ["train", folder / "cube.nc", "-o", folder / "model.ipt", "-q", *TINY_TRAIN]]) == 0
    model = (folder / "model.ipt").read_bytes()
    _write(folder / "truncated_model.ipt", model[: len(model) // 2])
    _write(folder / "header_only_model.ipt", model[:40])
    _write(folder / "garbage_model.ipt", BINARY_GARBAGE)
    _write(folder / "empty_model.ipt", b"")
    from insar_raster.forecast.modelfile import MAGIC

    _write(folder / "bad_json_model.ipt", MAGIC + (20).to_bytes(8, "little") + b"{not json at all!!!}" + model[-100:])
    _write(folder / "bitrot_model.ipt", _flip_bytes_in_largest_tensor(model))
    return folder


def _flip_bytes_in_largest_tensor(model: bytes) -> bytes:
    """Damage 64 bytes in the middle of the largest weight tensor (bit rot), nothing else."""
    import io
    import struct
    import zipfile

    from insar_raster.forecast.modelfile import MAGIC

    (n,) = struct.unpack("<Q", model[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8 + n
    payload = model[start:]
    info = max(zipfile.ZipFile(io.BytesIO(payload)).infolist(), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", payload[info.header_offset + 26 : info.header_offset + 30])
    data_start = start + info.header_offset + 30 + name_len + extra_len
    middle = data_start + info.file_size // 2
    damaged = bytearray(model)
    damaged[middle : middle + 64] = bytes(b ^ 0x5A for b in damaged[middle : middle + 64])
    return bytes(damaged)


def _copy_inputs(forecast_inputs: Path, tmp_path: Path, names) -> None:
    import shutil

    for name in names:
        shutil.copy(forecast_inputs / name, tmp_path / name)


# (case id, command args with {placeholders}, files copied into the test folder, expected code, words)
FORECAST_CASES = [
    ("single_epoch_with_model", ["forecast", "one_epoch.nc", "--model", "model.ipt"], 2, ["one_epoch.nc", "epochs"]),
    ("single_epoch_training", ["forecast", "one_epoch.nc", *TINY_TRAIN], 2, ["one_epoch.nc"]),
    (
        "fewer_epochs_than_window",
        ["forecast", "three_epochs.nc", "--model", "model.ipt"],
        2,
        ["three_epochs.nc", "window"],
    ),
    ("fewer_epochs_than_window_plus_steps_train", ["train", "five_epochs.nc", *TINY_TRAIN], 2, ["five_epochs.nc"]),
    (
        "fewer_epochs_than_window_plus_steps_forecast",
        ["forecast", "five_epochs.nc", *TINY_TRAIN],
        2,
        ["five_epochs.nc"],
    ),
    (
        "netcdf_without_displacement",
        ["forecast", "no_displacement.nc", "--model", "model.ipt"],
        2,
        ["no_displacement.nc", "displacement"],
    ),
    (
        "netcdf_without_displacement_train",
        ["train", "no_displacement.nc", *TINY_TRAIN],
        2,
        ["no_displacement.nc", "displacement"],
    ),
    (
        "csv_passed_to_forecast",
        ["forecast", "points.csv", "--model", "model.ipt"],
        2,
        ["points.csv", "not a cube", "insar-raster grid points.csv"],
    ),
    ("csv_passed_to_forecast_training", ["forecast", "points.csv", *TINY_TRAIN], 2, ["points.csv", "not a cube"]),
    ("csv_passed_to_train", ["train", "points.csv", *TINY_TRAIN], 2, ["points.csv", "not a cube"]),
    ("missing_cube", ["forecast", "nothere.nc", "--model", "model.ipt"], 2, ["nothere.nc", "not found"]),
    ("missing_model", ["forecast", "cube.nc", "--model", "nothere.ipt"], 2, ["nothere.ipt", "not found"]),
    ("empty_model", ["forecast", "cube.nc", "--model", "empty_model.ipt"], 2, ["empty_model.ipt"]),
    (
        "truncated_model",
        ["forecast", "cube.nc", "--model", "truncated_model.ipt"],
        2,
        ["truncated_model.ipt", "corrupt"],
    ),
    (
        "header_only_model",
        ["forecast", "cube.nc", "--model", "header_only_model.ipt"],
        2,
        ["header_only_model.ipt", "corrupt"],
    ),
    (
        "garbage_model",
        ["forecast", "cube.nc", "--model", "garbage_model.ipt"],
        2,
        ["garbage_model.ipt", "not an insar-raster model"],
    ),
    ("bad_json_model", ["forecast", "cube.nc", "--model", "bad_json_model.ipt"], 2, ["bad_json_model.ipt", "corrupt"]),
    ("bitrot_model", ["forecast", "cube.nc", "--model", "bitrot_model.ipt"], 2, ["bitrot_model.ipt", "checksum"]),
    (
        "cube_passed_as_model",
        ["forecast", "cube.nc", "--model", "cube.nc"],
        2,
        ["cube.nc", "not an insar-raster model"],
    ),
    ("model_for_another_grid", ["forecast", "other_grid.nc", "--model", "model.ipt"], 2, ["other_grid.nc", "grid"]),
    ("forecast_steps_beyond_model", ["forecast", "cube.nc", "--model", "model.ipt", "--steps", "5"], 2, ["--steps"]),
    ("forecast_zero_steps", ["forecast", "cube.nc", "--model", "model.ipt", "--steps", "0"], 2, ["--steps"]),
    # Nothing is trained with --model: a training option would be silently ignored (was: exit 0).
    (
        "forecast_training_option_with_model",
        ["forecast", "cube.nc", "--model", "model.ipt", "--window", "4"],
        2,
        ["--window", "only applies when training here"],
    ),
    ("train_zero_window", ["train", "cube.nc", *TINY_TRAIN[2:], "--window", "0"], 2, ["--window"]),
    ("train_negative_significance", ["train", "cube.nc", *TINY_TRAIN, "--significance", "-1"], 2, ["--significance"]),
    (
        "train_bad_fractions",
        ["train", "cube.nc", *TINY_TRAIN, "--val-fraction", "0.6", "--test-fraction", "0.6"],
        2,
        ["cube.nc", "no train sample"],
    ),
    (
        "forecast_unknown_output_format",
        ["forecast", "cube.nc", "--model", "model.ipt", "-o", "out.png"],
        2,
        ["out.png", "unknown output format"],
    ),
]
_INPUT_FILES = [
    "cube.nc",
    "one_epoch.nc",
    "three_epochs.nc",
    "five_epochs.nc",
    "other_grid.nc",
    "no_displacement.nc",
    "points.csv",
    "model.ipt",
    "truncated_model.ipt",
    "header_only_model.ipt",
    "garbage_model.ipt",
    "empty_model.ipt",
    "bad_json_model.ipt",
    "bitrot_model.ipt",
]


@pytest.mark.parametrize("case, argv, expected_code, words", FORECAST_CASES, ids=_case_ids(FORECAST_CASES))
def test_train_forecast_bad_input_fails_cleanly(
    forecast_inputs, tmp_path, monkeypatch, capsys, case, argv, expected_code, words
):
    names = {a for a in argv if a in _INPUT_FILES}
    _copy_inputs(forecast_inputs, tmp_path, names)
    monkeypatch.chdir(tmp_path)
    argv = list(argv)
    if "-o" not in argv:
        argv += ["-o", "out.tif" if argv[0] == "forecast" else "out.ipt"]
    output = tmp_path / argv[argv.index("-o") + 1]
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli([*argv, "-q"], capsys)
    assert_clean_failure(code, err, expected_code, words, tmp_path, before, output)


@pytest.mark.parametrize("kind", sorted(EVIL_MODELS))
def test_forecast_with_a_pickle_as_model_executes_nothing(forecast_inputs, tmp_path, capsys, kind):
    _copy_inputs(forecast_inputs, tmp_path, ["cube.nc"])
    marker = tmp_path / "marker"
    model = EVIL_MODELS[kind](tmp_path / "evil.ipt", marker)
    output = tmp_path / "out.tif"
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(["forecast", tmp_path / "cube.nc", "--model", model, "-o", output, "-q"], capsys)
    assert not marker.exists(), "the model file executed code"
    assert_clean_failure(code, err, 2, ["evil.ipt"], tmp_path, before, output)


def test_forecast_pickle_model_subprocess(forecast_inputs, tmp_path):
    """Through a real process too: exit 2, one line, no traceback, no marker."""
    _copy_inputs(forecast_inputs, tmp_path, ["cube.nc"])
    marker = tmp_path / "marker"
    _pickle_file(tmp_path / "model.pkl", marker)
    proc = _run_module(["forecast", "cube.nc", "--model", "model.pkl", "-o", "out.tif", "-q"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(error_lines(proc.stderr)) == 1 and "model.pkl" in proc.stderr
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.nc", "model.pkl"]


def test_forecast_refuses_existing_output_and_missing_folder(forecast_inputs, tmp_path, capsys):
    _copy_inputs(forecast_inputs, tmp_path, ["cube.nc", "model.ipt"])
    output = tmp_path / "out.nc"
    code, _, err = run_cli(
        ["forecast", tmp_path / "cube.nc", "--model", tmp_path / "model.ipt", "-o", output, "-q"], capsys
    )
    assert code == 0, err
    old = output.read_bytes()
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = run_cli(
        ["forecast", tmp_path / "cube.nc", "--model", tmp_path / "model.ipt", "-o", output, "-q"], capsys
    )
    assert_clean_failure(code, err, 2, ["out.nc", "already exists"], tmp_path, before, None)
    assert output.read_bytes() == old
    missing = tmp_path / "nope" / "out.nc"
    code, _, err = run_cli(
        ["forecast", tmp_path / "cube.nc", "--model", tmp_path / "model.ipt", "-o", missing, "-q"], capsys
    )
    assert_clean_failure(code, err, 2, ["out.nc", "does not exist"], tmp_path, before, missing)
    # train refuses to replace a model too
    model_stamp = (tmp_path / "model.ipt").read_bytes()
    code, _, err = run_cli(["train", tmp_path / "cube.nc", "-o", tmp_path / "model.ipt", "-q", *TINY_TRAIN], capsys)
    assert_clean_failure(code, err, 2, ["model.ipt", "already exists"], tmp_path, before, None)
    assert (tmp_path / "model.ipt").read_bytes() == model_stamp


def test_forecast_is_deterministic_for_a_seed(forecast_inputs, tmp_path, capsys):
    """Two runs with the same --seed on CPU (training included), in two processes, give identical forecasts."""
    import xarray as xr

    _copy_inputs(forecast_inputs, tmp_path, ["cube.nc"])
    outputs = {}
    for name, seed in (("a.nc", "7"), ("b.nc", "7"), ("c.nc", "8")):
        args = ["forecast", "cube.nc", "-o", name, "-q", *TINY_TRAIN, "--seed", seed, "--save-model", f"{name}.ipt"]
        if name == "b.nc":
            # A separate process (fresh interpreter, another hash seed, fresh torch state).
            proc = _run_module(args, tmp_path)
            assert proc.returncode == 0, proc.stderr
        else:
            code, _, err = run_cli([tmp_path / a if a in ("cube.nc", name, f"{name}.ipt") else a for a in args], capsys)
            assert code == 0, err
        with xr.open_dataset(tmp_path / name) as ds:
            outputs[name] = ds.displacement.values
    assert np.isfinite(outputs["a.nc"]).any()
    np.testing.assert_array_equal(outputs["a.nc"], outputs["b.nc"])  # bit for bit
    # The seed does matter (so the equality above is not trivially true): the weights
    # differ. (The forecasts themselves may coincide: training keeps the untrained model,
    # which starts equal to its history-fit prior, unless it gains 1% on validation.)
    from insar_raster import load_model

    weights = {n: load_model(tmp_path / f"{n}.ipt").model.state_dict() for n in ("a.nc", "b.nc", "c.nc")}
    assert all(np.array_equal(weights["a.nc"][k].numpy(), weights["b.nc"][k].numpy()) for k in weights["a.nc"])
    assert not all(np.array_equal(weights["a.nc"][k].numpy(), weights["c.nc"][k].numpy()) for k in weights["a.nc"])
