"""The default model and the per-pixel history fit on one issue-12 scene: RMSE (mm)
against the truth on every test cell and on the cells a front reaches during the
horizon (``evaluate.fronts.front_cells``), the ratio there, the learned prior's form and
the network's best epoch (``evaluate`` split, 128 x 128 cells of 200 m, 144 epochs,
window 12, 6 steps).

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/front_cells_default.py fronts 0
"""

from __future__ import annotations

import sys
import time

import numpy as np

from insar_raster.evaluate.config import EvaluateConfig
from insar_raster.evaluate.fronts import front_cells
from insar_raster.evaluate.registry import make_model
from insar_raster.forecast.windows import chronological_split
from insar_raster.io.cube import CUBE_VARIABLE
from insar_raster.synth import make_scene_cube


def main(argv=None) -> int:
    scene, seed = (argv or sys.argv[1:])[:2]
    seed = int(seed)
    t0 = time.time()
    cube, truth = make_scene_cube((128, 128), 144, 12, scene, seed, resolution=200.0)
    split = chronological_split(cube.sizes["time"], 12, 6)
    exact = truth[CUBE_VARIABLE].values[split.target_indices("test")]
    mask = front_cells(truth, cube, split)
    out = {}
    for name in ("history_fit", "convlstm"):
        model = make_model(name, EvaluateConfig(window=12, steps=6, seed=seed), None, False)
        model.fit(cube, split)
        err = model.predict_windows(cube, split.test) - exact
        ok = np.isfinite(err)
        front = float(np.sqrt(np.mean(err[ok & mask] ** 2))) if mask is not None else float("nan")
        out[name] = (float(np.sqrt(np.mean(err[ok] ** 2))), front)
    meta = model.metadata_
    lag = meta.get("lag_prior") or {}
    print(
        f"{scene} s{seed}: default {out['convlstm'][0]:.3f} front {out['convlstm'][1]:.3f} | history_fit "
        f"{out['history_fit'][0]:.3f} front {out['history_fit'][1]:.3f} | ratio front "
        f"{out['convlstm'][1] / out['history_fit'][1]:.2f} | form {lag.get('form')} kept {lag.get('kept')} best epoch "
        f"{meta.get('best_epoch')} of {model.history_[-1]['epoch']} | {time.time() - t0:.0f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
