"""Atomic output: write to a temporary sibling, rename into place when complete.

A failure or Ctrl-C inside the ``with`` block removes the temporary file or folder and
leaves any previous file at ``path`` untouched. Inside :func:`output_group` (a CLI
command), a failure or Ctrl-C after some outputs were already renamed into place (a
forecast's ``.tif`` before its ``_lower``/``_upper`` bounds) removes those too and puts
back the files they replaced: a command's outputs appear together or not at all.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import shutil
import tempfile
from pathlib import Path

from insar_raster.errors import InputError, OutputExistsError


def check_output_path(path, overwrite: bool = False) -> Path:
    """Validate an output path before any work is done.

    Raises
    ------
    InputError
        If the folder is missing or not writable, or the file exists and
        ``overwrite`` is false.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(path, f"output folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(path, f"output folder {str(folder)!r} is not writable")
    if path.exists() and not (path.is_file() or path.is_dir()):
        # /dev/null, a FIFO, a socket: os.replace would swap the device for a regular file.
        raise InputError(path, "output exists and is not a regular file or folder", "choose another -o path")
    if path.exists() and not overwrite:
        raise OutputExistsError(path)
    return path


@contextlib.contextmanager
def atomic_path(path, overwrite: bool = False, directory: bool = False):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Parameters
    ----------
    path : str or Path
        Final destination.
    overwrite : bool
        Replace an existing ``path``. Checked before and again at rename time.
    directory : bool
        The output is a folder (e.g. Zarr); the old folder is replaced whole.
    """
    path = check_output_path(path, overwrite)
    if path.is_dir() and not directory:
        raise InputError(
            path, "output exists and is a folder; it cannot be replaced by a file", "choose another -o path"
        )
    if path.is_file() and directory:
        raise InputError(
            path, "output exists and is a file; it cannot be replaced by a folder", "choose another -o path"
        )
    # Same folder => same filesystem => os.replace is atomic.
    # Keep the real extension last: some drivers (GPKG, GDAL) pick the format from it.
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    except OSError as exc:  # read-only mount, ACLs, /proc...: what the early check cannot see
        raise InputError(
            path, f"cannot create a file in output folder {str(path.parent)!r}: {exc.strerror or exc}"
        ) from None
    os.close(fd)
    os.unlink(tmp)  # writers create it themselves (some refuse an existing file)
    tmp = Path(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{path}: writer produced no output")
        if path.exists() and not overwrite:
            raise OutputExistsError(path)
        group = _GROUP.get()
        if group is not None:
            group.put(tmp, path)
        elif directory and path.exists():
            _replace_folder(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError) and exc.filename and Path(exc.filename) == tmp:
            exc.filename = str(path)  # users never chose the temporary name: report theirs
        # Ctrl-C interrupts the main thread only: worker threads (dask) may still write a
        # chunk and recreate the temporary file. Remove it again once they have finished.
        _ABANDONED.add(tmp)
        raise


_ABANDONED: set[Path] = set()


class _Group:
    """Outputs put in place inside :func:`output_group`, with the files they replaced."""

    def __init__(self):
        self.placed: list[tuple[Path, Path | None]] = []  # (output, backup of the old one)

    def put(self, tmp: Path, path: Path) -> None:
        backup = None
        if path.exists() or path.is_symlink():
            # Keep the old output until the whole command has succeeded.
            backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            backup.rmdir()
            if not _link(path, backup):
                os.replace(path, backup)
        try:
            os.replace(tmp, path)
        except BaseException:
            if backup is not None:
                if path.exists() and not path.is_dir():  # linked: the old file never left
                    _remove(backup)
                else:
                    os.replace(backup, path)
            raise
        self.placed.append((path, backup))

    def commit(self) -> None:
        for _, backup in self.placed:
            if backup is not None:
                _remove(backup)

    def roll_back(self) -> None:
        for path, backup in reversed(self.placed):
            if backup is None or path.is_dir() or backup.is_dir():
                _remove(path)  # a new output goes; a folder cannot be renamed over
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.replace(backup, path)  # a file: one atomic step back, no moment without it


def _link(path: Path, backup: Path) -> bool:
    """Keep a regular file's old content under ``backup`` by a hard link, leaving ``path``
    in place until the new output replaces it in one rename (a reader never finds it
    missing, and a failed rename leaves it as it was); False where that cannot be done
    (a folder, a link, a filesystem without hard links)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        os.link(path, backup)
    except OSError:
        return False
    return True


_GROUP: contextvars.ContextVar[_Group | None] = contextvars.ContextVar("insar_raster_output_group", default=None)


@contextlib.contextmanager
def output_group():
    """Outputs written inside appear together or not at all.

    Each :func:`atomic_path` inside still writes to a temporary sibling and renames it into
    place when complete (a later writer may read it: a NetCDF's style reads the cube); the
    file it replaces is kept aside until the block ends. A failure or Ctrl-C in the block
    removes the outputs already in place and puts the old files back. Nested groups join
    the outermost.
    """
    if _GROUP.get() is not None:
        yield
        return
    group = _Group()
    token = _GROUP.set(group)
    try:
        yield
    except BaseException:
        group.roll_back()
        raise
    else:
        group.commit()
    finally:
        _GROUP.reset(token)


def _remove(tmp: Path) -> None:
    if tmp.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp.exists() or tmp.is_symlink():
        with contextlib.suppress(OSError):
            tmp.unlink()


@atexit.register
def _remove_abandoned() -> None:
    # atexit runs after non-daemon threads (dask's thread pool) have been joined.
    for tmp in list(_ABANDONED):
        _remove(tmp)


def _replace_folder(tmp: Path, path: Path) -> None:
    """Swap folder ``tmp`` into ``path``; the old folder is removed only after the swap."""
    # A unique name, so that a leftover of a crashed earlier run cannot block the rename.
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    old.rmdir()
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)  # put the previous output back
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def settled_threads(n_workers: int | None = None):
    """Run dask's local threaded scheduler on a pool that is drained before leaving.

    When one chunk fails (or Ctrl-C arrives) dask raises at once while other chunks are
    still being written by worker threads; those late writes would recreate a temporary
    output that :func:`atomic_path` has just removed. Use inside ``atomic_path``::

        with atomic_path(path) as tmp, settled_threads():
            ds.to_netcdf(tmp)

    Has no effect on a dask.distributed client (it does not use this pool).
    """
    from concurrent.futures import ThreadPoolExecutor

    import dask

    pool = ThreadPoolExecutor(n_workers or os.cpu_count() or 1, thread_name_prefix="insar-raster-write")
    try:
        with dask.config.set(pool=pool):
            yield pool
    finally:
        # Wait for the chunks in flight (bounded: one per thread); drop the queued ones.
        pool.shutdown(wait=True, cancel_futures=True)
