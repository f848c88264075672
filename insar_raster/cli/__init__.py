"""Command line: ``insar-raster <command> ...``, a thin layer over the Python API.

Each command lives in its own module exposing ``add_parser(subparsers)`` (which sets
``func``) so commands stay independent. Errors become one line on stderr:
exit 2 for bad input or usage, 1 for anything else; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import signal
import sys
import threading
import warnings
from pathlib import Path

from insar_raster import __version__
from insar_raster.cli._flags import Flags
from insar_raster.errors import first_line

# Order here is the order in --help.
COMMANDS = ("synth", "grid", "train", "forecast", "evaluate", "export", "info")

log = logging.getLogger("insar_raster")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line, exit 2 (argparse prints usage first)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _requested_command(argv) -> str | None:
    """The command named in ``argv`` (the first non-option word: the top level has no
    options that take a value), or None."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in COMMANDS else None


# A comma-separated list of numbers that starts with a minus sign (``-7.2,53.0,-7.1,53.1``):
# argparse takes it for an option, since only plain negative numbers count as values.
_NEGATIVE_LIST = re.compile(r"^-\d*\.?\d+(?:[eE][-+]?\d+)?(?:,\s*[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)+$")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--bounds -7.2,53.0,...`` -> ``--bounds=-7.2,53.0,...`` so argparse reads it as the value."""
    out, i = [], 0
    while i < len(argv):
        word = argv[i]
        if word.startswith("--") and "=" not in word and i + 1 < len(argv) and _NEGATIVE_LIST.match(argv[i + 1]):
            out.append(f"{word}={argv[i + 1]}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The ``insar-raster`` parser. Given ``argv``, only the command it names gets its full
    parser (the others are listed with their one-line help, as ``--help`` shows them), so
    that e.g. ``grid`` never imports what ``train``'s options need (forecast modules)."""
    parser = _Parser(
        prog="insar-raster",
        description=(
            "Turn InSAR measurement points (EGMS CSV, GeoPackage, GeoParquet) into a "
            "georeferenced displacement cube, forecast it, and write rasters that open in QGIS."
        ),
        epilog="Typical use: insar-raster grid points.gpkg && insar-raster forecast points_cube.nc",
    )
    parser.add_argument("--version", action="version", version=f"insar-raster {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", help="more log detail")
    common.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    wanted = None if argv is None else _requested_command(argv)
    for name in COMMANDS:
        module = importlib.import_module(f"insar_raster.cli.{name}")
        if wanted is None or name == wanted:
            module.add_parser(sub, [common])
            command = sub.choices[name]
            command.set_defaults(_flags=Flags.of(command))
        else:
            sub.add_parser(name, help=module.HELP)
    return parser


class _FlagFormatter(logging.Formatter):
    """Log lines with the library's ``name=value`` parameters shown as this command's flags."""

    def __init__(self, fmt: str, flags: Flags, mark_warnings: bool = False):
        super().__init__(fmt)
        self.flags = flags
        self.mark_warnings = mark_warnings

    def format(self, record) -> str:
        text = self.flags.translate(super().format(record))
        # Library log warnings read like the ``warnings`` ones: one ``warning:`` line.
        if self.mark_warnings and record.levelno >= logging.WARNING and not text.startswith("warning:"):
            text = f"warning: {text}"
        return text


def _flags(args) -> Flags:
    return getattr(args, "_flags", None) or Flags({})


def _command_flags(parser, command: str | None) -> Flags:
    """The flags of ``command``'s parser (before its arguments are parsed)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command].get_default("_flags") or Flags({})
    return Flags({})


@contextlib.contextmanager
def _command_logging(args):
    """The package's log lines on stderr for one command, at its -q/-v level; the
    logger's handlers, level and propagation as they were afterwards, so that main()
    can be called repeatedly (tests, notebooks) and the library logs as before it."""
    from insar_raster.progress import BarSafeHandler

    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    handler = BarSafeHandler()  # sys.stderr at each line; above a running progress bar, not onto it
    if args.verbose:
        handler.setFormatter(_FlagFormatter("%(levelname)s: %(message)s", _flags(args)))
    else:
        handler.setFormatter(_FlagFormatter("%(message)s", _flags(args), mark_warnings=True))
    saved = log.handlers[:], log.level, log.propagate
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    try:
        yield
    finally:
        log.handlers[:], _, log.propagate = saved
        log.setLevel(saved[1])


def _warning_printer(flags: Flags):
    def show_warning(message, category, filename, lineno, file=None, line=None):
        """Print a library warning (dropped rows, duplicate pids...) as one ``warning:`` line."""
        print(f"warning: {flags.translate(first_line(message, empty=category.__name__))}", file=sys.stderr)

    return show_warning


def main(argv=None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:
        # Ctrl-C outside the command's own handler (while Python imports numpy and xarray,
        # seconds on a loaded machine): one line, as during the command, not a traceback.
        words = sys.argv[1:] if argv is None else [str(a) for a in argv]
        if "--debug" in words:
            raise
        command = next((a for a in words if a in COMMANDS), None)
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        print(f"insar-raster{' ' + command if command else ''}: {what}; no partial output was kept", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130


def _main(argv=None) -> int:
    from insar_raster.errors import InputError

    argv = _join_negative_values(sys.argv[1:] if argv is None else [str(a) for a in argv])
    parser = build_parser(argv)
    if not argv:  # no arguments: usage and the list of commands, not a usage error
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except InputError as exc:
        # An option's type function (e.g. parse_bounds) refused its value: argparse does
        # not catch our exception, so report it here like any other usage error.
        command = next((a for a in argv if a in COMMANDS), None)
        if "--debug" in argv:
            raise
        flags = _command_flags(parser, command)
        print(f"insar-raster{' ' + command if command else ''}: error: {flags.message(exc)}", file=sys.stderr)
        return exc.exit_code
    # Logging and warning settings are scoped to this call so that main() can be called
    # repeatedly (tests, notebooks) without leaking handlers or filters or losing warnings
    # to the once-per-location registry.
    with _command_logging(args), warnings.catch_warnings(), _terminate_cleanly(args.command):
        warnings.showwarning = _warning_printer(_flags(args))
        if args.debug:
            warnings.simplefilter("default")
        else:
            # Only UserWarnings (ours: dropped rows, duplicate pids...) reach users; third-party
            # chatter (numpy RuntimeWarnings on all-NaN slices, deprecations) does not.
            warnings.simplefilter("ignore")
            warnings.filterwarnings("default", category=UserWarning)
        return _run_command(args)


def _primary_input(args) -> str | None:
    """The input file(s) a command works on, for error messages."""
    for name in ("cube", "inputs", "files", "points", "input"):
        value = getattr(args, name, None)
        if value:
            return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return None


_NETCDF_SUFFIXES = (".nc", ".nc4", ".h5", ".cdf")
_GEOTIFF_SUFFIXES = (".tif", ".tiff")


def _corrupt_input_message(exc: Exception, args=None, opened=()) -> str | None:
    """A data-read error from netCDF4/HDF5 or GDAL (bit rot, truncation past the header):
    name the input (``opened``: the cube files the command opened)."""
    from insar_raster.io.cube import raster_read_reason

    text = first_line(exc, empty="")
    raster = raster_read_reason(exc)
    if raster is not None:
        text, suffixes = raster, _GEOTIFF_SUFFIXES
    elif any(key in text for key in ("NetCDF:", "HDF error", "HDF5")):
        suffixes = _NETCDF_SUFFIXES
    else:
        return None
    suspects = [str(p) for p in opened if raster is None or str(p).lower().endswith(suffixes)]
    if not suspects and args is not None:
        # Commands that open files without open_cube (info): their inputs of that format.
        given = _primary_input(args) or ""
        suspects = [f for f in given.split(", ") if f.lower().endswith(suffixes)]
    if not suspects:
        return None
    names = ", ".join(dict.fromkeys(suspects))
    for name in suspects:  # GDAL starts its reason with the file's name
        text = text.removeprefix(f"{name}, ").removeprefix(f"{Path(name).name}, ")
    return f"{names}: data cannot be read ({text}) (the file is corrupt or truncated; re-create it or copy it again)"


class _Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, a job scheduler): unwind like Ctrl-C so temporary outputs are removed."""


@contextlib.contextmanager
def _terminate_cleanly(command: str):
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def on_sigterm(signum, frame):
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_command(args) -> int:
    from insar_raster.errors import InputError

    opened = []
    try:
        from insar_raster.io.atomic import output_group
        from insar_raster.io.cube import opened_inputs

        # One command's outputs appear together or not at all (a forecast and its bounds).
        with opened_inputs() as opened, output_group():
            result = args.func(args)
        return int(result or 0)
    except InputError as exc:
        if args.debug:
            raise
        if exc.path is None and exc.param is None:
            # Errors about the data itself (too few points or epochs...) are raised deep in
            # the library, which does not know the file: name the command's input.
            exc = InputError(_primary_input(args), exc.problem, exc.hint)
        print(f"insar-raster {args.command}: error: {_flags(args).message(exc)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (`insar-raster info x | head`): stop quietly, as `cat` does.
        # stdout is pointed at devnull so the interpreter's final flush cannot complain.
        with contextlib.suppress(OSError, ValueError):  # ValueError: stdout has no descriptor
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, _Terminated) else "interrupted"
        print(f"insar-raster {args.command}: {what}; no partial output was kept", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        # A file the user named cannot be opened: their environment, not our bug (exit 2).
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"insar-raster {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # anything else is our failure: still one line, exit 1
        if args.debug:
            raise
        corrupt = _corrupt_input_message(exc, args, opened)
        if corrupt:
            print(f"insar-raster {args.command}: error: {corrupt}", file=sys.stderr)
            return 2
        text = first_line(exc, empty="")
        print(
            f"insar-raster {args.command}: error: {type(exc).__name__}: {text} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
