"""EGMS measurement points -> georeferenced displacement cube, from Python.

    python examples/01_points_to_cube.py                       # synthetic EGMS tiles
    python examples/01_points_to_cube.py EGMS_L2b_*.csv --out work

With no input files it first writes two synthetic EGMS L2b CSV tiles (no real tile can
be downloaded here), then does what ``insar-raster grid`` does, step by step:
read and merge the tiles, grid them, write a CF NetCDF cube and a COG (+ .qml style),
and a quicklook PNG.
"""

import argparse
from pathlib import Path

import numpy as np

from insar_raster import GridSpec, grid_points, plot_cube, read_points, write_cube, write_geotiff


def synthetic_tiles(folder: Path) -> list[Path]:
    """Two EGMS L2b-layout CSV tiles (west and east halves of one synthetic scene)."""
    from insar_raster import make_scene, write_points

    points, _truth = make_scene(n_points=4000, shape=(64, 64), n_epochs=48, interval_days=12, seed=1)
    middle = float(np.median(points["x"].values))
    tiles = []
    for name, part in (("west", points["x"] < middle), ("east", points["x"] >= middle)):
        path = folder / f"EGMS_L2b_synthetic_{name}.csv"
        write_points(points.isel(point=np.flatnonzero(part.values)), path, layout="L2b", overwrite=True)
        tiles.append(path)
    return tiles


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tiles", nargs="*", type=Path, help="EGMS CSV tiles, zips, GeoPackage/GeoParquet")
    parser.add_argument("--out", type=Path, default=Path("examples_out"), help="output folder")
    parser.add_argument("--resolution", type=float, default=100.0, help="cell size (m)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tiles = args.tiles or synthetic_tiles(args.out)

    # 1. Read and merge the tiles: one Dataset (point, time), EPSG:3035 metres.
    points = read_points(tiles)
    print(f"{points.sizes['point']} points x {points.sizes['time']} epochs, CRS {points.rio.crs}")

    # 2. A grid snapped to multiples of the resolution, covering the points.
    grid_spec = GridSpec.from_points(points.x.values, points.y.values, points.rio.crs, resolution=args.resolution)
    print(grid_spec)

    # 3. Grid: Delaunay-linear interpolation, cells > 3 cells from any point left NaN.
    cube = grid_points(points, grid_spec=grid_spec, method="linear")  # lazy (dask)

    # 4. Write: CF NetCDF (QGIS raster + mesh), COG with ISO-date bands and a .qml style.
    write_cube(cube, args.out / "cube.nc", overwrite=True)
    write_geotiff(cube["displacement"], args.out / "cube.tif", overwrite=True)
    plot_cube(cube, args.out / "cube.png", overwrite=True)
    for name in ("cube.nc", "cube.tif", "cube.qml", "cube.png"):
        print("wrote", args.out / name)


if __name__ == "__main__":
    main()
