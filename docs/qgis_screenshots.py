"""Render the screenshots of docs/qgis.md with QGIS itself (PyQGIS layouts, headless).

Run with the Python that has PyQGIS (Debian/Ubuntu: apt install python3-qgis
qgis-providers), on files made by the project's venv:

    insar-raster synth -o demo/sample.csv --points 20000 --shape 128x128 --epochs 100
    insar-raster grid demo/sample.csv -o demo/sample_cube.nc
    insar-raster forecast demo/sample_cube.nc -o demo/forecast.tif
    QT_QPA_PLATFORM=offscreen /usr/bin/python3 docs/qgis_screenshots.py demo docs

Nothing is styled here: the layers are opened as a user would open them, so the
pictures show what the files' own .qml styles and time axes give in QGIS.
"""

import sys
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsDateTimeRange,
    QgsLayoutExporter,
    QgsLayoutItemLabel,
    QgsLayoutItemLegend,
    QgsLayoutItemMap,
    QgsLayoutPoint,
    QgsLayoutSize,
    QgsLegendStyle,
    QgsMeshDatasetIndex,
    QgsMeshLayer,
    QgsPrintLayout,
    QgsProject,
    QgsRasterLayer,
    QgsTemporalUtils,
    QgsUnitTypes,
)
from qgis.PyQt.QtGui import QFont

WIDTH_MM, HEIGHT_MM, DPI = 190, 90, 96


def _label(layout, text, x, y, w, size=9):
    item = QgsLayoutItemLabel(layout)
    item.setText(text)
    item.setFont(QFont("DejaVu Sans", size))
    item.attemptMove(QgsLayoutPoint(x, y, QgsUnitTypes.LayoutMillimeters))
    item.attemptResize(QgsLayoutSize(w, 6, QgsUnitTypes.LayoutMillimeters))
    layout.addLayoutItem(item)


def _map(layout, layer, x, y, w, h, time_range=None):
    item = QgsLayoutItemMap(layout)
    item.attemptMove(QgsLayoutPoint(x, y, QgsUnitTypes.LayoutMillimeters))
    item.attemptResize(QgsLayoutSize(w, h, QgsUnitTypes.LayoutMillimeters))
    item.setLayers([layer])
    item.setCrs(layer.crs())
    if time_range is not None:
        item.setIsTemporal(True)
        item.setTemporalRange(time_range)
    item.setFrameEnabled(True)
    layout.addLayoutItem(item)
    item.setExtent(layer.extent())  # shrinks the item to the extent's shape ...
    item.attemptResize(QgsLayoutSize(w, h, QgsUnitTypes.LayoutMillimeters))  # ... back to the box
    return item


def _legend(layout, layer, x, y):
    legend = QgsLayoutItemLegend(layout)
    legend.setAutoUpdateModel(False)
    legend.model().rootGroup().removeAllChildren()
    legend.model().rootGroup().addLayer(layer)
    legend.setTitle("")
    legend.setStyleFont(QgsLegendStyle.Group, QFont("DejaVu Sans", 8))
    legend.setStyleFont(QgsLegendStyle.Subgroup, QFont("DejaVu Sans", 8))
    legend.setStyleFont(QgsLegendStyle.SymbolLabel, QFont("DejaVu Sans", 8))
    legend.attemptMove(QgsLayoutPoint(x, y, QgsUnitTypes.LayoutMillimeters))
    legend.setResizeToContents(True)
    layout.addLayoutItem(legend)


def _export(layout, path):
    image = QgsLayoutExporter(layout).renderPageToImage(0, dpi=DPI)
    image.save(str(path), "PNG")
    print(f"wrote {path} ({Path(path).stat().st_size // 1024} KB)")


def raster_route(project, tif, out):
    layer = QgsRasterLayer(str(tif), tif.name, "gdal")  # its .qml is applied on load
    project.addMapLayer(layer)
    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    layout.pageCollection().page(0).setPageSize(QgsLayoutSize(WIDTH_MM, HEIGHT_MM, QgsUnitTypes.LayoutMillimeters))
    band = layer.renderer().band()
    _label(layout, f"{tif.name} as a raster layer, styled by its .qml on load: {layer.bandName(band)} (mm)", 4, 2, 185)
    _map(layout, layer, 4, 9, 95, 70)
    _legend(layout, layer, 104, 9)
    _export(layout, out)


def mesh_route(project, nc, out, height_mm=74):
    layer = QgsMeshLayer(str(nc), nc.name, "mdal")  # its .qml: displacement active, ramp, time extent
    project.addMapLayer(layer)
    extent = QgsTemporalUtils.calculateTemporalRangeForProject(project)
    n = layer.dataProvider().datasetCount(layer.rendererSettings().activeScalarDatasetGroup())
    reference = layer.temporalProperties().referenceTime()
    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    layout.pageCollection().page(0).setPageSize(QgsLayoutSize(WIDTH_MM + 18, height_mm, QgsUnitTypes.LayoutMillimeters))
    group = layer.dataProvider().datasetGroupMetadata(layer.rendererSettings().activeScalarDatasetGroup()).name()
    _label(layout, f"{nc.name} as a mesh layer: group '{group}' (mm) active on load", 4, 2, 185)
    _label(layout, "temporal controller stepped by the acquisition interval", 4, 7, 185)
    group_index = layer.rendererSettings().activeScalarDatasetGroup()
    for k, index in enumerate((0, n // 2, n - 1)):
        hours = layer.dataProvider().datasetMetadata(QgsMeshDatasetIndex(group_index, index)).time()
        begin = reference.addMSecs(int(round(hours * 3600 * 1000)))
        frame = QgsDateTimeRange(begin, begin.addDays(1))  # what the controller shows at that frame
        _map(layout, layer, 4 + k * 44, 14, 42, 42, frame)
        _label(layout, f"frame {index + 1} of {n}: {begin.toString('yyyy-MM-dd')}", 4 + k * 44, 57, 42, 7)
    _legend(layout, layer, 137, 14)
    _label(
        layout,
        f"controller range {extent.begin().toString('yyyy-MM-dd')} to "
        f"{extent.end().toString('yyyy-MM-dd')} (last epoch + one interval)",
        4,
        64,
        180,
        7,
    )
    _export(layout, out)


def main(argv):
    data, docs = Path(argv[1]), Path(argv[2])
    app = QgsApplication([], False)
    app.initQgis()
    try:
        project = QgsProject.instance()
        raster_route(project, data / "forecast.tif", docs / "qgis_raster_route.png")
        project.removeAllMapLayers()
        mesh_route(project, data / "sample_cube.nc", docs / "qgis_mesh_route.png")
    finally:
        app.exitQgis()


if __name__ == "__main__":
    main(sys.argv)
