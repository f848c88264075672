"""One-line messages from exceptions (:func:`insar_raster.errors.first_line`)."""

import pytest

from insar_raster.errors import InputError, first_line


def test_first_line_of_an_exception():
    assert first_line(ValueError("  bad value\nmore detail\n")) == "bad value"
    assert first_line(OSError("one line  ")) == "one line"
    # Nothing to say: the type's name, or what the caller gives.
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError(" \n "), empty="") == ""
    assert first_line(RuntimeError(""), empty="Warning") == "Warning"


@pytest.mark.parametrize("reader", ["cube", "info"])
def test_a_geotiff_error_without_text_is_still_one_line(tmp_path, monkeypatch, reader):
    """GDAL may fail without a message: the error names the file and the exception's type
    (was: IndexError from the empty message's first line, exit 1)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    from insar_raster.info import describe_geotiff
    from insar_raster.io.tifcube import open_geotiff_cube

    def fail(*args, **kwargs):
        raise RasterioIOError("")

    monkeypatch.setattr(rasterio, "open", fail)
    path = tmp_path / "cube.tif"
    path.write_bytes(b"II*\x00")
    with pytest.raises(InputError, match=r"cube.tif: cannot read as GeoTIFF: RasterioIOError$"):
        open_geotiff_cube(path) if reader == "cube" else describe_geotiff(path)
