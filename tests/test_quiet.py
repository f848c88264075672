"""-q prints nothing at all on success, for every command; no arguments prints the usage."""
import pytest

from insar_raster.cli import COMMANDS, main

FAST = ["--epochs", "1", "--window", "6", "--steps", "2", "--batch-size", "8", "--patch-size", "16",
        "--samples-per-epoch", "16"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("quiet")


# In order: each command uses the previous ones' outputs.
RUNS = [
    ("synth", ["synth", "-o", "{d}/p.csv", "--points", "800", "--shape", "20x20", "--epochs", "30"]),
    ("grid", ["grid", "{d}/p.csv", "-o", "{d}/c.nc"]),
    ("train", ["train", "{d}/c.nc", "-o", "{d}/m.ipt", *FAST]),
    ("forecast", ["forecast", "{d}/c.nc", "--model", "{d}/m.ipt", "-o", "{d}/f.tif"]),
    ("export", ["export", "{d}/c.nc", "--layer", "velocity", "-o", "{d}/v.tif"]),
    ("evaluate", ["evaluate", "{d}/c.nc", "--truth", "{d}/p_truth.nc", "--models", "persistence,trend", "--window",
                  "6", "--steps", "2", "--permutation-repeats", "0", "-o", "{d}/report"]),
    ("info", ["info", "{d}/c.nc", "{d}/f.tif", "{d}/m.ipt", "{d}/p.csv"]),
]


def test_every_command_is_covered():
    assert sorted(name for name, _ in RUNS) == sorted(COMMANDS)


@pytest.mark.parametrize("name, argv", RUNS, ids=[name for name, _ in RUNS])
def test_quiet_prints_nothing_on_success(workdir, capsys, name, argv):
    assert main([a.format(d=workdir) for a in argv] + ["-q"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_no_arguments_prints_usage_and_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: insar-raster")
    assert all(command in out for command in COMMANDS)
