"""Training at scale: lazy patch reads from .zarr/.nc cubes, and DDP under torchrun (CPU, gloo)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cli_args import TINY_TRAIN

from insar_raster import TrainConfig, train_model
from insar_raster.forecast import data as forecast_data
from insar_raster.forecast.data import CubeReader, Normalisation
from insar_raster.gis.write import write_cube
from insar_raster.io.cube import open_cube
from insar_raster.synth import make_scene_cube

TINY = dict(
    window=6,
    steps=3,
    epochs=1,
    samples_per_epoch=16,
    batch_size=8,
    patch_size=16,
    val_patches=8,
    hidden=8,
    features=8,
    device="cpu",
    threads=1,
)


@pytest.fixture(scope="module")
def small_cube():
    cube, _ = make_scene_cube(shape=(24, 30), n_epochs=40, scene="mixed", seed=3)
    return cube


@pytest.fixture(scope="module")
def in_memory_model(small_cube):
    return train_model(small_cube, TrainConfig(**TINY), progress=False)


def _same_weights(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k].numpy(), sb[k].numpy()) for k in sa)


@pytest.mark.filterwarnings("ignore:The specified chunks separate the stored chunks")
@pytest.mark.parametrize("suffix, chunks", [(".zarr", None), (".nc", None), (".nc", {"time": 7, "y": 10, "x": 11})])
def test_lazy_training_matches_in_memory(small_cube, in_memory_model, tmp_path, suffix, chunks):
    """Forcing the lazy path (threshold 0) on a cube opened from disk gives the same model, bit for bit."""
    path = tmp_path / f"cube{suffix}"
    write_cube(small_cube, path)
    opened = open_cube(path, chunks=chunks)
    assert CubeReader(opened, in_memory_bytes=0).lazy
    lazy = train_model(opened, TrainConfig(**TINY), progress=False, in_memory_bytes=0)
    # Reading patches never loaded the cube's displacement as a whole...
    assert not opened["displacement"].variable._in_memory
    # ...while the default threshold loads a cube this small (the fast path).
    assert not CubeReader(opened).lazy
    assert lazy.normalisation == in_memory_model.normalisation
    assert lazy.history == in_memory_model.history
    assert _same_weights(lazy, in_memory_model)
    assert lazy.metadata["val_rmse_mm"] == in_memory_model.metadata["val_rmse_mm"]


def test_normalisation_in_row_bands_matches_one_pass(small_cube, monkeypatch):
    """The chunk-wise statistic equals the plain RMS of the training-epoch changes."""
    values = small_cube["displacement"].values[:25].astype(np.float64)
    change = values[3:] - values[:-3]
    expected = np.sqrt(np.nanmean(change**2))
    monkeypatch.setattr(forecast_data, "_STATS_BLOCK_BYTES", 25 * 30 * 8 * 2)  # 2 rows per band
    banded = Normalisation.from_training_epochs(small_cube, 25, 3)
    assert banded.scale_mm == pytest.approx(expected, rel=1e-12)
    assert banded.step_days == 12.0


DDP_SCRIPT = """
import sys
from insar_raster.io.cube import open_cube
from insar_raster import TrainConfig, train_model
from insar_raster.forecast.train import is_main_process

forecaster = train_model(open_cube(sys.argv[1]), TrainConfig(**{tiny!r}), progress=False)
if is_main_process():
    forecaster.save(sys.argv[2])
else:  # only for this test: show that the ranks end with the same weights
    forecaster.save(sys.argv[2] + ".rank1")
"""


def _gloo_available():
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


def _torchrun_two_cpu_ranks(args: list, cwd) -> None:
    """``torchrun --standalone --nproc_per_node=2 <args>`` in ``cwd`` (one thread a rank):
    must succeed; skips the test where torchrun is not installed."""
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode != 0 and "No module named" in proc.stderr and "torch.distributed" in proc.stderr:
        pytest.skip("torchrun is not available")
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.skipif(not _gloo_available(), reason="torch.distributed with gloo is not available")
def test_ddp_two_cpu_ranks_with_torchrun(small_cube, tmp_path):
    """torchrun --nproc_per_node=2 on CPU (gloo): rank 0 writes one model file that loads."""
    import torch

    from insar_raster import load_model
    from insar_raster.models import build_model

    write_cube(small_cube, tmp_path / "cube.nc")
    script = tmp_path / "train_ddp.py"
    # min_improvement=-1 and no significance test keep the epoch-1 weights, so they differ
    # from the initial ones.
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(tiny={**TINY, "min_improvement": -1.0, "significance": 0.0})))
    _torchrun_two_cpu_ranks([str(script), str(tmp_path / "cube.nc"), str(tmp_path / "model.ipt")], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.nc", "model.ipt", "model.ipt.rank1", "train_ddp.py"]
    model = load_model(tmp_path / "model.ipt")
    assert model.metadata["ddp_world_size"] == 2
    assert [h["epoch"] for h in model.history] == [0, 1]
    assert model.history == load_model(tmp_path / "model.ipt.rank1").history
    weights = model.model.state_dict()
    assert all(np.isfinite(t.numpy()).all() for t in weights.values())
    # Gradients were all-reduced: both ranks hold the same trained weights.
    assert _same_weights(model, load_model(tmp_path / "model.ipt.rank1"))
    torch.manual_seed(TINY.get("seed", 0))
    initial = build_model(model.config.arch, **model.hparams).state_dict()
    assert not all(np.array_equal(weights[k].numpy(), initial[k].numpy()) for k in weights)
    forecast = model.predict_windows(small_cube, np.array([30]))
    assert forecast.shape == (1, 3, 24, 30) and np.isfinite(forecast).any()


def test_cli_train_under_torchrun_writes_one_model(small_cube, tmp_path):
    """The documented command: torchrun ... -m insar_raster train; only rank 0 writes."""
    from insar_raster import load_model

    write_cube(small_cube, tmp_path / "cube.nc")
    _torchrun_two_cpu_ranks(["-m", "insar_raster", "train", "cube.nc", "-o", "model.ipt", "-q", *TINY_TRAIN], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.nc", "model.ipt"]
    assert load_model(tmp_path / "model.ipt").metadata["ddp_world_size"] == 2
