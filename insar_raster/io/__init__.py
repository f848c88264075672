"""I/O at the edges: points in, cubes and rasters out."""
