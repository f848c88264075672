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


def _chain(*texts):
    """rasterio's read failure as it raises it: each exception raised from the next one
    (GDAL's errors, rasterio's private CPLE_* types, stood in for by RuntimeError)."""
    from rasterio.errors import RasterioIOError

    exc = None
    for i, text in enumerate(reversed(texts)):
        kind = RasterioIOError if i == len(texts) - 1 else RuntimeError
        try:
            raise kind(text) from exc
        except kind as raised:
            exc = raised
    return exc


def test_gdals_reason_for_a_raster_read_failure():
    """One reader of rasterio's failures (io.cube.raster_read_reason) for open_cube and the CLI:
    the block-read line of the chain, else the line under 'Read failed', else None."""
    from insar_raster.io.cube import raster_read_reason

    read_failed = "Read failed. See previous exception for details."
    block = "cube.tif, band 4: IReadBlock failed at X offset 0, Y offset 0: TIFFReadEncodedTile() failed."
    truncated = _chain(read_failed, block, "TIFFReadEncodedTile() failed.", "TIFFFillTile:Read error at row 0")
    assert raster_read_reason(truncated) == block
    assert raster_read_reason(_chain(read_failed, "cube.tif: some other failure")) == "cube.tif: some other failure"
    assert raster_read_reason(_chain(read_failed)) == read_failed
    assert raster_read_reason(_chain("cube.tif: not recognized as a supported file format")) is None
    assert raster_read_reason(OSError("NetCDF: HDF error")) is None
