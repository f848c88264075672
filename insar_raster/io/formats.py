"""Which file formats each kind of output can be written as, checked before any work.

A command that would compute for minutes and only then find that ``-o cube.csv`` cannot
be written refuses at once instead: the CLI calls :func:`check_output_format` on every
output path before reading its inputs, and the writers call it again.
"""

from __future__ import annotations

from pathlib import Path

from insar_raster.errors import InputError

#: Suffixes each kind of output is written as (first = the default).
WRITABLE = {
    "cube": (".nc", ".zarr", ".tif", ".tiff"),
    "forecast": (".tif", ".tiff", ".nc"),
    "points": (".csv", ".gpkg", ".parquet"),
    "point forecast": (".gpkg", ".csv", ".parquet"),
}
#: Suffixes of data files, never of a model file (a model is written as .ipt or any other name).
DATA_SUFFIXES = {
    ".csv",
    ".txt",
    ".nc",
    ".zarr",
    ".tif",
    ".tiff",
    ".gpkg",
    ".parquet",
    ".shp",
    ".json",
    ".png",
    ".zip",
    ".md",
}


#: GeoPackage version written: GDAL before 3.7 (the QGIS 3.22/3.28 LTR builds) warns that
#: 1.4, what newer GDAL writes by default, "may only be partially supported"; 1.2 opens
#: silently everywhere and has all a point layer needs.
GPKG_VERSION = "1.2"


def write_geopackage(frame, path, layer: str) -> None:
    """Write a GeoDataFrame as one layer of a GeoPackage (version :data:`GPKG_VERSION`)."""
    frame.to_file(path, driver="GPKG", engine="pyogrio", layer=layer, VERSION=GPKG_VERSION)


def check_output_format(path, kind: str) -> Path:
    """Raise :class:`InputError` unless ``path``'s suffix can be written as a ``kind``.

    Parameters
    ----------
    path : str or Path
        Output path.
    kind : {"cube", "forecast", "points", "point forecast", "model"}
        What is written there.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if kind == "model":
        if suffix in DATA_SUFFIXES:
            raise InputError(path, f"unknown output format {suffix!r} for a model file", "name it e.g. model.ipt")
        return path
    allowed = WRITABLE[kind]
    if suffix not in allowed:
        shown = ", ".join(dict.fromkeys(s for s in allowed if s != ".tiff"))
        raise InputError(path, f"unknown output format {suffix or '(no extension)'!r} for a {kind}", f"use {shown}")
    return path
