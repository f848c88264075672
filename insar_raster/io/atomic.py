"""Atomic output: write to a temporary sibling, rename into place when complete.

A failure or Ctrl-C inside the ``with`` block removes the temporary file or folder and
leaves any previous file at ``path`` untouched.
"""
from __future__ import annotations

import atexit
import contextlib
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
    # Same folder => same filesystem => os.replace is atomic.
    # Keep the real extension last: some drivers (GPKG, GDAL) pick the format from it.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers create it themselves (some refuse an existing file)
    tmp = Path(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{path}: writer produced no output")
        if path.exists() and not overwrite:
            raise OutputExistsError(path)
        if directory and path.exists():
            _replace_folder(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        # Ctrl-C interrupts the main thread only: worker threads (dask) may still write a
        # chunk and recreate the temporary file. Remove it again once they have finished.
        _ABANDONED.add(tmp)
        raise


_ABANDONED: set[Path] = set()


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
