"""Atomic output: write to a temporary sibling, rename into place when complete.

A failure or Ctrl-C inside the ``with`` block removes the temporary file or folder and
leaves any previous file at ``path`` untouched.
"""
from __future__ import annotations

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
            old = path.with_name(f".{path.name}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
