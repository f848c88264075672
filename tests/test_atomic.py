"""Atomic outputs: a failure or Ctrl-C mid-write leaves no partial file and the old file intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from insar_raster.errors import InputError, OutputExistsError
from insar_raster.gis.write import write_cube
from insar_raster.grid.spec import GridSpec
from insar_raster.io.atomic import atomic_path, check_output_path
from insar_raster.io.cube import make_cube, open_cube

GRID = GridSpec("EPSG:3035", 100.0, 4_000_000.0, 3_000_000.0, 6, 5)
TIMES = np.datetime64("2021-01-01") + np.arange(8) * np.timedelta64(12, "D")


class Boom(RuntimeError):
    pass


def tiny_cube(value: float = 1.0, fail_at_chunk: int | None = None) -> xr.Dataset:
    """A dask-backed cube in chunks of 2 epochs; computing chunk ``fail_at_chunk`` raises."""
    data = da.full((len(TIMES),) + GRID.shape, value, dtype=np.float32, chunks=(2, -1, -1))

    def maybe_fail(block, block_info=None):
        if fail_at_chunk is not None:
            if block_info[0]["chunk-location"][0] == fail_at_chunk:
                raise Boom("disk on fire")
            # The other chunks are still being computed and written when the failure is
            # raised: their late writes must not recreate the removed temporary output.
            time.sleep(0.3)
        return block

    return make_cube(data.map_blocks(maybe_fail, dtype=np.float32), TIMES, GRID)


def folder_names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def snapshot(path: Path):
    """Bytes of a file, or {relative path: bytes} of a folder."""
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return path.read_bytes()


# --------------------------------------------------------------------------- atomic_path itself


def test_success_renames_into_place(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target and tmp.suffix == ".bin"
        assert not tmp.exists()
        tmp.write_bytes(b"complete")
        assert not target.exists()  # nothing visible until the block completes
    assert target.read_bytes() == b"complete"
    assert folder_names(tmp_path) == {"out.bin"}


@pytest.mark.parametrize("exc_type", [Boom, KeyboardInterrupt])
def test_exception_mid_write_keeps_old_file(tmp_path, exc_type):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old good file")
    with pytest.raises(exc_type):
        with atomic_path(target, overwrite=True) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half of the new")
                raise exc_type()
    assert target.read_bytes() == b"old good file"
    assert folder_names(tmp_path) == {"out.bin"}


def test_directory_output_failure_keeps_old_folder(tmp_path):
    target = tmp_path / "out.zarr"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(Boom):
        with atomic_path(target, overwrite=True, directory=True) as tmp:
            tmp.mkdir()
            (tmp / "a").write_text("new, partial")
            raise Boom()
    assert snapshot(target) == {"a": b"old"}
    assert folder_names(tmp_path) == {"out.zarr"}


def test_directory_output_replaces_old_folder_whole(tmp_path):
    target = tmp_path / "out.zarr"
    target.mkdir()
    (target / "stale").write_text("old")
    # A leftover from a crash between the two renames of an earlier run must not block this one.
    (tmp_path / ".out.zarr.old").mkdir()
    (tmp_path / ".out.zarr.old" / "x").write_text("x")
    with atomic_path(target, overwrite=True, directory=True) as tmp:
        tmp.mkdir()
        (tmp / "fresh").write_text("new")
    assert snapshot(target) == {"fresh": b"new"}
    assert "out.zarr" in folder_names(tmp_path)
    assert not any(name.startswith(".out.zarr") and name != ".out.zarr.old" for name in folder_names(tmp_path))


def test_late_chunk_writes_do_not_recreate_the_removed_temp_file(tmp_path):
    """One chunk fails while another thread is still writing its chunk into the temp output."""
    import dask

    from insar_raster.io.atomic import settled_threads

    target = tmp_path / "out.zarr"

    def fail():
        raise Boom()

    def slow_write(folder):
        time.sleep(0.5)  # still busy when the failure is raised
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "chunk").write_text("late")

    with pytest.raises(Boom):
        with atomic_path(target, directory=True) as tmp, settled_threads(n_workers=2):
            dask.compute(dask.delayed(slow_write)(tmp), dask.delayed(fail)(), scheduler="threads")
    time.sleep(0.8)  # give a stray writer time to show up
    assert folder_names(tmp_path) == set()


def test_refuses_existing_output_before_any_work(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    entered = False
    with pytest.raises(OutputExistsError) as info:
        with atomic_path(target):
            entered = True
    assert not entered
    assert "overwrite=True" in info.value.message and "out.bin" in info.value.message
    assert target.read_bytes() == b"old"


def test_output_appearing_during_write_is_not_clobbered(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(OutputExistsError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"mine")
            target.write_bytes(b"someone else's")  # e.g. a second run finished first
    assert target.read_bytes() == b"someone else's"
    assert folder_names(tmp_path) == {"out.bin"}


def test_writer_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="no output"):
        with atomic_path(tmp_path / "out.bin"):
            pass
    assert folder_names(tmp_path) == set()


def test_output_that_is_a_folder_or_a_device_is_refused(tmp_path):
    (tmp_path / "cube.nc").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        with atomic_path(tmp_path / "cube.nc", overwrite=True):
            pass
    (tmp_path / "cube.zarr").write_text("a file")
    with pytest.raises(InputError, match="is a file"):
        with atomic_path(tmp_path / "cube.zarr", overwrite=True, directory=True):
            pass
    if os.path.exists("/dev/null"):
        with pytest.raises(InputError, match="not a regular file"):
            check_output_path("/dev/null", overwrite=True)
    assert folder_names(tmp_path) == {"cube.nc", "cube.zarr"}


def test_check_output_path_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "x.nc")
    (tmp_path / "x.nc").write_bytes(b"")
    with pytest.raises(OutputExistsError):
        check_output_path(tmp_path / "x.nc")
    assert check_output_path(tmp_path / "x.nc", overwrite=True) == tmp_path / "x.nc"


# --------------------------------------------------------------------------- real writers, failing mid-write


@pytest.mark.parametrize("suffix", [".nc", ".zarr", ".tif"])
def test_write_cube_failure_mid_write_keeps_old_file(tmp_path, suffix):
    target = tmp_path / f"cube{suffix}"
    write_cube(tiny_cube(1.0), target)
    if suffix == ".tif":
        (tmp_path / "cube.qml").unlink(missing_ok=True)  # the style sidecar is not the subject here
    before = snapshot(target)
    with pytest.raises(Boom):
        # The third of four time chunks fails: part of the new file has been written by then.
        write_cube(tiny_cube(2.0, fail_at_chunk=2), target, overwrite=True)
    assert snapshot(target) == before
    assert folder_names(tmp_path) == {target.name}
    if suffix != ".tif":
        assert float(open_cube(target).displacement.max()) == 1.0


def test_write_points_failure_mid_write_keeps_old_file(tmp_path, monkeypatch):
    import pyarrow.csv as pacsv

    from insar_raster.io.points import make_points, write_points

    pts = make_points(
        [4_000_050.0, 4_000_150.0, 4_000_250.0], [3_000_050.0] * 3, np.zeros((3, 2)), TIMES[:2], "EPSG:3035"
    )
    target = write_points(pts, tmp_path / "pts.csv")
    before = target.read_bytes()

    def half_write(table, where, *args, **kwargs):
        Path(where).write_text("pid,easting\n1,")
        raise Boom()

    monkeypatch.setattr(pacsv, "write_csv", half_write)
    with pytest.raises(Boom):
        write_points(pts, target, overwrite=True)
    assert target.read_bytes() == before
    assert folder_names(tmp_path) == {"pts.csv"}


# --------------------------------------------------------------------------- a real Ctrl-C


def _small_csv(path: Path, n_points=40, n_dates=8, seed=0):
    rng = np.random.default_rng(seed)
    dates = [str(d).replace("-", "") for d in TIMES[:n_dates]]
    lines = [",".join(["pid", "easting", "northing", *dates])]
    for i in range(n_points):
        vals = ",".join(f"{v:.2f}" for v in rng.normal(0, 2, n_dates))
        lines.append(f"P{i},{4_000_000 + rng.uniform(0, 1500):.1f},{3_000_000 + rng.uniform(0, 1500):.1f},{vals}")
    path.write_text("\n".join(lines) + "\n")
    return path


SIGNAL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from insar_raster.grid import gridders
    from insar_raster.cli import main

    original = gridders.BaseGridder._apply_block
    calls = []

    def apply_then_interrupt(self, block):
        calls.append(1)
        if len(calls) == 2:  # the second time chunk: the new file is half written
            os.kill(os.getpid(), getattr(signal, os.environ["TEST_SIGNAL"]))
            import time; time.sleep(1)
        return original(self, block)

    gridders.BaseGridder._apply_block = apply_then_interrupt
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signal_name, code, word", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")])
def test_signal_during_grid_write_keeps_old_cube(tmp_path, signal_name, code, word):
    """Ctrl-C (SIGINT) or kill/timeout (SIGTERM) while the new cube is half written."""
    src = _small_csv(tmp_path / "points.csv")
    target = tmp_path / "cube.nc"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    from insar_raster.cli import main

    assert main(["grid", str(src), "-o", str(target), "-q"]) == 0
    before = target.read_bytes()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            SIGNAL_SCRIPT,
            "grid",
            str(src),
            "-o",
            str(target),
            "-q",
            "--overwrite",
            "--time-chunk",
            "2",
        ],
        env={**env, "TEST_SIGNAL": signal_name},
        capture_output=True,
        text=True,
        timeout=120,
        # A terminal's Ctrl-C reaches a process whose SIGINT is at its default; a shell
        # that starts jobs in the background (nohup, `&`) ignores it, and the child would
        # inherit that. Restore the default so the test sees what a user gets.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.returncode == code, proc.stderr
    assert word in proc.stderr and "Traceback" not in proc.stderr
    assert target.read_bytes() == before
    assert folder_names(tmp_path) == {"points.csv", "cube.nc", "cube.qml"}  # the style of the first run


# --------------------------------------------------------------------------- one command's outputs together


def test_output_group_failure_removes_earlier_outputs_and_restores_old_files(tmp_path):
    from insar_raster.io.atomic import output_group

    kept, new = tmp_path / "a.txt", tmp_path / "b.txt"
    kept.write_text("old a")
    with pytest.raises(Boom), output_group():
        with atomic_path(kept, overwrite=True) as tmp:
            tmp.write_text("new a")
        assert kept.read_text() == "new a"  # in place at once: a later writer may read it
        with atomic_path(new) as tmp:
            tmp.write_text("new b")
        raise Boom("the third output failed")
    assert kept.read_text() == "old a"
    assert folder_names(tmp_path) == {"a.txt"}
    with output_group():  # success: the new files stay, the old ones kept aside are gone
        with atomic_path(kept, overwrite=True) as tmp:
            tmp.write_text("new a")
    assert kept.read_text() == "new a"
    assert folder_names(tmp_path) == {"a.txt"}


def test_output_group_failed_rename_leaves_the_old_file_in_place(tmp_path, monkeypatch):
    """The old file is kept aside by a hard link, not moved: while the new one is renamed
    in, and after that rename fails, the output is the old file (was: moved away first,
    and put back only if a second rename worked)."""
    import insar_raster.io.atomic as atomic

    out = tmp_path / "f.tif"
    out.write_text("old")
    real_replace = os.replace
    seen = []

    def failing_replace(src, dst):
        if Path(dst) == out and ".part" in Path(src).name:  # the new file's rename
            seen.append(out.read_text())  # what a reader finds at the moment of the rename
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError), atomic.output_group():
        with atomic.atomic_path(out, overwrite=True) as tmp:
            tmp.write_text("new")
    assert seen == ["old"]
    assert out.read_text() == "old"
    assert folder_names(tmp_path) == {"f.tif"}  # no temporary or kept-aside copy left


def test_ctrl_c_after_synth_wrote_its_points_keeps_neither_file(tmp_path, monkeypatch, capsys):
    """synth writes the points, then the truth cube: Ctrl-C between them kept the points
    file (exit 130, 'no partial output was kept')."""
    import insar_raster.gis.write as gis_write
    from insar_raster.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gis_write, "write_cube", interrupted)
    out = tmp_path / "s.csv"
    code = main(["synth", "-o", str(out), "--points", "200", "--shape", "8x8", "--epochs", "12", "-q"])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted; no partial output was kept" in err
    assert folder_names(tmp_path) == set()


def test_ctrl_c_while_the_command_imports_is_one_line(monkeypatch, capsys):
    """Ctrl-C in the seconds Python spends importing xarray/numpy before the command runs
    printed an import traceback (exit -2)."""
    import importlib.abc

    from insar_raster.cli import main

    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "insar_raster.io.cube":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "insar_raster.io.cube")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert main(["info", "missing.nc"]) == 130
    assert capsys.readouterr().err == "insar-raster info: interrupted; no partial output was kept\n"
