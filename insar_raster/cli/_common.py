"""Small helpers shared by CLI commands."""
from __future__ import annotations

import contextlib

from insar_raster.errors import InputError


def parse_shape(text: str) -> tuple[int, int]:
    """``"256x256"`` -> (256, 256) (rows x cols)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError("--shape", f"expected HxW such as 256x256, got {text!r}") from None
    if h < 1 or w < 1:
        raise InputError("--shape", f"grid must have at least 1x1 cells, got {text!r}")
    return h, w


def parse_bounds(text: str) -> tuple[float, float, float, float]:
    """``"west,south,east,north"`` in the output CRS (m)."""
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError("--bounds", f"expected west,south,east,north, got {text!r}") from None
    if not (east > west and north > south):
        raise InputError("--bounds", f"expected east > west and north > south, got {text!r}")
    return west, south, east, north


@contextlib.contextmanager
def dask_scheduler(address: str | None, quiet: bool = False):
    """Run dask work on ``address`` (a dask.distributed scheduler) or locally with a progress bar."""
    if address:
        from distributed import Client

        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError("--scheduler", f"cannot connect to {address}: {exc}") from None
        with client:
            yield client
        return
    if quiet:
        yield None
        return
    from insar_raster.progress import DaskTqdm

    with DaskTqdm(desc="grid"):
        yield None
