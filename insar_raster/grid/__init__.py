"""Sparse measurement points -> dense (time, y, x) cubes."""
