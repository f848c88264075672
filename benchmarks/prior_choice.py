"""How well each rule for choosing the history prior's length and acceleration penalty
carries to the test epochs (issue 12; session 17).

The default model's prior is the per-pixel history fit over one of
:data:`~insar_raster.forecast.data.PRIOR_HISTORIES` past epochs with one of
:data:`~insar_raster.forecast.data.ACCELERATION_RIDGES`; training picks the pair whose
prior alone forecasts the validation epochs best (a shorter history must win by
``PRIOR_HISTORY_MARGIN``, 5 %). This script scores the prior alone, for every
candidate, from every sample origin (window 12, 6 steps, ``evaluate``'s split), and
compares what each rule would pick:

- ``val``: the library's rule (validation origins, 5 % margin); ``val/0``: no margin;
- ``roll72``: rolling origins, every training or validation origin at most 72 epochs
  before the first validation one (5 % margin); ``roll72/0``: no margin;
- ``ew12``: every origin, weighted by recency (half-life 12 epochs), no margin.

Each pick's test MSE is divided by the best candidate's (against the truth on grid
scenes, every second cell; against the gridded observations on MP scenes, where there
is no gridded truth), and the script prints the RMSE ratio per scene and seed, then the
geometric mean and the worst ratio per rule.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/prior_choice.py \\
        --kind grid --scenes fronts,realistic,switching,urban,seasonal --seeds 0-3
    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/prior_choice.py \\
        --kind mp --scenes realistic,urban,switching,fronts --seeds 4-9

Findings (benchmarks/README.md, "Choosing the prior's history"): on the 200 m grid
scenes validation picks within 1.5 % of the best candidate on average and rolling
origins do worse; every rule misses by 1.2-2.3x on some MP scene; a recency-weighted
choice, built, made the whole default worse on `urban` (seeds 1 and 3), so the
library's rule is unchanged.

Grid scenes are 128 x 128 x 144 at 200 m (``make_scene_cube``, as ``eval_fronts.py`` and
``lag_prior_local.py``); MP scenes are 5000 MPs gridded onto 48 x 48 cells, 120 epochs
(as ``points_scenes.py``). About 4-15 s per scene and seed on one core.
"""

from __future__ import annotations

import argparse
import itertools
import math
import warnings

import numpy as np

from insar_raster.forecast.data import ACCELERATION_RIDGES, PRIOR_HISTORIES, history_eval, history_fit
from insar_raster.forecast.train import PRIOR_HISTORY_MARGIN
from insar_raster.forecast.windows import chronological_split
from insar_raster.grid.gridding import grid_points
from insar_raster.io.cube import CUBE_VARIABLE
from insar_raster.synth import make_scene, make_scene_cube

WINDOW, STEPS = 12, 6
RULES = ("val", "val/0", "roll72", "roll72/0", "ew12")


def scene_arrays(kind: str, scene: str, seed: int, resolution: float):
    """(observed, reference for the test score, days) of one scene; every second cell on grid scenes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "mp":
            cube = grid_points(make_scene(5000, (48, 48), 120, scene=scene, seed=seed)[0]).compute()
            observed = cube[CUBE_VARIABLE].values
            reference = observed
        else:
            cube, truth = make_scene_cube((128, 128), 144, WINDOW, scene, seed, resolution=resolution)
            observed = cube[CUBE_VARIABLE].values[:, ::2, ::2]
            reference = truth[CUBE_VARIABLE].values[:, ::2, ::2]
    stamps = cube.time.values.astype("datetime64[D]").astype(np.int64)
    return observed, reference, (stamps - stamps[0]).astype(np.float64)


def origin_errors(observed, reference, days, split, candidates):
    """Mean square error of each candidate prior from each origin: ``{(start, candidate): (obs, ref)}``."""
    errors = {}
    for start in np.concatenate([split.train, split.val, split.test]):
        last = start + WINDOW - 1
        target = slice(last + 1, last + 1 + STEPS)
        for history, ridge in candidates:
            first = max(0, last + 1 - history)
            coef = history_fit(observed[first : last + 1], days[first : last + 1], days[last], ridge)
            forecast = history_eval(coef, days[target], days[last])
            errors[start, (history, ridge)] = (
                float(np.nanmean((forecast - observed[target]) ** 2)),
                float(np.nanmean((forecast - reference[target]) ** 2)),
            )
    return errors


def pick(candidates, score, margin):
    """The library's tie and margin rule: a shorter history must beat the longest one's best by ``margin``."""
    best = min(candidates, key=score.get)
    longest = min((c for c in candidates if c[0] == candidates[0][0]), key=score.get)
    return best if score[best] <= (1.0 - margin) * score[longest] else longest


def rule_scores(split, candidates, errors):
    def mean_over(starts, weights=None):
        weights = np.ones(len(starts)) if weights is None else weights
        return {c: float(np.sum(weights * [errors[s, c][0] for s in starts]) / np.sum(weights)) for c in candidates}

    before_test = np.union1d(split.train, split.val)
    rolling = before_test[before_test >= split.val[0] - 72]
    validation, recent = mean_over(split.val), mean_over(rolling)
    weighted = mean_over(before_test, 0.5 ** ((before_test.max() - before_test) / 12.0))
    return {
        "val": pick(candidates, validation, PRIOR_HISTORY_MARGIN),
        "val/0": pick(candidates, validation, 0.0),
        "roll72": pick(candidates, recent, PRIOR_HISTORY_MARGIN),
        "roll72/0": pick(candidates, recent, 0.0),
        "ew12": pick(candidates, weighted, 0.0),
    }


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("grid", "mp"), default="grid")
    parser.add_argument("--scenes", default="fronts,realistic,switching,urban,seasonal")
    parser.add_argument("--seeds", default="0-3", help="e.g. 0-3 or 1,5")
    parser.add_argument(
        "--resolution", type=float, default=200.0, help="grid scenes' cell size (m; issue 12's scene: 200)"
    )
    args = parser.parse_args(argv)
    candidates = list(itertools.product(sorted(set(PRIOR_HISTORIES), reverse=True), ACCELERATION_RIDGES))
    logs = {rule: [] for rule in RULES}
    print("scene, seed | best candidate (test RMSE, mm) | " + " | ".join(RULES) + "  (pick's RMSE / best)")
    for scene, seed in itertools.product(args.scenes.split(","), parse_seeds(args.seeds)):
        observed, reference, days = scene_arrays(args.kind, scene, seed, args.resolution)
        split = chronological_split(observed.shape[0], WINDOW, STEPS)
        errors = origin_errors(observed, reference, days, split, candidates)
        test = {c: float(np.mean([errors[s, c][1] for s in split.test])) for c in candidates}
        best = min(candidates, key=test.get)
        picks = rule_scores(split, candidates, errors)
        ratios = {rule: math.sqrt(test[picks[rule]] / test[best]) for rule in RULES}
        for rule in RULES:
            logs[rule].append(math.log(ratios[rule]))
        print(
            f"{args.kind} {scene} {seed} | {best} {math.sqrt(test[best]):.3f} | "
            + " | ".join(f"{picks[r]} {ratios[r]:.3f}" for r in RULES),
            flush=True,
        )
    print("geometric mean | " + " | ".join(f"{r} {math.exp(np.mean(logs[r])):.3f}" for r in RULES))
    print("worst          | " + " | ".join(f"{r} {math.exp(max(logs[r])):.3f}" for r in RULES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
