"""-q prints nothing at all on success, for every command; no arguments prints the usage."""

import pytest
from cli_args import FAST_TRAINING

from insar_raster.cli import COMMANDS, main

# In order: each command uses the previous ones' outputs.
RUNS = [
    ("synth", ["synth", "-o", "{d}/p.csv", "--points", "800", "--shape", "20x20", "--epochs", "30"]),
    ("grid", ["grid", "{d}/p.csv", "-o", "{d}/c.nc"]),
    ("train", ["train", "{d}/c.nc", "-o", "{d}/m.ipt", *FAST_TRAINING]),
    ("forecast", ["forecast", "{d}/c.nc", "--model", "{d}/m.ipt", "-o", "{d}/f.tif"]),
    ("export", ["export", "{d}/c.nc", "--layer", "velocity", "-o", "{d}/v.tif"]),
    (
        "evaluate",
        [
            "evaluate",
            "{d}/c.nc",
            "--truth",
            "{d}/p_truth.nc",
            "--models",
            "persistence,trend",
            "--window",
            "6",
            "--steps",
            "2",
            "--permutation-repeats",
            "0",
            "-o",
            "{d}/report",
        ],
    ),
    ("info", ["info", "{d}/c.nc", "{d}/f.tif", "{d}/m.ipt", "{d}/p.csv"]),
]


def test_every_command_is_covered():
    assert sorted(name for name, _ in RUNS) == sorted(COMMANDS)


@pytest.fixture(scope="module")
def quiet_runs(tmp_path_factory):
    """Every command run once with -q, in order, in one folder: {name: (code, stdout,
    stderr)}; built whole whichever test asks first, so no test depends on test order."""
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("quiet")
    runs = {}
    for name, argv in RUNS:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([a.format(d=folder) for a in argv] + ["-q"])
        runs[name] = (code, out.getvalue(), err.getvalue())
    runs["folder"] = folder
    return runs


@pytest.fixture(scope="module")
def workdir(quiet_runs):
    return quiet_runs["folder"]


@pytest.mark.parametrize("name", [name for name, _ in RUNS])
def test_quiet_prints_nothing_on_success(quiet_runs, name):
    assert quiet_runs[name] == (0, "", "")


def test_no_arguments_prints_usage_and_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: insar-raster")
    assert all(command in out for command in COMMANDS)


class _Terminal(__import__("io").StringIO):
    """A stderr that says it is a terminal, so progress bars are drawn into it."""

    def isatty(self):
        return True


def test_evaluate_one_bar_with_stage_names_and_logs_never_on_a_bar(workdir, monkeypatch):
    import re
    import sys

    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    assert (
        main(
            [
                "evaluate",
                str(workdir / "c.nc"),
                "--models",
                "persistence,trend,convlstm",
                "--window",
                "6",
                "--steps",
                "2",
                "--epochs",
                "1",
                "--permutation-repeats",
                "1",
                "-o",
                str(workdir / "report_tty"),
                "--overwrite",
            ]
        )
        == 0
    )
    text = err.getvalue()
    bars = set(re.findall(r"(?:^|[\r\n])([\w ]+?):\s+\d+%\|", text))
    assert bars == {"evaluate"}  # one bar: no per-model training bar beside it
    for stage in ("fitting persistence", "fitting trend", "fitting convlstm", "permutation test convlstm"):
        assert re.search(r"evaluate:\s+\d+%\|[^\r\n]*" + stage, text), stage  # the stage name on the bar
    lines = [seg for seg in re.split(r"[\r\n]", text) if "evaluate: fitting" in seg or "wrote" in seg]
    assert lines and all(seg.startswith(("evaluate: fitting", "wrote")) for seg in lines)  # nothing glued


@pytest.mark.parametrize("verbose", [False, True])
def test_library_log_warnings_are_marked_as_warnings(capsys, verbose):
    """A library ``log.warning`` reaches the user as a ``warning:`` line (WARNING: with -v);
    information stays unmarked."""
    import argparse
    import logging

    from insar_raster.cli import _command_logging

    log = logging.getLogger("insar_raster")
    with _command_logging(argparse.Namespace(quiet=False, verbose=verbose, _flags=None)):
        log.warning("3 of 9 measurement points lie outside the cube's grid and are left out")
        log.info("wrote forecast.tif")
    lines = capsys.readouterr().err.splitlines()
    marker = "WARNING: " if verbose else "warning: "
    assert lines[0] == f"{marker}3 of 9 measurement points lie outside the cube's grid and are left out"
    assert lines[1].endswith("wrote forecast.tif") and not lines[1].lower().startswith("warning")


def test_a_command_leaves_no_log_handler_on_a_stream_closed_after_it(tmp_path, monkeypatch):
    """main() under a captured stderr that is closed afterwards (pytest's capsys, a
    notebook's redirect): the library logging later must not hit the closed stream
    ("--- Logging error ---"); the logger is as it was before the command."""
    import io
    import logging
    import sys

    from insar_raster.cli import main

    log = logging.getLogger("insar_raster")
    before = log.handlers[:], log.level, log.propagate
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    assert main(["synth", "-o", str(tmp_path / "p.csv"), "--points", "50", "--shape", "8x8", "--epochs", "6"]) == 0
    assert "wrote" in captured.getvalue()  # the command did log there
    captured.close()
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    log.warning("logged by the library after the command")
    assert "Logging error" not in later.getvalue()
    assert (log.handlers[:], log.level, log.propagate) == before


def test_bar_safe_handler_writes_to_stderr_as_it_is_at_each_line(monkeypatch):
    import io
    import logging
    import sys

    from insar_raster.progress import BarSafeHandler

    handler = BarSafeHandler()
    first, second = io.StringIO(), io.StringIO()
    record = logging.LogRecord("insar_raster", logging.INFO, __file__, 1, "a line", None, None)
    monkeypatch.setattr(sys, "stderr", first)
    handler.emit(record)
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    handler.emit(record)
    assert second.getvalue() == "a line\n"
    given = io.StringIO()
    BarSafeHandler(given).emit(record)  # an explicit stream is kept
    assert given.getvalue() == "a line\n"
