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
    "#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7",
    "#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061",
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
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"{r},{g},{b},255"


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def qml_document(limit: float, units: str = "mm", band: int = 1, label: str | None = None,
                 colours=RDBU_11) -> ET.ElementTree:
    """Build the QML XML tree of a diverging pseudocolour style over ``[-limit, limit]``.

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
    """
    limit = float(limit)
    lo, hi = -limit, limit
    n = len(colours)
    qgis = ET.Element("qgis", {
        "version": QGIS_VERSION, "styleCategories": "AllStyleCategories",
        "hasScaleBasedVisibilityFlag": "0", "minScale": "1e+08", "maxScale": "0",
    })
    if label:
        ET.SubElement(qgis, "abstract").text = f"insar-raster style, limits from {label}"
    pipe = ET.SubElement(qgis, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", {
        "type": "singlebandpseudocolor", "band": str(band), "opacity": "1", "alphaBand": "-1",
        "classificationMin": _fmt(lo), "classificationMax": _fmt(hi), "nodataColor": "",
    })
    ET.SubElement(renderer, "rasterTransparency")
    mmo = ET.SubElement(renderer, "minMaxOrigin")
    # "None" = user-defined limits: QGIS keeps ours instead of recomputing min/max.
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Estimated"),
                      ("cumulativeCutLower", "0.02"), ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(mmo, tag).text = text
    shader = ET.SubElement(renderer, "rastershader")
    crs = ET.SubElement(shader, "colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "1", "clip": "0",
        "minimumValue": _fmt(lo), "maximumValue": _fmt(hi), "labelPrecision": "2",
    })
    ramp = ET.SubElement(crs, "colorramp", {"type": "gradient", "name": "[source]"})
    stops = ":".join(f"{_fmt(i / (n - 1))};{_rgba(c)}" for i, c in enumerate(colours[1:-1], start=1))
    props = {"color1": _rgba(colours[0]), "color2": _rgba(colours[-1]), "discrete": "0",
             "rampType": "gradient", "stops": stops}
    # QGIS >= 3.26 reads <Option>; older versions read <prop>. Write both.
    options = ET.SubElement(ramp, "Option", {"type": "Map"})
    for k, v in props.items():
        ET.SubElement(options, "Option", {"type": "QString", "name": k, "value": v})
    for k, v in props.items():
        ET.SubElement(ramp, "prop", {"k": k, "v": v})
    for i, colour in enumerate(colours):
        value = lo + (hi - lo) * i / (n - 1)
        ET.SubElement(crs, "item", {"alpha": "255", "value": _fmt(value), "color": colour,
                                    "label": f"{value:.2f} {units}"})
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "grayscaleMode": "0", "colorizeOn": "0",
                                          "colorizeRed": "255", "colorizeGreen": "128", "colorizeBlue": "128",
                                          "colorizeStrength": "100", "invertColors": "0"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(qgis, "blendMode").text = "0"
    ET.indent(qgis)
    return ET.ElementTree(qgis)


def write_qml(path, limit: float, units: str = "mm", band: int = 1, overwrite: bool = False,
              label: str | None = None) -> Path:
    """Write a diverging QGIS style to ``path`` (atomically); see :func:`qml_document`."""
    path = Path(path)
    tree = qml_document(limit, units=units, band=band, label=label)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n")
            tree.write(fh, encoding="utf-8", xml_declaration=False)
    return path


def read_qml_limits(path) -> tuple[float, float]:
    """(classificationMin, classificationMax) of a pseudocolour ``.qml``."""
    root = ET.parse(path).getroot()
    renderer = root.find("./pipe/rasterrenderer")
    if renderer is None:
        raise ValueError(f"{path}: no raster renderer in style")
    return float(renderer.get("classificationMin")), float(renderer.get("classificationMax"))
