"""GIS outputs: GeoTIFF/COG rasters, QGIS styles, derived layers, quicklooks (``info`` is :mod:`insar_raster.info`)."""
