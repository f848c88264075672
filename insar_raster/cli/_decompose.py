"""``insar-raster grid ... --decompose``: ascending + descending LOS -> vertical and east-west."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from insar_raster.cli._common import bounds_in_grid_crs, log_points_read, read_points_options

log = logging.getLogger("insar_raster")


def _row_checks(args) -> dict:
    """The bad-row options of ``grid`` (insar_raster.io.sanitize) as reader parameters."""
    return {"allow_dates": getattr(args, "allow_dates", False), "keep_outliers": getattr(args, "keep_outliers", False)}


def read_geometries(args) -> list:
    """One points Dataset per geometry of the inputs (bursts of one track merge)."""
    from insar_raster.io import egms
    from insar_raster.io.points import CSV_SUFFIXES, expand_inputs, read_points

    named, headers, read = [], [], {}
    for f in expand_inputs(args.inputs):
        if f.suffix.lower() in CSV_SUFFIXES | {".zip"}:
            columns = dict(egms.csv_headers(f))
            for name, g in egms.probe(f):
                named.append((str(f), g))
                headers.append(columns[name])
        else:  # vector files: the geometry is known once read
            pts = read_points(
                f, crs=args.crs, input_crs=args.input_crs, start=args.start, end=args.end, **_row_checks(args)
            )
            read[str(f)] = pts
            named.append((str(f), egms.points_geometry(pts)))
            headers.append(list(pts.data_vars))  # keeps height*/rmse*, which tell the release
    # Across the geometries too: each is read (and checked) on its own below.
    egms.check_single_release([name for name, _ in named], headers)
    for name, g in named:  # before any file is read whole
        if g.level in ("L3U", "L3E", "L3"):
            from insar_raster.errors import InputError

            raise InputError(
                name,
                f"{'an L3 product' if g.level == 'L3' else g.level} is already decomposed (vertical or east-west)",
                "decomposition takes L2a/L2b LOS products of both pass directions",
            )
    groups = egms.group_geometries(named)
    if len(groups) < 2:
        from insar_raster.errors import InputError

        raise InputError(
            None,
            "decomposition needs ascending and descending geometries, got one ("
            + "; ".join(str(g) for g in groups)
            + ")",
            "pass the bursts of both pass directions",
        )
    points = []
    for names in groups.values():
        files = list(dict.fromkeys(names))  # a zip with several CSVs is named once per CSV
        if len(files) == 1 and files[0] in read:
            points.append(read[files[0]])
            continue
        if any(n in read for n in files):
            points.append(
                read_points(
                    files, crs=args.crs, input_crs=args.input_crs, start=args.start, end=args.end, **_row_checks(args)
                )
            )
            continue
        points.append(_read_group(args, files))
    return points


def _read_group(args, files):
    from insar_raster.io.points import read_points

    return read_points(files, **read_points_options(args))


def _time_origin(text):
    """``--time-origin``: None (the EGMS L3 dates), ``first`` or a date -> decompose_los's."""
    import numpy as np

    from insar_raster.errors import InputError
    from insar_raster.grid.decompose import EGMS_L3_TIME_ORIGIN

    if text is None:
        return np.datetime64(EGMS_L3_TIME_ORIGIN, "D")
    if text.strip().lower() == "first":
        return None
    try:
        return np.datetime64(text.strip(), "D")
    except ValueError:
        raise InputError("--time-origin", f"is not a date (YYYY-MM-DD) or 'first': {text!r}") from None


def run_decompose(args, output: Path, t0: float) -> int:
    """Read each geometry, decompose, write the cube (vertical, east_west, MP counts)."""
    from insar_raster.errors import InputError
    from insar_raster.gis.write import write_cube
    from insar_raster.grid.decompose import decompose_los

    if args.shape:
        raise InputError("--shape", "does not apply with --decompose (EGMS cells: use --resolution)")
    if output.suffix.lower() in (".tif", ".tiff"):
        raise InputError(
            output,
            "a decomposed cube has two variables (vertical, east_west)",
            "write .nc or .zarr, then 'insar-raster export --variable vertical|east_west'",
        )
    ignored = [
        flag
        for flag, given in (
            ("--method", args.method != "linear"),
            ("--max-gap", args.max_gap is not None),
            ("--tile-size", args.tile_size is not None),
        )
        if given
    ]
    if ignored:
        log.warning(
            "%s: not used by --decompose (cell means of each geometry, cells without both pass directions left empty)",
            ", ".join(ignored),
        )
    origin = _time_origin(getattr(args, "time_origin", None))
    points = read_geometries(args)
    for pts in points:
        log_points_read(pts)
    bounds = bounds_in_grid_crs(args, points[0].rio.crs)
    try:
        cube = decompose_los(points, resolution=args.resolution, bounds=bounds, time_origin=origin)
    except InputError as exc:  # name the option behind a library parameter
        if exc.path in ("bounds", "resolution"):
            raise InputError(f"--{exc.path}", exc.problem, exc.hint) from None
        raise
    write_cube(cube, output, overwrite=args.overwrite)
    n_cells = int(cube["vertical"].isel(time=-1).notnull().sum())
    log.info(
        "wrote %s (vertical and east_west, %d x %d cells, %d with both pass directions, %d epochs every %d days)",
        output,
        cube.sizes["y"],
        cube.sizes["x"],
        n_cells,
        cube.sizes["time"],
        cube.attrs["time_step_days"],
    )
    dropped = int(cube.attrs.get("grid_dates_dropped", 0))
    log.info(
        "grid --decompose: %s; %d epochs%s, %.1f s wall",
        cube.attrs["geometries"],
        cube.sizes["time"],
        f" ({dropped} grid dates dropped: outside a geometry's span or in a gap > {cube.attrs['max_gap_days']:g} days)"
        if dropped
        else "",
        time.perf_counter() - t0,
    )
    return 0
