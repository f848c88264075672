"""Streaming CSV -> Parquet+Zarr cache: same points as read_points, reused, atomic."""

import os
import zipfile

import numpy as np
import pytest

from insar_raster.cli import main
from insar_raster.errors import InputError
from insar_raster.io import cache as cache_mod
from insar_raster.io.cache import build_points_cache, cached_points, open_points_cache
from insar_raster.io.cube import open_cube
from insar_raster.io.points import read_points, write_points


def _assert_same_points(got, want):
    assert got.sizes == want.sizes
    np.testing.assert_array_equal(got.time.values, want.time.values)
    np.testing.assert_array_equal(got.pid.values, want.pid.values)
    np.testing.assert_allclose(got.x.values, want.x.values, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.y.values, want.y.values, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got.displacement.values, want.displacement.values)
    assert got.displacement.dtype == np.float32
    assert got.rio.crs == want.rio.crs
    if "mean_velocity" in want:
        np.testing.assert_array_equal(got.mean_velocity.values, want.mean_velocity.values)


@pytest.fixture()
def l2b_csv(tmp_path, small_scene):
    points, _ = small_scene
    return write_points(points, tmp_path / "tile.csv", layout="L2b")


def test_streamed_cache_equals_read_points(l2b_csv, tmp_path):
    want = read_points(l2b_csv)
    # Small blocks: the file is parsed as many record batches and written as many chunks.
    got = cached_points(l2b_csv, cache_dir=tmp_path / "cache", block_bytes=64 * 1024)
    assert got.displacement.chunks is not None  # lazy, read from Zarr
    _assert_same_points(got, want)
    folder = next((tmp_path / "cache").iterdir())
    assert {p.name for p in folder.iterdir()} == {"points.parquet", "values.zarr", "meta.json"}


def test_read_points_decides_when_to_use_the_cache(l2b_csv, tmp_path, monkeypatch):
    """read_points(cache=...): True streams, False (the default) never; "auto" streams with
    a cache_dir or above AUTO_CACHE_BYTES of CSV text, and reads small files in memory."""
    want = read_points(l2b_csv)
    assert want.displacement.chunks is None and "cache" not in want.attrs
    assert read_points(l2b_csv, cache="auto").displacement.chunks is None  # small, no cache_dir
    for cache, root in ((True, None), ("auto", tmp_path / "cache")):
        monkeypatch.setenv("INSAR_RASTER_CACHE", str(tmp_path / "default"))
        got = read_points(l2b_csv, cache=cache, cache_dir=root)
        assert got.displacement.chunks is not None and got.attrs["cache"].startswith(str(root or tmp_path / "default"))
        _assert_same_points(got, want)
    monkeypatch.setattr(cache_mod, "AUTO_CACHE_BYTES", l2b_csv.stat().st_size - 1)
    assert read_points(l2b_csv, cache="auto").displacement.chunks is not None  # over the threshold
    assert read_points(l2b_csv).displacement.chunks is None  # the default never streams
    gpkg = write_points(want, tmp_path / "p.gpkg")
    assert read_points(gpkg, cache=True).displacement.chunks is None  # only CSV streams
    with pytest.raises(InputError, match="expected True, False or 'auto'") as err:
        read_points(l2b_csv, cache="yes")
    assert err.value.param == "cache"


def test_cache_is_reused_and_keyed_on_file_and_options(l2b_csv, tmp_path, monkeypatch):
    root = tmp_path / "cache"
    first = cached_points(l2b_csv, cache_dir=root)
    calls = []
    real_build = cache_mod.build_points_cache
    monkeypatch.setattr(cache_mod, "build_points_cache", lambda *a, **k: calls.append(1) or real_build(*a, **k))
    again = cached_points(l2b_csv, cache_dir=root)
    assert calls == [] and again.attrs["cache"] == first.attrs["cache"]
    # Another option: another cache.
    sub = cached_points(l2b_csv, cache_dir=root, start=str(first.time.values[5])[:10])
    assert calls == [1] and sub.sizes["time"] == first.sizes["time"] - 5
    # The file changes (new mtime and size): rebuilt, with the new content.
    text = l2b_csv.read_text().splitlines(keepends=True)
    l2b_csv.write_text("".join(text[:-10]))
    st = l2b_csv.stat()
    os.utime(l2b_csv, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = cached_points(l2b_csv, cache_dir=root)
    assert calls == [1, 1] and changed.sizes["point"] == first.sizes["point"] - 10
    assert len(list(root.iterdir())) == 3


def test_tiles_zip_duplicates_nan_and_period(tmp_path, small_scene):
    points, _ = small_scene
    a = write_points(points.isel(point=slice(0, 1800)), tmp_path / "a.csv")
    b = write_points(points.isel(point=slice(1500, 3000)), tmp_path / "b.csv")  # 300 duplicate pids
    lines = b.read_text().splitlines(keepends=True)
    cells = lines[400].split(",")  # a row of b only (not a duplicate)
    cells[-3] = ""  # one missing displacement value
    lines[400] = ",".join(cells)
    b.write_text("".join(lines))
    with zipfile.ZipFile(tmp_path / "tiles.zip", "w") as zf:
        zf.write(a, "a.csv")
        zf.write(b, "b.csv")
    start = str(points.time.values[3])[:10]
    with pytest.warns(UserWarning) as record:
        want = read_points([a, b], start=start)
    with pytest.warns(UserWarning) as got_record:
        got = cached_points(tmp_path / "tiles.zip", cache_dir=tmp_path / "cache", start=start, block_bytes=32 * 1024)
    messages = " | ".join(str(w.message) for w in got_record)
    assert "duplicate pid" in messages and "missing (NaN)" in messages
    assert len(record) == len(got_record)
    assert got.sizes["point"] == 3000 - 1
    _assert_same_points(got, want)


def _tiles_with_drops(tmp_path, points):
    """Two CSV tiles, one with fewer epochs, overlapping by 300 pids, a value missing in one row."""
    a = write_points(points.isel(point=slice(0, 1800)), tmp_path / "a.csv")
    b = write_points(points.isel(point=slice(1500, 3000), time=slice(0, 38)), tmp_path / "b.csv")
    lines = b.read_text().splitlines(keepends=True)
    cells = lines[400].split(",")
    cells[-3] = ""
    lines[400] = ",".join(cells)
    b.write_text("".join(lines))
    return [a, b]


def test_a_reused_cache_says_again_what_its_build_dropped(tmp_path, small_scene):
    """Issue #13: the build warned of the rows, pids and epochs it dropped; reusing the
    cache (a second `grid` on the same CSV) was silent about the same drops."""
    import json

    tiles = _tiles_with_drops(tmp_path, small_scene[0])
    said = []
    for _ in ("built", "reused"):
        with pytest.warns(UserWarning) as record:
            points = cached_points(tiles, cache_dir=tmp_path / "cache", block_bytes=32 * 1024)
        said.append([str(w.message) for w in record])
        assert points.sizes["point"] == 1800 + 1500 - 300 - 1
    built, reused = said
    assert any("dropped 300 duplicate pid(s)" in m for m in built)
    assert any("dropped 1 point(s) with missing (NaN) displacement" in m for m in built)
    assert any("inputs have different epochs" in m for m in built)
    assert reused == built
    (folder,) = (tmp_path / "cache").iterdir()
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["rows_dropped"], meta["duplicate_pids"], meta["epochs_dropped"]) == (1, 300, 2)


def test_cli_grid_warns_of_the_same_drops_when_it_reuses_the_cache(tmp_path, small_scene, capsys):
    tiles = _tiles_with_drops(tmp_path, small_scene[0])
    warned = []
    for out in ("first.nc", "second.nc"):
        args = ["grid", *map(str, tiles), "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / out)]
        assert main([*args, "--resolution", "150"]) == 0
        err = capsys.readouterr().err.splitlines()
        warned.append([line for line in err if line.startswith("warning:")])
    assert any("duplicate pid" in line for line in warned[0]) and warned[1] == warned[0]


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"", "file is empty"),
        (b"\x00\x01\x02PK binary", "binary"),
        (b"pid,easting,northing,20200101,20200113\n", "header only"),
        (b"pid,easting,northing,20200101,20200113\nA,1,2,0.0,abc\n", "non-numeric"),
        (b"pid,easting,northing,name\nA,1,2,x\n", "no date columns"),
    ],
)
def test_bad_csv_raises_input_error_and_leaves_no_cache(tmp_path, content, problem):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    root = tmp_path / "cache"
    with pytest.raises(InputError, match=problem):
        cached_points(path, cache_dir=root)
    assert not root.exists() or list(root.iterdir()) == []


def test_open_rejects_incomplete_cache(l2b_csv, tmp_path):
    folder = build_points_cache(l2b_csv, tmp_path / "c")
    (folder / "meta.json").unlink()
    with pytest.raises(InputError, match="not a readable points cache"):
        open_points_cache(folder)


def test_cli_grid_through_cache_matches_in_memory(l2b_csv, tmp_path, capsys):
    cache_dir = tmp_path / "cache"
    args = [str(l2b_csv), "--resolution", "150", "--tile-size", "16"]
    assert main(["grid", *args, "--cache-dir", str(cache_dir), "-o", str(tmp_path / "cached.nc")]) == 0
    err = capsys.readouterr().err
    assert "peak memory" in err and "tile(s)" in err and "MPs" in err
    assert main(["grid", *args, "--no-cache", "-o", str(tmp_path / "memory.nc"), "-q"]) == 0
    assert main(["grid", *args, "--cache-dir", str(cache_dir), "-o", str(tmp_path / "again.nc")]) == 0
    assert "reusing points cache" in capsys.readouterr().err
    cached, memory, again = (open_cube(tmp_path / n) for n in ("cached.nc", "memory.nc", "again.nc"))
    np.testing.assert_array_equal(cached.displacement.values, memory.displacement.values)
    np.testing.assert_array_equal(again.displacement.values, memory.displacement.values)
    assert cached.attrs["tiles"] > 1


def test_csv_without_pid_keeps_row_numbers_as_read_points(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    values = rng.normal(0, 3, (n, 6)).round(1)
    values[:, 0] = 0
    lines = ["easting,northing,20200101,20200113,20200125,20200206,20200218,20200301"]
    for i in range(n):
        cells = [
            f"{3.2e6 + rng.uniform(0, 5000):.1f}",
            f"{3.4e6 + rng.uniform(0, 5000):.1f}",
            *(f"{v:g}" for v in values[i]),
        ]
        if i in (7, 250):
            cells[4] = ""  # missing value: row dropped, numbering of the others unchanged
        lines.append(",".join(cells))
    path = tmp_path / "nopid.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="dropped 2 point"):
        want = read_points(path)
    with pytest.warns(UserWarning, match="dropped 2 point"):
        got = cached_points(path, cache_dir=tmp_path / "cache", block_bytes=2048)
    assert got.sizes["point"] == n - 2 and "nopid:8" in set(got.pid.values) and "nopid:7" not in set(got.pid.values)
    _assert_same_points(got, want)
