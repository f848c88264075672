"""Command-line options generated from the config dataclasses, and the option groups
that several commands share (the map back from parameters to flags is :mod:`._flags`).

A config field becomes an option when its ``metadata`` has ``help`` (see
:func:`insar_raster.forecast.config.option`): the flag is ``--field-name`` (or the one
in :data:`FLAGS`), the type and the default are the field's, and ``(default ...)`` is
appended to the help unless the field says ``show_default=False``. So a default is
written once, in the dataclass, and ``--help`` always shows the one in use.
"""

from __future__ import annotations

import dataclasses
import typing

#: Config fields whose flag is not ``--field-name``.
FLAGS = {"paper_input_size": "--paper-size"}


def flag_of(field: dataclasses.Field) -> str:
    """The command-line flag of a config field."""
    return FLAGS.get(field.name, "--" + field.name.replace("_", "-"))


def _type_of(cls, field: dataclasses.Field):
    hint = typing.get_type_hints(cls)[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def add_config_options(group, cls, names, **defaults) -> None:
    """Add the options of the fields ``names`` of dataclass ``cls`` to an argparse group.

    ``defaults`` overrides a field's default on this command line (e.g. ``steps=None``
    when the command takes its default from elsewhere); the help then says nothing about
    the default.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        field = fields[name]
        meta = field.metadata
        default = defaults.get(name, field.default)
        kind = _type_of(cls, field)
        help_text = meta["help"]
        if meta.get("show_default", True) and name not in defaults:
            shown = f"{default:g}" if isinstance(default, float) else default
            help_text += f" (default {shown})"
        kwargs = {"default": default, "help": help_text, "dest": name}
        if meta.get("choices"):
            kwargs["choices"] = tuple(meta["choices"])
        else:
            kwargs["type"] = kind
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        group.add_argument(flag_of(field), **kwargs)


def config_from_args(cls, args, **values):
    """An instance of dataclass ``cls`` from the parsed ``args`` (options it has), plus ``values``."""
    given = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if "help" in f.metadata and hasattr(args, f.name)
    }
    return cls(**{**given, **values})


#: The training options of ``train`` and ``forecast`` (which trains when given no model).
TRAINING_FIELDS = (
    "arch",
    "window",
    "epochs",
    "batch_size",
    "lr",
    "seed",
    "device",
    "patch_size",
    "paper_input_size",
    "val_fraction",
    "test_fraction",
    "samples_per_epoch",
    "patience",
    "prior",
    "significance",
    "importance",
)


def add_training_options(p) -> None:
    """The ``training`` option group shared by ``train`` and ``forecast``."""
    from insar_raster.forecast.config import TrainConfig

    g = p.add_argument_group("training")
    add_config_options(g, TrainConfig, TRAINING_FIELDS)
    add_resample_option(p, g)
    add_config_options(g, TrainConfig, ("threads",))


def add_resample_option(parser, group=None) -> None:
    """``--resample STEP`` (``train``, ``forecast``, ``evaluate``): the cube is first
    interpolated to a regular time step by :func:`insar_raster.cli._common.load_cube`.

    Added to ``group`` (default the parser itself); the parser's ``param_flags`` gain
    ``step`` -> ``--resample`` for the errors of ``resample_cube(cube, step)``.
    """
    parser.set_defaults(param_flags={**(parser.get_default("param_flags") or {}), "step": "--resample"})
    (group or parser).add_argument(
        "--resample",
        metavar="STEP",
        help="first interpolate the cube linearly in time to a regular step, e.g. 12D, before anything "
        "else (default: keep the acquisition dates; the models are given the time gaps)",
    )


def training_config(args, steps: int):
    """The :class:`~insar_raster.forecast.config.TrainConfig` of the parsed training options."""
    from insar_raster.forecast.config import TrainConfig

    return config_from_args(TrainConfig, args, steps=steps)


def add_plot_options(parser) -> None:
    """``--plot [PNG]`` and ``--plot-points X,Y|PID ...`` for commands that can draw a quicklook.

    Put ``--plot`` after the positional arguments (``--plot`` with no value means
    ``<output stem>.png``).
    """
    parser.add_argument(
        "--plot",
        nargs="?",
        const="",
        metavar="PNG",
        help="also write a quicklook PNG (maps in mm and time series); default <output>.png",
    )
    parser.add_argument(
        "--plot-points",
        nargs="+",
        metavar="X,Y|PID",
        help="with --plot: cells for the quicklook's time series: x,y in the cube's CRS (metres) "
        "or pids of the --points file; default: largest subsidence and uplift",
    )


def plot_output(args, output):
    """The PNG path asked for by ``--plot`` (None without ``--plot``)."""
    from pathlib import Path

    plot = getattr(args, "plot", None)
    if plot is None:
        return None
    return Path(plot) if plot else Path(output).with_suffix(".png")


def add_variable_option(parser) -> None:
    """``--variable``: which (time, y, x) variable of a cube to use (export, forecast)."""
    parser.add_argument(
        "--variable",
        metavar="NAME",
        help="cube variable to use: displacement, or vertical / east_west of a cube from "
        "'grid --decompose' (default: displacement, or vertical for such cubes)",
    )
