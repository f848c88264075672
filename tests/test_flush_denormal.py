"""Network training runs with subnormal floats flushed to zero (x86 CPUs take a slow path
on them), and gives the flag back afterwards."""

import numpy as np
import pytest
import torch

SUBNORMAL = np.float32(1e-40)


def _flushes() -> bool:
    # A subnormal operand reads as zero under denormals-are-zero.
    return float(torch.tensor([SUBNORMAL]) * 1.0) == 0.0


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="CPU without flush-denormal support")
def test_training_flushes_subnormals_and_restores_the_flag(monkeypatch):
    import insar_raster.forecast.train as train
    from insar_raster.forecast.train import TrainConfig, fit_network
    from insar_raster.synth import make_scene_cube

    seen = []

    def run(self):
        seen.append(_flushes())
        raise RuntimeError("stop after the check")

    monkeypatch.setattr(train._Trainer, "run", run)
    cube, _ = make_scene_cube((16, 16), 40, seed=0)
    assert not _flushes()
    with pytest.raises(RuntimeError, match="stop after the check"):
        fit_network(cube, TrainConfig(epochs=1), progress=False)
    assert seen == [True]
    assert not _flushes()
