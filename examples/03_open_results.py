"""Open the results with xarray / rioxarray / rasterio, and derive GIS layers.

    python examples/03_open_results.py                      # uses examples_out/
    python examples/03_open_results.py --out work

Shows that the files are ordinary, self-describing geodata: the GeoTIFF's bands carry
their dates, the NetCDF has a decoded time axis and a CRS, and derived layers (mean
velocity, cumulative displacement) are one call away.
"""

import argparse
from pathlib import Path

import numpy as np
import rasterio
import rioxarray
import xarray as xr

from insar_raster import cumulative_displacement, describe, export, format_description, mean_velocity


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("examples_out"))
    args = parser.parse_args()
    tif, nc = args.out / "cube.tif", args.out / "cube.nc"

    # GeoTIFF with rioxarray: one band per epoch; band descriptions are ISO dates.
    raster = rioxarray.open_rasterio(tif, chunks={"band": 8}, mask_and_scale=True)
    dates = np.array(raster.attrs["long_name"], dtype="datetime64[D]")
    raster = raster.assign_coords(time=("band", dates)).swap_dims(band="time").drop_vars("band")
    print("GeoTIFF:", dict(raster.sizes), raster.rio.crs, "units", sorted(set(raster.attrs["units"])))
    with rasterio.open(tif) as src:  # the same with rasterio
        print("  tiled", src.profile["tiled"], "| overviews", src.overviews(1), "| first bands", src.descriptions[:3])

    # NetCDF with xarray: CF time axis decoded, CRS from the grid mapping.
    cube = xr.open_dataset(nc, decode_coords="all", chunks={})
    print("NetCDF:", dict(cube.sizes), cube.rio.crs, cube["displacement"].attrs["units"])

    # A time series at a point (nearest cell), in mm.
    x, y = float(cube.x[cube.sizes["x"] // 2]), float(cube.y[cube.sizes["y"] // 2])
    series = cube["displacement"].sel(x=x, y=y, method="nearest").load()
    print(f"series at ({x:.0f}, {y:.0f}):", np.round(series.values[-5:], 1), "mm (last 5 epochs)")

    # Derived layers, lazily computed; export writes them as COG + .qml for QGIS.
    velocity = mean_velocity(cube)
    cumulative = cumulative_displacement(cube)
    print(
        f"mean velocity: {float(velocity.min()):.1f} to {float(velocity.max()):.1f} mm/yr; "
        f"cumulative: {float(cumulative.min()):.1f} to {float(cumulative.max()):.1f} mm"
    )
    export(cube, args.out / "velocity.tif", layer="velocity", overwrite=True)
    export(cube, args.out / "last_year.tif", dates=f"{str(cube.time.values[-1])[:4]}-01-01:", overwrite=True)

    # What is in a file, as `insar-raster info` prints it.
    print(format_description(describe(args.out / "velocity.tif")))


if __name__ == "__main__":
    main()
