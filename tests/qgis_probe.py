"""Open insar-raster outputs in real QGIS and report what QGIS shows, as JSON on stdout.

Run by tests/test_qgis.py with the system Python that has PyQGIS (Debian/Ubuntu:
``apt install python3-qgis``), not the project's venv:

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_probe.py mesh cube.nc 12
    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_probe.py raster forecast.tif 12
    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_probe.py points forecast.gpkg 12

The last argument is the acquisition interval in days: the temporal controller is
stepped by it from the layer's full time range, as a user would.
"""

import json
import sys


def _frames(layer, interval_days):
    from qgis.core import QgsInterval, QgsProject, QgsTemporalNavigationObject, QgsTemporalUtils

    # What the controller's "Set to full range" button does: the range of the project's layers.
    project = QgsProject.instance()
    project.addMapLayer(layer, False)
    extent = QgsTemporalUtils.calculateTemporalRangeForProject(project)
    nav = QgsTemporalNavigationObject()
    nav.setTemporalExtents(extent)
    nav.setFrameDuration(QgsInterval(interval_days * 86400))
    return {
        "extent": [extent.begin().toString("yyyy-MM-dd"), extent.end().toString("yyyy-MM-dd")],
        "frames": nav.totalFrameCount(),
        "frame_starts": [
            nav.dateTimeRangeForFrameNumber(i).begin().toString("yyyy-MM-dd") for i in range(nav.totalFrameCount())
        ],
    }


def _render(layer, png=None):
    """Render the layer alone; return the share of painted (non-transparent) pixels."""
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(200, 160))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    if png:
        image.save(png)
    painted = sum(
        1
        for y in range(0, image.height(), 4)
        for x in range(0, image.width(), 4)
        if QColor(image.pixel(x, y)).alpha() > 0
    )
    return painted / ((image.height() // 4 + 1) * (image.width() // 4 + 1))


def mesh(path, interval_days):
    from qgis.core import QgsMeshLayer

    layer = QgsMeshLayer(path, "cube", "mdal")
    provider = layer.dataProvider()
    groups = [provider.datasetGroupMetadata(i).name() for i in range(provider.datasetGroupCount())]
    settings = layer.rendererSettings()
    active = settings.activeScalarDatasetGroup()
    scalar = settings.scalarSettings(active)
    return {
        "valid": layer.isValid(),
        "groups": groups,
        "datasets": [provider.datasetCount(i) for i in range(provider.datasetGroupCount())],
        "active_group": groups[active] if 0 <= active < len(groups) else None,
        "active_datasets": provider.datasetCount(active) if active >= 0 else 0,
        "min": scalar.classificationMinimum(),
        "max": scalar.classificationMaximum(),
        "crs": layer.crs().authid(),
        **_frames(layer, interval_days),
    }


def raster(path, interval_days, png=None):
    from qgis.core import Qgis, QgsRasterLayer

    layer = QgsRasterLayer(path, "forecast", "gdal")
    renderer = layer.renderer()
    out = {
        "valid": layer.isValid(),
        "qgis": Qgis.QGIS_VERSION,
        "bands": layer.bandCount(),
        "band_names": [layer.bandName(b) for b in range(1, layer.bandCount() + 1)],
        "renderer": renderer.type(),
        "crs": layer.crs().authid(),
        "painted_share": _render(layer, png),
    }
    if renderer.type() == "singlebandpseudocolor":
        out.update(band=renderer.band(), min=renderer.classificationMin(), max=renderer.classificationMax())
    temporal = layer.temporalProperties()
    out["temporal_active"] = temporal.isActive()
    if hasattr(Qgis.RasterTemporalMode, "FixedRangePerBand"):  # QGIS >= 3.38
        out["temporal_mode_per_band"] = temporal.mode() == Qgis.RasterTemporalMode.FixedRangePerBand
        out.update(_frames(layer, interval_days))
    return out


def points(path):
    """A point forecast GeoPackage, as *Add Vector Layer* opens it."""
    from qgis.core import QgsVectorLayer, QgsWkbTypes

    layer = QgsVectorLayer(f"{path}|layername=point_forecast", "point_forecast", "ogr")
    fields = layer.fields()
    first = next(layer.getFeatures(), None)
    return {
        "valid": layer.isValid(),
        "geometry": QgsWkbTypes.geometryDisplayString(layer.geometryType()),
        "crs": layer.crs().authid(),
        "features": layer.featureCount(),
        "fields": [f.name() for f in fields],
        "numeric": {f.name(): f.isNumeric() for f in fields},
        "first": {f.name(): first[f.name()] for f in fields} if first is not None else None,
    }


def main(argv):
    from qgis.core import QgsApplication

    kind, path, interval = argv[1], argv[2], float(argv[3])
    png = argv[4] if len(argv) > 4 else None
    app = QgsApplication([], False)
    app.initQgis()
    try:
        if kind == "points":
            result = points(path)
        else:
            result = mesh(path, interval) if kind == "mesh" else raster(path, interval, png)
    finally:
        app.exitQgis()
    print("QGIS_PROBE " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
