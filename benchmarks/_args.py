"""Command-line options shared by the benchmark scripts on synthetic scenes.

One place for the names, types and help of the options several scripts repeat (the
scene(s), grid shape and spacing, epochs, seed, models, cache folder); each script keeps
its own defaults, passed here, and adds the options that are its alone.
"""

from __future__ import annotations

import argparse
import os
import tempfile

CACHE_DIR = os.path.join(tempfile.gettempdir(), "insar-raster-bench")
#: the point benchmarks' scenes
POINT_SCENES = "mixed,fronts,switching,urban,realistic"


def scene_parser(
    doc: str,
    *,
    shape: str,
    n_epochs: int,
    seed: int,
    scenes: str | None = None,
    scene: str | None = None,
    points: int | None = None,
    resolution: float | None = None,
) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with the scene options.

    ``--shape`` and ``--n-epochs`` and ``--seed`` always; ``--scenes`` (comma-separated),
    ``--scene``, ``--points`` (MPs) and ``--resolution`` (m) only when given a default.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if scenes is not None:
        parser.add_argument("--scenes", default=scenes, help="comma-separated scene names (default %(default)s)")
    if scene is not None:
        parser.add_argument("--scene", default=scene, help="scene name (default %(default)s)")
    if points is not None:
        parser.add_argument("--points", type=int, default=points, help="MPs per scene (default %(default)s)")
    parser.add_argument("--shape", default=shape, help="HxW cells (default %(default)s)")
    if resolution is not None:
        parser.add_argument("--resolution", type=float, default=resolution, help="cell size in m (default %(default)g)")
    parser.add_argument("--n-epochs", type=int, default=n_epochs, help="acquisitions per scene (default %(default)s)")
    parser.add_argument("--seed", type=int, default=seed, help="scene (and model) seed (default %(default)s)")
    return parser


def add_models(parser: argparse.ArgumentParser, default: str) -> None:
    """``--models``: comma-separated model names."""
    parser.add_argument("--models", default=default, help="comma-separated model names (default %(default)s)")


def add_train_epochs(parser: argparse.ArgumentParser) -> None:
    """``--train-epochs``: the deep models' training epoch cap (default: evaluate's)."""
    parser.add_argument("--train-epochs", type=int, default=None, help="max training epochs of the deep models")


def add_cache_dir(parser: argparse.ArgumentParser, help: str = "where the scene cubes are kept for reruns") -> None:
    """``--cache-dir``: folder of the scene cubes kept between runs."""
    parser.add_argument("--cache-dir", default=CACHE_DIR, help=help + " (default: %(default)s)")


def parse_shape(text: str) -> tuple[int, int]:
    """``"128x128"`` -> ``(128, 128)`` (rows, columns)."""
    rows, cols = (int(v) for v in text.lower().split("x"))
    return rows, cols
