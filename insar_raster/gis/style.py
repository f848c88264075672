"""QGIS layer styles (``.qml``) for displacement rasters.

A QGIS raster style is an XML document; saved as ``<stem>.qml`` beside ``<stem>.tif``
QGIS applies it automatically when the raster is added. We write a
``singlebandpseudocolor`` renderer with an interpolated diverging ramp (ColorBrewer
RdBu: red = negative = subsidence / motion away from the satellite, blue = positive =
uplift), centred on 0 with symmetric limits +-L, L = 98th percentile of ``|values|``,
so one outlier does not wash out the map.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from insar_raster.io.atomic import atomic_path

# ColorBrewer RdBu, 11 classes (Cynthia Brewer, colorbrewer2.org), low -> high.
RDBU_11 = (
    "#67001f",
    "#b2182b",
    "#d6604d",
    "#f4a582",
    "#fddbc7",
    "#f7f7f7",
    "#d1e5f0",
    "#92c5de",
    "#4393c3",
    "#2166ac",
    "#053061",
)
QGIS_VERSION = "3.28.0-Firenze"  # oldest LTR whose format we follow; newer QGIS reads it


def robust_limit(values, percentile: float = 98.0, fallback: float = 1.0) -> float:
    """Symmetric colour limit: the ``percentile`` of ``|values|`` (NaNs ignored).

    Returns ``fallback`` when there are no finite non-zero values (e.g. an all-zero
    first epoch), so the ramp never collapses to a zero-width range.
    """
    values = np.abs(np.asarray(values, dtype=np.float64).ravel())
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float(fallback)
    limit = float(np.percentile(values, percentile))
    if not (limit > 0 and math.isfinite(limit)):
        limit = float(values.max()) if values.max() > 0 else float(fallback)
    return limit


def _rgba(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"{r},{g},{b},255"


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def epoch_ranges(times, interval_days: float | None = None) -> list[tuple[str, str]]:
    """(begin, end) ISO datetimes of each epoch's time slot: from its date to the next
    epoch's (the last one lasts the median interval), so that stepping the QGIS temporal
    controller by the acquisition interval lands on every epoch, the last included."""
    days = np.asarray(times, dtype="datetime64[s]")
    if len(days) > 1:
        step = np.median(np.diff(days).astype("timedelta64[s]").astype(np.int64))
    else:
        step = int(round((interval_days or 1) * 86400))
    ends = np.append(days[1:], days[-1] + np.timedelta64(int(step), "s"))
    iso = lambda t: str(t.astype("datetime64[s]")) + "Z"  # noqa: E731
    return [(iso(b), iso(e)) for b, e in zip(days, ends)]


def _temporal(parent, times) -> None:
    """``<temporal>`` for both layer kinds that may load this style.

    Raster (QGIS >= 3.38): mode 3 = fixed temporal range per band, one range per band
    from :func:`epoch_ranges`; QGIS 3.22-3.36 do not know mode 3 and keep drawing the
    styled band. Mesh (the NetCDF opened as a mesh, any QGIS 3.x): the layer's time
    extent, ending one interval after the last epoch (otherwise the controller stops a
    step short of it); time is stored as days since 1970-01-01.
    """
    ranges = epoch_ranges(times)
    temporal = ET.SubElement(
        parent,
        "temporal",
        {
            # raster layer
            "enabled": "1",
            "mode": "3",
            "fetchMode": "0",
            "bandNumber": "1",
            # mesh layer
            "temporal-active": "1",
            "reference-time": "1970-01-01T00:00:00Z",
            "matching-method": "0",
            "start-time-extent": ranges[0][0],
            "end-time-extent": ranges[-1][1],
        },
    )
    fixed = ET.SubElement(temporal, "fixedRange")
    ET.SubElement(fixed, "start").text = ranges[0][0]
    ET.SubElement(fixed, "end").text = ranges[-1][1]
    items = ET.SubElement(temporal, "ranges")
    for band, (begin, end) in enumerate(ranges, start=1):
        ET.SubElement(
            items, "range", {"band": str(band), "begin": begin, "end": end, "includeBeginning": "1", "includeEnd": "0"}
        )


def _ramp(parent, colours) -> None:
    """A gradient ``<colorramp>`` (both the >= 3.26 ``<Option>`` and older ``<prop>`` forms)."""
    n = len(colours)
    ramp = ET.SubElement(parent, "colorramp", {"type": "gradient", "name": "[source]"})
    stops = ":".join(f"{_fmt(i / (n - 1))};{_rgba(c)}" for i, c in enumerate(colours[1:-1], start=1))
    props = {
        "color1": _rgba(colours[0]),
        "color2": _rgba(colours[-1]),
        "discrete": "0",
        "rampType": "gradient",
        "stops": stops,
    }
    options = ET.SubElement(ramp, "Option", {"type": "Map"})
    for k, v in props.items():
        ET.SubElement(options, "Option", {"type": "QString", "name": k, "value": v})
    for k, v in props.items():
        ET.SubElement(ramp, "prop", {"k": k, "v": v})


def _shader_items(shader, lo, hi, colours, units) -> None:
    n = len(colours)
    for i, colour in enumerate(colours):
        value = lo + (hi - lo) * i / (n - 1)
        ET.SubElement(
            shader, "item", {"alpha": "255", "value": _fmt(value), "color": colour, "label": f"{value:.2f} {units}"}
        )


def _colour_ramp_shader(parent, lo: float, hi: float, colours, units: str) -> None:
    """The interpolated colour ramp over ``[lo, hi]`` that the raster and mesh renderers share."""
    shader = ET.SubElement(
        parent,
        "colorrampshader",
        {
            "colorRampType": "INTERPOLATED",
            "classificationMode": "1",
            "clip": "0",
            "minimumValue": _fmt(lo),
            "maximumValue": _fmt(hi),
            "labelPrecision": "2",
        },
    )
    _ramp(shader, colours)  # QGIS >= 3.26 reads <Option>; older versions read <prop>: both written
    _shader_items(shader, lo, hi, colours, units)


def _mesh_settings(parent, lo, hi, colours, units, group: int = 0) -> None:
    """``<mesh-renderer-settings>``: dataset group ``group`` active, drawn with our ramp.

    MDAL lists a CF NetCDF's variables as dataset groups sorted by their ``long_name``;
    the cube's ``displacement`` long_name sorts first (see
    :data:`insar_raster.io.cube.DISPLACEMENT_LONG_NAME`), so it is group 0.
    """
    settings = ET.SubElement(parent, "mesh-renderer-settings")
    ET.SubElement(settings, "active-dataset-group", {"scalar": str(group), "vector": "-1"})
    scalar = ET.SubElement(
        settings,
        "scalar-settings",
        {
            "group": str(group),
            "min-val": _fmt(lo),
            "max-val": _fmt(hi),
            "opacity": "1",
            "interpolation-method": "none",
        },
    )
    _colour_ramp_shader(scalar, lo, hi, colours, units)


def qml_document(
    limit: float, units: str = "mm", band: int = 1, label: str | None = None, colours=RDBU_11, times=None
) -> ET.ElementTree:
    """Build the QML XML tree of a diverging pseudocolour style over ``[-limit, limit]``.

    One document serves both ways QGIS opens our files: the raster renderer (GeoTIFF)
    and, with ``times``, the temporal settings and the mesh renderer (a NetCDF cube
    opened as a mesh layer, which loads ``<stem>.qml`` too). Each layer kind reads its
    own elements and ignores the others'.

    Parameters
    ----------
    limit : float
        Half-width of the classification range, in the raster's units.
    units : str
        Unit shown in the legend labels.
    band : int
        1-based band the renderer draws (QGIS lets the user switch band afterwards).
    label : str, optional
        Stored as the layer abstract (e.g. the epoch the limits were computed on).
    colours : sequence of str
        Hex colours from the negative to the positive end (odd count: middle = 0).
    times : array-like of datetime64, optional
        The epochs, one per band / mesh dataset: adds the temporal settings
        (:func:`_temporal`) and the mesh renderer (:func:`_mesh_settings`).
    """
    limit = float(limit)
    lo, hi = -limit, limit
    qgis = ET.Element(
        "qgis",
        {
            "version": QGIS_VERSION,
            "styleCategories": "AllStyleCategories",
            "hasScaleBasedVisibilityFlag": "0",
            "minScale": "1e+08",
            "maxScale": "0",
        },
    )
    if label:
        ET.SubElement(qgis, "abstract").text = f"insar-raster style, limits from {label}"
    if times is not None and len(times):
        _temporal(qgis, times)
        _mesh_settings(qgis, lo, hi, colours, units)
    pipe = ET.SubElement(qgis, "pipe")
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        {
            "type": "singlebandpseudocolor",
            "band": str(band),
            "opacity": "1",
            "alphaBand": "-1",
            "classificationMin": _fmt(lo),
            "classificationMax": _fmt(hi),
            "nodataColor": "",
        },
    )
    ET.SubElement(renderer, "rasterTransparency")
    mmo = ET.SubElement(renderer, "minMaxOrigin")
    # "None" = user-defined limits: QGIS keeps ours instead of recomputing min/max.
    for tag, text in (
        ("limits", "None"),
        ("extent", "WholeRaster"),
        ("statAccuracy", "Estimated"),
        ("cumulativeCutLower", "0.02"),
        ("cumulativeCutUpper", "0.98"),
        ("stdDevFactor", "2"),
    ):
        ET.SubElement(mmo, tag).text = text
    shader = ET.SubElement(renderer, "rastershader")
    _colour_ramp_shader(shader, lo, hi, colours, units)
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(
        pipe,
        "huesaturation",
        {
            "saturation": "0",
            "grayscaleMode": "0",
            "colorizeOn": "0",
            "colorizeRed": "255",
            "colorizeGreen": "128",
            "colorizeBlue": "128",
            "colorizeStrength": "100",
            "invertColors": "0",
        },
    )
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(qgis, "blendMode").text = "0"
    ET.indent(qgis)
    return ET.ElementTree(qgis)


#: First line after the doctype of every style we write, naming the data file it was made for.
MARKER = "<!-- insar-raster style for {name} -->"


def written_for(path) -> str | None:
    """The data file name an insar-raster ``.qml`` was written for (None: not ours, or edited
    and saved again by QGIS, which drops the comment)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(400)
    except OSError:
        return None
    prefix, suffix = MARKER.split("{name}")
    start = head.find(prefix)
    if start < 0:
        return None
    end = head.find(suffix, start + len(prefix))
    return head[start + len(prefix) : end] if end > 0 else None


def write_qml(
    path,
    limit: float,
    units: str = "mm",
    band: int = 1,
    overwrite: bool = False,
    label: str | None = None,
    times=None,
    data_name: str | None = None,
) -> Path:
    """Write a diverging QGIS style to ``path`` (atomically); see :func:`qml_document`.

    ``data_name`` (the file the style is for) is recorded in a comment, so that a style
    written for ``cube.nc`` can be told apart from one a user saved (see :func:`written_for`).
    """
    path = Path(path)
    tree = qml_document(limit, units=units, band=band, label=label, times=times)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n")
            if data_name:
                fh.write(MARKER.format(name=data_name.replace("--", "")).encode() + b"\n")
            tree.write(fh, encoding="utf-8", xml_declaration=False)
    return path


def read_qml_limits(path) -> tuple[float, float]:
    """(classificationMin, classificationMax) of a pseudocolour ``.qml``."""
    root = ET.parse(path).getroot()
    renderer = root.find("./pipe/rasterrenderer")
    if renderer is None:
        raise ValueError(f"{path}: no raster renderer in style")
    return float(renderer.get("classificationMin")), float(renderer.get("classificationMax"))


def replaceable(qml_path, data_path) -> bool:
    """True when ``qml_path`` is a style we wrote for another file of the same stem
    (``cube.nc`` beside ``cube.tif``): one style serves both, so the newer one replaces it."""
    name = written_for(qml_path)
    return name is not None and name != Path(data_path).name and Path(name).stem == Path(data_path).stem


def write_cube_style(nc_path, overwrite: bool = False, units: str = "mm") -> Path | None:
    """Write ``<stem>.qml`` beside a NetCDF cube for QGIS's mesh route: displacement
    active on load, the diverging ramp over +-L (L: 98th percentile of ``|values|`` at the
    last epoch) and a time extent the temporal controller steps through to the last epoch.

    A style that is not ours (a user's) is kept unless ``overwrite``; returns None then.
    """
    import xarray as xr

    nc_path = Path(nc_path)
    qml_path = nc_path.with_suffix(".qml")
    replace = overwrite or replaceable(qml_path, nc_path)
    if qml_path.exists() and not replace:
        return None
    with xr.open_dataset(nc_path, engine="netcdf4") as ds:
        da = ds["displacement"]
        times = ds["time"].values
        last = np.asarray(da.isel(time=-1).values)
        units = da.attrs.get("units", units)
    label = str(np.datetime_as_string(times[-1], unit="D"))
    return write_qml(
        qml_path,
        limit=robust_limit(last),
        units=units,
        band=len(times),
        overwrite=replace,
        label=label,
        times=times,
        data_name=nc_path.name,
    )
