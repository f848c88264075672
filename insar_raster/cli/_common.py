"""Small helpers shared by CLI commands."""

from __future__ import annotations

import contextlib
import logging

from insar_raster.errors import InputError

log = logging.getLogger("insar_raster")


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


def load_cube(path, resample: str | None, variable: str | None = None):
    """Open a cube (its ``variable``, see :func:`insar_raster.io.cube.open_cube`) and
    optionally resample it; say when its epochs are irregular."""
    from insar_raster.forecast.resample import irregularity, resample_cube
    from insar_raster.io.cube import open_cube

    cube = open_cube(path, variable=variable)
    if resample:
        return resample_cube(cube, resample)
    lo, hi = irregularity(cube)
    if hi > 1.5 * lo:
        log.info(
            "%s: irregular epochs (gaps %g to %g days); the model is given the time gaps "
            "(use --resample 12D for a regular step)",
            path,
            lo,
            hi,
        )
    return cube


def resample_hint(step: str, owner: str) -> str:
    """The hint when a ``--resample``d date is not among ``owner``'s dates (``"points'"``,
    ``"truth cube's"``): they are read on the cube's dates, never interpolated in time."""
    return (
        f"drop --resample {step}, or give a step that is a multiple of the {owner} revisit: the {owner} "
        "own values are used on their own dates, never interpolated in time"
    )


def read_points_for_cube(paths, cube, resample: str | None = None, **read_options):
    """``--points`` read onto the cube's CRS and checked against the cube before any long
    work: the same geometry (:func:`insar_raster.io.egms.check_points_on_cube`) and every
    cube date among the points' dates. ``read_options``: ``input_crs``, ``allow_dates``
    of :func:`insar_raster.io.points.read_points`."""
    import numpy as np

    from insar_raster.errors import InputError
    from insar_raster.forecast.points import MAX_EMPTY_SHARE
    from insar_raster.io.cube import cube_date_index
    from insar_raster.io.egms import check_points_on_cube, points_geometry
    from insar_raster.io.layout import is_geographic
    from insar_raster.io.points import read_points

    name = ", ".join(map(str, paths))
    if is_geographic(cube.rio.crs):  # the reader places MPs in metres; path None: the CLI names the cube
        raise InputError(
            None,
            f"the cube's CRS ({cube.rio.crs.to_string()}) is geographic (degrees); --points are placed on the cube's"
            " grid in metres",
            "grid the points again in a projected CRS (insar-raster grid POINTS --crs EPSG:3035, or the UTM zone)"
            " and forecast that cube, or reproject the cube",
        )
    points = read_points(paths, crs=cube.rio.crs, max_missing=MAX_EMPTY_SHARE, **read_options)  # MPs with gaps kept
    check_points_on_cube(points_geometry(points), cube.attrs, name)
    if resample:
        hint = resample_hint(resample, "points'")
    elif "time_step_days" in cube.attrs:  # a decomposed cube: its own regular grid of dates
        first = str(np.asarray(points["time"].values, "datetime64[D]")[0])
        hint = (
            f"the cube's dates are its --decompose {cube.attrs['time_step_days']}-day grid; regrid with "
            f"--decompose --time-origin {first} to put it on these points' dates"
        )
    else:
        hint = "use the points the cube was gridded from"
    cube_date_index(cube, points, "points", name, hint)
    return points


def report_training(forecaster) -> None:
    """The final line: validation RMSE against persistence (and the history fit)."""
    meta = forecaster.metadata
    rmse, pers = meta.get("val_rmse_mm"), meta.get("val_persistence_rmse_mm")
    if rmse is None or pers is None:
        return
    text = (
        f"validation RMSE {rmse:.3f} mm vs persistence {pers:.3f} mm "
        f"({rmse / pers:.2f}x), weights kept from epoch {meta.get('best_epoch')} of {forecaster.history[-1]['epoch']}"
    )
    fit = meta.get("val_history_fit_rmse_mm")
    if fit:
        text += f"; per-pixel history fit alone {fit:.3f} mm"
    lag = meta.get("lag_prior")
    if lag and lag.get("kept"):
        lag_rmse = meta.get("val_lag_prior_rmse_mm") or lag["val_rmse_mm"]  # older model files: the choice's
        form = ", centred" if "centred" in lag.get("form", "") else ""
        text += f", learned linear prior ({lag['lags']} lags{form}) {lag_rmse:.3f} mm"
    stage = meta.get("prior_filter")
    if stage and stage.get("kept"):
        text += f", with its learned spatial filter {stage['val_rmse_filtered_mm']:.3f} mm"
    if log.isEnabledFor(logging.INFO):  # -q: nothing on success
        print(text)


def log_points_read(points) -> None:
    """One info line: how many MPs and epochs were read, their dates and source."""
    log.info(
        "read %d measurement points x %d epochs (%s to %s) from %s",
        points.sizes["point"],
        points.sizes["time"],
        str(points.time.values[0])[:10],
        str(points.time.values[-1])[:10],
        points.attrs.get("source", ""),
    )


def bounds_in_grid_crs(args, crs):
    """``--bounds`` as (west, south, east, north) in the grid CRS ``crs``, or None."""
    if args.bounds is None:
        return None
    from insar_raster.grid.bounds import bounds_in_crs

    bounds, bounds_crs = bounds_in_crs(args.bounds, crs, getattr(args, "bounds_crs", None))
    if bounds_crs != crs:
        log.info(
            "--bounds read in %s: west %.0f, south %.0f, east %.0f, north %.0f in %s",
            bounds_crs.name,
            *bounds,
            crs.to_string(),
        )
    return bounds


def read_points_options(args) -> dict:
    """The points-reading options of ``grid`` (CRS, dates, bad-row checks, the points
    cache) as parameters of :func:`insar_raster.io.points.read_points`."""
    return {
        "crs": args.crs,
        "input_crs": args.input_crs,
        "start": args.start,
        "end": args.end,
        "allow_dates": getattr(args, "allow_dates", False),
        "keep_outliers": getattr(args, "keep_outliers", False),
        "cache": False if args.no_cache else "auto",
        "cache_dir": args.cache_dir,
        "progress": not args.quiet,
    }
