"""A model trained at one revisit forecasting a cube at another (issue 13 leftovers, session 15).

One synthetic scene on a 6-day record (320 epochs, 32x32 cells), and the same record
every 2nd and 4th epoch: 12- and 24-day cubes of the same dates. A model is trained on
each (8 epochs, same seed); every cube's last 15 % of dates is then forecast by its own
model and by the 12-day one, RMSE against the noise-free truth per step, beside
persistence. The gap between the two rows of a cube is what a model file at the wrong
revisit costs; ``Forecaster.forecast`` warns on it.

    PYTHONPATH=. .venv/bin/python benchmarks/cadence_transfer.py mixed 0 8   # scene seed epochs
"""

import sys
import time

import numpy as np
import torch

from insar_raster import TrainConfig, train_model
from insar_raster.synth import make_scene_cube

torch.set_num_threads(1)

scene = sys.argv[1] if len(sys.argv) > 1 else "mixed"
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 8
obs6, truth6 = make_scene_cube((32, 32), 320, interval_days=6, scene=scene, seed=seed)
stride = {6: 1, 12: 2, 24: 4}
cubes = {c: (obs6.isel(time=slice(None, None, s)), truth6.isel(time=slice(None, None, s))) for c, s in stride.items()}
cfg = TrainConfig(epochs=epochs, device="cpu", seed=0, patch_size=32, samples_per_epoch=64, val_patches=32)
# Test part: the last 15 % of the 6-day record's span (same dates in every cube).
t_all = obs6["time"].values
test_start_date = t_all[int(len(t_all) * 0.85)]
models = {}
for c in (6, 12, 24):
    t0 = time.time()
    models[c] = train_model(cubes[c][0], cfg, progress=False)
    md = models[c].metadata_
    print(
        f"trained at {c} d ({time.time() - t0:.0f} s) step_days {models[c].normalisation_.step_days} "
        f"network_kept={md.get('network_kept')} prior_filter={(md.get('prior_filter') or {}).get('kept')} "
        f"lag_prior={(md.get('lag_prior') or {}).get('kept')}",
        flush=True,
    )


def score(model, c):
    obs, tru = cubes[c]
    times = obs["time"].values
    n = len(times)
    W, H = model.window, model.steps
    first = int(np.searchsorted(times, test_start_date)) - W  # inputs may precede; targets in test
    starts = np.arange(max(first, 0), n - W - H + 1)
    pred = model.predict_windows(obs, starts)
    tv = tru["displacement"].values
    ov = obs["displacement"].values
    tgt = np.stack([tv[s + W : s + W + H] for s in starts])
    last = np.stack([ov[s + W - 1] for s in starts])[:, None]
    e = np.sqrt(np.nanmean((pred - tgt) ** 2, axis=(0, 2, 3)))
    p = np.sqrt(np.nanmean((last - tgt) ** 2, axis=(0, 2, 3)))
    return e, p, len(starts)


print(f"scene {scene} seed {seed} epochs {epochs}: RMSE vs truth (mm) per step; rows: forecast cube cadence")
for c in (6, 12, 24):
    e_nat, p, ns = score(models[c], c)
    e_12, _, _ = score(models[12], c)
    print(
        f"cube {c:2d} d ({ns} windows): native-trained {np.round(e_nat, 2)} mean {e_nat.mean():.2f} | "
        f"12 d-trained {np.round(e_12, 2)} mean {e_12.mean():.2f} | persistence mean {p.mean():.2f}",
        flush=True,
    )
