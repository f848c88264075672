"""``insar-raster info``: what is in a points file, a cube, a raster or a model file.

:func:`describe` returns a JSON-safe dict; :func:`format_description` renders it as
aligned ``key: value`` lines. Cubes and rasters are read lazily (dask / block by block),
so only the NaN count touches every value; model files are never executed (only their
JSON header is read).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)

from insar_raster.errors import InputError, first_line

POINT_SUFFIXES = {".csv", ".txt", ".zip", ".gpkg", ".shp", ".geojson", ".fgb", ".parquet", ".geoparquet", ".pq"}
CUBE_SUFFIXES = {".nc", ".nc4", ".cdf", ".zarr"}
RASTER_SUFFIXES = {".tif", ".tiff"}
MODEL_SUFFIXES = {".ipt"}
# Above this many values the NaN share of a cube is estimated from a subset of epochs.
_EXACT_NAN_LIMIT = 200_000_000


def _crs_text(crs) -> str | None:
    if crs is None:
        return None
    from pyproj import CRS

    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} ({crs.name})" if epsg else crs.name


def _epochs(times) -> dict:
    """Epoch count, date range and sampling interval (days) of datetime values."""
    times = np.sort(np.asarray(times, dtype="datetime64[ns]"))
    out = {"n_epochs": int(len(times))}
    if len(times) == 0:
        return out
    out["first_epoch"] = str(np.datetime_as_string(times[0], unit="D"))
    out["last_epoch"] = str(np.datetime_as_string(times[-1], unit="D"))
    if len(times) > 1:
        steps = np.diff(times) / np.timedelta64(1, "D")
        out["interval_days"] = {"median": float(np.median(steps)), "min": float(steps.min()), "max": float(steps.max())}
    return out


def _dates_from_descriptions(descriptions, tags=None):
    """Band dates (ISO or YYYYMMDD descriptions, or date tags), None unless every band is dated."""
    from insar_raster.io.tifcube import band_dates

    dates, undated = band_dates(descriptions, tags)
    return np.array(dates, dtype="datetime64[D]") if undated is None and dates else None


# --------------------------------------------------------------------------- points


def describe_points(path, **read_options) -> dict:
    """Points file (EGMS CSV/zip, GeoPackage, GeoParquet...), or a list of them read as one,
    via the project's reader (``read_options``: ``input_crs``, ``allow_dates`` of ``read_points``)."""
    from insar_raster.io.dialect import sniff_path
    from insar_raster.io.points import read_points

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        points = read_points(path, **read_options)
    first = Path(path[0]) if isinstance(path, (list, tuple)) else Path(path)
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    dropped = 0
    for note in notes:  # the reader drops NaN rows and says how many
        m = re.search(r"dropped (\d+) point\(s\) with missing", note)
        if m:
            dropped += int(m.group(1))
    n_points = int(points.sizes["point"])
    x, y = points["x"].values, points["y"].values
    disp = points["displacement"].values
    out = {
        "path": str(path),
        "kind": "points",
        "format": first.suffix.lstrip(".").lower() or "folder",
        "product": points.attrs.get("product"),
        "csv_format": getattr(sniff_path(first), "description", None),  # e.g. "semicolon (;), decimal comma"
        # EGMS geometry (io/egms.py): level, track, pass direction, when the file says.
        **{k: points.attrs[k] for k in ("product_level", "track", "pass_direction") if k in points.attrs},
        # The file's own CRS first; 'grid' reprojects geographic inputs (to UTM) and EGMS to EPSG:3035.
        "crs": _crs_text(points.attrs.get("input_crs") or points.rio.crs),
        "extent": _extent_in(points.attrs.get("input_crs"), points.rio.crs, x, y),
        "grid_crs": _crs_text(points.rio.crs),
        "grid_extent": [float(x.min()), float(y.min()), float(x.max()), float(y.max())],
        "n_points": n_points,
        "points_dropped_for_nan": dropped,
        **_epochs(points["time"].values),
        # Share of NaN values among all points in the file (dropped rows count as NaN rows).
        "nan_share": float(
            (np.isnan(disp).sum() + dropped * disp.shape[1]) / max(1, (n_points + dropped) * disp.shape[1])
        ),
        "displacement_range_mm": [float(np.nanmin(disp)), float(np.nanmax(disp))],
    }
    if "mean_velocity" in points:
        v = points["mean_velocity"].values
        out["mean_velocity_range_mm_per_yr"] = [float(np.nanmin(v)), float(np.nanmax(v))]
    if notes:
        out["notes"] = notes
    return out


def _extent_in(file_crs, grid_crs, x, y) -> list[float]:
    """(west, south, east, north) of points at ``x, y`` (in ``grid_crs``) in the file's own CRS."""
    if file_crs is not None:
        from pyproj import CRS, Transformer

        source, target = CRS.from_user_input(grid_crs), CRS.from_user_input(file_crs)
        if source != target:
            x, y = Transformer.from_crs(source, target, always_xy=True).transform(x, y)
    return [float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y))]


# --------------------------------------------------------------------------- cubes


def _open_dataset(path: Path):
    import xarray as xr

    try:
        if path.suffix.lower() == ".zarr":
            return xr.open_zarr(path, chunks={}, decode_coords="all")
        return xr.open_dataset(path, engine="netcdf4", chunks={}, decode_coords="all")
    except Exception as exc:
        text = first_line(exc)
        raise InputError(path, f"cannot read as NetCDF/Zarr: {text}") from None


def _nan_share(da) -> tuple[float, bool]:
    """(share of NaN values, exact?) of a lazy array; big cubes use a subset of epochs."""
    estimated = False
    if da.size > _EXACT_NAN_LIMIT and "time" in da.dims:
        stride = int(np.ceil(da.size / _EXACT_NAN_LIMIT))
        da = da.isel(time=slice(None, None, stride))
        estimated = True
    return float(da.isnull().mean().compute()), not estimated


def describe_cube(path) -> dict:
    """NetCDF/Zarr cube (or any gridded NetCDF with a CRS, e.g. an exported layer)."""
    path = Path(path)
    ds = _open_dataset(path)
    grids = [n for n, v in ds.data_vars.items() if v.ndim >= 2 and v.dims[-2:] == ("y", "x")]
    if not grids:
        raise InputError(path, "no gridded (y, x) variable", "is this a cube from 'insar-raster grid'?")
    main = "displacement" if "displacement" in grids else grids[0]
    da = ds[main]
    out = {
        "path": str(path),
        "kind": "cube" if "time" in da.dims else "raster",
        "format": "zarr" if path.suffix.lower() == ".zarr" else "netcdf",
        "crs": _crs_text(ds.rio.crs),
        "extent": None,
        "grid": {"height": int(ds.sizes["y"]), "width": int(ds.sizes["x"])},
        "variables": {n: {"dims": list(v.dims), "units": v.attrs.get("units")} for n, v in ds.data_vars.items()},
    }
    if ds.rio.crs is not None:
        from insar_raster.gis.raster import grid_bounds, grid_transform

        transform = grid_transform(ds)
        out["grid"]["resolution"] = [abs(transform.a), abs(transform.e)]
        out["extent"] = [float(b) for b in grid_bounds(ds)]
    if "time" in ds.coords:
        out.update(_epochs(ds["time"].values))
    share, exact = _nan_share(da)
    out["nan_share"] = share
    if not exact:
        out["nan_share_estimated"] = True
    if "time" in da.dims and da.sizes["time"]:
        # Cells with no value at the latest epoch: the gap mask of a gridded cube.
        masked = da.isel(time=-1).isnull()
        out["masked_cell_share"] = float(masked.mean().compute())
    keep = (
        "title",
        "source",
        "method",
        "resolution",
        "max_gap",
        "model",
        "architecture",
        "forecast_horizon",
        "forecast_reference_time",
        "insar_raster_version",
        "Conventions",
        # What the values measure (insar_raster.io.egms.cube_geometry): which points fit the cube.
        "product_level",
        "track",
        "pass_direction",
        "geometries",
    )
    out["attributes"] = {k: _json_safe(ds.attrs[k]) for k in keep if k in ds.attrs}
    if "history" in ds.attrs:
        out["attributes"]["history"] = str(ds.attrs["history"]).splitlines()[-1]
    ds.close()
    return out


def _json_safe(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# --------------------------------------------------------------------------- rasters


def describe_geotiff(path) -> dict:
    """GeoTIFF: georeferencing, bands (dates), layout (COG?), NaN share, style file."""
    import rasterio
    from rasterio.errors import RasterioIOError

    from insar_raster.gis.raster import cog_layout_problems

    path = Path(path)
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(path, f"cannot read as GeoTIFF: {first_line(exc)}") from None
    with src:
        dates = _dates_from_descriptions(src.descriptions, [src.tags(b) for b in src.indexes])
        nodata_count = 0
        for b in src.indexes:  # block by block: bounded memory on big rasters
            for _, window in src.block_windows(b):
                block = src.read(b, window=window, masked=False)
                bad = ~np.isfinite(block)
                if src.nodata is not None and np.isfinite(src.nodata):
                    bad |= block == src.nodata
                nodata_count += int(bad.sum())
        out = {
            "path": str(path),
            "kind": "cube" if dates is not None and src.count > 1 else "raster",
            "format": "geotiff",
            "crs": _crs_text(src.crs.to_wkt()) if src.crs else None,
            "extent": list(src.bounds),
            "grid": {"height": src.height, "width": src.width, "resolution": list(src.res)},
            "bands": src.count,
            "band_descriptions": list(src.descriptions),
            "units": sorted({u for u in src.units if u}),
            "dtype": src.dtypes[0],
            "nodata": None if src.nodata is None else (str(src.nodata) if np.isnan(src.nodata) else src.nodata),
            "layout": {
                "cog": not cog_layout_problems(path),
                "interleave": src.interleaving.name if src.interleaving else None,
                "tiled": bool(src.profile.get("tiled")),
                "block": list(src.block_shapes[0]),
                "compression": src.compression.name if src.compression else "none",
                "overviews": src.overviews(1),
            },
            "nan_share": nodata_count / max(1, src.count * src.width * src.height),
            "style": str(path.with_suffix(".qml")) if path.with_suffix(".qml").exists() else None,
        }
        if dates is not None:
            out.update(_epochs(dates))
    if out["style"]:
        from insar_raster.gis.style import read_qml_limits

        try:
            out["style_limits"] = list(read_qml_limits(out["style"]))
        except Exception:  # a hand-edited style we cannot parse is not an error here
            out["style_limits"] = None
    return out


# --------------------------------------------------------------------------- models

MODEL_MAGIC = b"INSAR-RASTER-MODEL\n"  # insar_raster.forecast.modelfile.MAGIC


def is_model_file(path) -> bool:
    """True for an insar-raster model file (checked by its magic bytes, not its name)."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(len(MODEL_MAGIC)) == MODEL_MAGIC


def describe_model(path) -> dict:
    """Model file: architecture and training setup from its JSON header.

    Only the header is parsed (by :func:`insar_raster.forecast.modelfile.read_header`);
    the weights are not loaded and nothing in the file is executed.
    """
    from insar_raster.forecast.modelfile import read_header

    path = Path(path)
    header = read_header(path)
    config = header.get("config") or {}
    out = {
        "path": str(path),
        "kind": "model",
        "format": "insar-raster model v{}".format(header.get("format_version", "?")),
        "architecture": header.get("arch"),
        "hyperparameters": header.get("hparams"),
        "window": header.get("window", config.get("window")),
        "steps": header.get("steps", config.get("steps")),
    }
    grid = header.get("grid") or {}
    if grid.get("crs_wkt"):
        out["crs"] = _crs_text(grid["crs_wkt"])
    if grid.get("shape") and grid.get("transform"):
        from rasterio.transform import Affine, array_bounds

        height, width = grid["shape"]
        transform = Affine(*grid["transform"])
        west, south, east, north = array_bounds(height, width, transform)
        out["extent"] = [west, south, east, north]
        out["grid"] = {
            "height": int(height),
            "width": int(width),
            "resolution": grid.get("resolution") or [abs(transform.a), abs(transform.e)],
        }
    training = {
        k: config[k]
        for k in ("epochs", "batch_size", "lr", "patch_size", "val_fraction", "test_fraction", "seed")
        if k in config
    }
    history = header.get("history") or []
    if history:
        training["epochs_run"] = len(history)
        finite = [h for h in history if isinstance(h.get("val_loss"), (int, float))]
        if finite:
            # The kept weights' epoch when the file says (training keeps only clear gains).
            best = min(finite, key=lambda h: h["val_loss"])
            training["best_epoch"] = (header.get("metadata") or {}).get("best_epoch", best.get("epoch"))
    out["training"] = training
    metadata = header.get("metadata") or {}
    stage = metadata.get("prior_filter")
    if stage:
        out["prior_filter"] = {k: stage[k] for k in ("kept", "val_rmse_prior_mm", "val_rmse_filtered_mm") if k in stage}
    lag = metadata.get("lag_prior")
    if lag:  # the learned linear prior's choice (its weights are in the config)
        keys = ("kept", "lags", "form", "val_rmse_mm", "val_history_fit_rmse_mm")
        out["lag_prior"] = {k: lag[k] for k in keys if k in lag}
    for key in ("val_rmse_mm", "val_persistence_rmse_mm", "train_samples", "val_samples"):
        if key in metadata:
            out[key] = metadata[key]
    cadence = metadata.get("cadence")
    if cadence:  # trained also on the record resampled to the forecast step (forecast.cadence)
        out["cadence"] = {
            k: cadence[k] for k in ("native_step_days", "step_days", "share", "val_samples") if k in cadence
        }
    ensemble = metadata.get("ensemble")
    if ensemble:  # the weights chosen on validation, and which member's network was kept
        out["ensemble_weights"] = ensemble.get("weights")
        out["ensemble_networks_kept"] = {
            name: member.get("network_kept") for name, member in (ensemble.get("members") or {}).items()
        }
    if "normalisation" in header:
        out["normalisation"] = header["normalisation"]
    out["versions"] = {k: header[k] for k in ("insar_raster_version", "torch_version") if k in header}
    return out


# --------------------------------------------------------------------------- dispatch


def file_kind(path) -> str:
    """``points``, ``cube``, ``geotiff`` or ``model`` from the file name (and content)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in RASTER_SUFFIXES:
        return "geotiff"
    if suffix in CUBE_SUFFIXES:
        return "cube"
    if suffix in MODEL_SUFFIXES or is_model_file(path):
        return "model"
    if suffix in POINT_SUFFIXES:
        return "points"
    if path.is_dir():
        return "points"  # a folder of EGMS tiles
    raise InputError(
        path,
        f"unknown file type {suffix or '(none)'!r}",
        "expected points (.csv/.zip/.gpkg/.parquet), a cube (.nc/.zarr), a .tif or a model (.ipt)",
    )


def describe(path, input_crs=None, allow_dates: bool = False) -> dict:
    """Describe a points file, cube, GeoTIFF or model file (points read with ``input_crs``
    and ``allow_dates`` as :func:`insar_raster.io.points.read_points` does).

    Returns
    -------
    dict
        JSON-safe. Always ``path`` and ``kind``; then, as they apply: ``crs``, ``extent``
        (west, south, east, north in CRS units), ``n_points`` or ``grid`` (height, width,
        resolution), ``n_epochs``, ``first_epoch``, ``last_epoch``, ``interval_days``
        (median/min/max), ``nan_share`` (0-1), and for models the header fields
        (architecture, window, horizon, ...).

    Raises
    ------
    InputError
        Missing file, unknown type, unreadable content.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    kind = file_kind(path)
    if kind == "geotiff":
        return describe_geotiff(path)
    if kind == "cube":
        return describe_cube(path)
    if kind == "points":
        return describe_points(path, input_crs=input_crs, allow_dates=allow_dates)
    return describe_model(path)


def describe_inputs(path, input_crs=None, allow_dates: bool = False) -> list[dict]:
    """:func:`describe` of one path as a list: one description, or for a folder of points
    files of several geometries (an ascending and a descending burst, L3 Up and East) or
    of both L2a and L2b, one per geometry or level, each naming its ``files``, as naming
    the files one by one would describe them (the folder's files merge into one
    description only where ``grid`` would merge them)."""
    from insar_raster.io.egms import MixedGeometryError, MixedLevelError

    path = Path(path)
    try:
        return [describe(path, input_crs=input_crs, allow_dates=allow_dates)]
    except (MixedGeometryError, MixedLevelError) as exc:
        if not path.is_dir():
            raise
        groups = exc.groups
    out = []
    for names in groups.values():
        # A zip's CSV is named 'folder/a.zip!a.csv'; a zip with several CSVs is named once per CSV.
        files = list(dict.fromkeys(str(n).split("!")[0] for n in names))
        info = describe_points(files, input_crs=input_crs, allow_dates=allow_dates)
        info.update(path=str(path), format="folder")
        out.append({"path": str(path), "files": [Path(f).name for f in files], **info})
    return out


def _value_text(key: str, value) -> str:
    if isinstance(value, float):
        if key.endswith("share"):
            return f"{value:.1%}"
        return f"{value:.6g}"
    if key.startswith("extent") and isinstance(value, list):
        return "west {:.10g}, south {:.10g}, east {:.10g}, north {:.10g}".format(*value)
    if key == "interval_days" and isinstance(value, dict):
        if value["min"] == value["max"]:
            return f"{value['median']:g} (regular)"
        return f"median {value['median']:g}, min {value['min']:g}, max {value['max']:g}"
    if key == "grid" and isinstance(value, dict):
        text = f"{value['height']} x {value['width']} cells (rows x columns)"
        if "resolution" in value:
            rx, ry = value["resolution"]
            text += f", {rx:g} m" if rx == ry else f", {rx:g} x {ry:g}"
        return text
    if key == "band_descriptions" and isinstance(value, list) and len(value) > 6:
        return ", ".join(map(str, value[:3])) + f", ... ({len(value)} bands) ..., " + ", ".join(map(str, value[-2:]))
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return (
            " to ".join(f"{v:.2f}" for v in value)
            if key.endswith("range") or "_range_" in key
            else ", ".join(f"{v:.6g}" for v in value)
        )
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


#: Text labels that say more than the JSON key (points files have two CRSs).
LABELS = {
    "points": {"crs": "crs (file)", "extent": "extent (file)", "grid_crs": "crs (grid)", "grid_extent": "extent (grid)"}
}


def format_description(info: dict) -> str:
    """Aligned ``key: value`` lines for humans (the CLI's default output)."""
    lines = []
    labels = LABELS.get(info.get("kind"), {})
    info = {labels.get(k, k): v for k, v in info.items()}
    width = max(len(k) for k in info) if info else 0
    for key, value in info.items():
        if value is None or key == "notes":
            continue
        if key in (
            "variables",
            "attributes",
            "layout",
            "training",
            "versions",
            "hyperparameters",
            "normalisation",
            "prior_filter",
            "lag_prior",
            "cadence",
        ) and isinstance(value, dict):
            lines.append(f"{key}:")
            for k, v in value.items():
                lines.append(f"  {k}: {_value_text(k, v)}")
            continue
        lines.append(f"{key.ljust(width)}: {_value_text(key, value)}")
    for note in info.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
