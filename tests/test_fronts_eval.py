"""evaluate on a scene with fronts: front-cell scores, interval coverage, new models."""

from __future__ import annotations

import numpy as np

from insar_raster.evaluate import evaluate_cube
from insar_raster.evaluate.fronts import front_cells
from insar_raster.evaluate.report import markdown
from insar_raster.forecast.windows import chronological_split
from insar_raster.synth import make_scene_cube


def test_front_cells_are_reached_during_the_horizon_only():
    cube, truth = make_scene_cube((32, 32), 80, scene="fronts", seed=0)
    split = chronological_split(80, 8, 4)
    mask = front_cells(truth, cube, split)
    assert mask.shape == (len(split.test), 4, 32, 32) and mask.any()
    days = (cube["time"].values - cube["time"].values[0]) / np.timedelta64(1, "D")
    reach = truth["front_reach_days"].values
    i = int(np.argmax(mask[:, 0].sum(axis=(1, 2))))
    last, end = days[split.test[i] + 7], days[split.test[i] + 11]
    assert np.all(reach[mask[i, 0]] > last) and np.all(reach[mask[i, 0]] <= end)
    # Those cells had not moved by the forecast time and move by >= 2 mm by its end.
    t = truth["displacement"].values
    front_free = t[split.test[i] + 7][mask[i, 0]] - t[0][mask[i, 0]]
    assert np.isfinite(front_free).all()
    assert front_cells(None, cube, split) is None
    assert front_cells(truth.drop_vars("front_reach_days"), cube, split) is None


def test_evaluate_scores_front_cells_intervals_and_the_new_models():
    cube, truth = make_scene_cube((24, 24), 70, scene="realistic", seed=1)
    res = evaluate_cube(
        cube,
        ["persistence", "history_fit", "dlinear", "convlstm"],
        window=8,
        steps=3,
        truth=truth,
        epochs=1,
        permutation_repeats=0,
        train_options={"samples_per_epoch": 16, "val_patches": 8},
        device="cpu",
        keep_arrays=False,
        interval=80,
    )
    models = res["models"]
    if "truth_front_cells" in models["persistence"]:
        assert all("truth_front_cells" in m for m in models.values())
    cover = models["convlstm"]["interval"]
    assert len(cover["coverage_percent"]) == 3 and all(0 <= c <= 100 for c in cover["coverage_percent"])
    assert all(w > 0 for w in cover["mean_width_mm"])
    assert "interval" not in models["dlinear"]  # baselines carry no calibration
    assert models["dlinear"]["details"]["parameters"] > 0
    text = markdown(res)
    assert "Forecast intervals (80 %" in text


def test_front_cells_split_by_whether_the_panel_had_started():
    """Started-panel and new-panel front cells partition the front cells; a new panel's
    cells had no front motion at all before the forecast (nothing in the past tells)."""
    cube, truth = make_scene_cube((32, 32), 80, scene="fronts", seed=0)
    split = chronological_split(80, 8, 4)
    every = front_cells(truth, cube, split)
    started = front_cells(truth, cube, split, panels="started")
    new = front_cells(truth, cube, split, panels="new")
    assert started.any() and np.array_equal(started | new, every) and not (started & new).any()
    days = (cube["time"].values - cube["time"].values[0]) / np.timedelta64(1, "D")
    start = truth["front_reach_start_days"].values
    for i, s in enumerate(split.test):
        last = days[s + 7]
        assert np.all(start[started[i, 0]] <= last) and np.all(start[new[i, 0]] > last)
    assert front_cells(truth.drop_vars("front_reach_start_days"), cube, split, panels="new") is None
