"""What capping the ``paper`` model's training epochs in ``evaluate`` costs (issue 12, item 5).

Trains the reference CNN-LSTM once, as ``evaluate`` does (its ``EVALUATE_BUDGET``,
the evaluation's split), for ``--epochs`` epochs and keeps the weights of every epoch
that validation accepted. Training with a cap of N epochs is the first N epochs of that
run (the same seeded draws and learning-rate schedule), so the model a cap of N gives is
the last accepted weights at or before epoch N: each cap is then recalibrated (interval
quantiles on the validation samples) and scored on the test samples against the truth
by ``evaluate_cube`` (``pretrained``), with the wall and CPU time of its training epochs.

    .venv/bin/python benchmarks/paper_budget.py --scene realistic [--n-epochs 144] [--epochs 15]
        [--caps 3,4,5,6,8,10,15] [--options '{"val_patches": 24}']
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _args import add_cache_dir, parse_shape, scene_parser  # noqa: E402


def main(argv=None) -> int:
    parser = scene_parser(__doc__, scene="realistic", shape="128x128", resolution=200.0, n_epochs=144, seed=0)
    parser.add_argument("--epochs", type=int, default=15, help="epochs of the one training run (the largest cap)")
    parser.add_argument("--caps", default="2,3,4,5,6,8,10,12,15")
    parser.add_argument("--options", type=json.loads, default=None, help="extra TrainConfig fields, JSON")
    add_cache_dir(parser)
    args = parser.parse_args(argv)

    from eval_fronts import scene_files

    import insar_raster.forecast.train as train
    from insar_raster.evaluate import evaluate_cube
    from insar_raster.evaluate.config import EvaluateConfig
    from insar_raster.evaluate.registry import make_model
    from insar_raster.forecast.windows import chronological_split
    from insar_raster.io.cube import open_cube

    shape = parse_shape(args.shape)
    cube_path, truth_path = scene_files(args.scene, shape, args.n_epochs, args.resolution, args.seed, args.cache_dir)
    cube, truth = open_cube(cube_path).load(), open_cube(truth_path).load()

    # Record, per network epoch: whether validation accepted it, its weights if so, times.
    record = {"trainer": None, "accepted": {}, "epoch_end": [], "cpu_end": []}
    init = train._Trainer.__init__

    def patched_init(self, *a, **k):
        init(self, *a, **k)
        record["trainer"] = self
        record["initial"] = copy.deepcopy(self.model.state_dict())
        record["t0"], record["c0"] = time.perf_counter(), time.process_time()

    beats = train._beats

    def patched_beats(candidate, incumbent, config):
        keep = beats(candidate, incumbent, config)
        epoch = len(record["epoch_end"]) + 1
        record["epoch_end"].append(time.perf_counter() - record["t0"])
        record["cpu_end"].append(time.process_time() - record["c0"])
        if keep:
            record["accepted"][epoch] = copy.deepcopy(record["trainer"].model.state_dict())
        print(
            f"epoch {epoch}: val {candidate.loss:.5f} kept {keep}, {record['epoch_end'][-1]:.0f} s wall, "
            f"{record['cpu_end'][-1]:.0f} s CPU",
            flush=True,
        )
        return keep

    train._Trainer.__init__, train._beats = patched_init, patched_beats
    options = dict(args.options or {})
    options["epochs"] = args.epochs
    config = EvaluateConfig(seed=args.seed)
    split = chronological_split(
        cube.sizes["time"], config.window, config.steps, config.val_fraction, config.test_fraction
    )
    t0 = time.perf_counter()
    model = make_model("paper", config, options).fit(cube, split)
    print(f"fit (incl. calibration) {time.perf_counter() - t0:.0f} s", flush=True)
    train._Trainer.__init__, train._beats = init, beats

    rows = []
    for cap in sorted(int(c) for c in args.caps.split(",")):
        if cap > len(record["epoch_end"]) and cap != args.epochs:
            continue
        kept = [e for e in record["accepted"] if e <= cap]
        best = max(kept, default=0)
        capped = copy.deepcopy(model)
        capped.model_.load_state_dict(record["accepted"][best] if best else record["initial"])
        capped.calibrate_intervals(cube, split.val)
        res = evaluate_cube(
            cube, ["paper"], truth=truth, seed=args.seed, pretrained={"paper": capped}, keep_arrays=False
        )
        m = res["models"]["paper"]
        n = min(cap, len(record["epoch_end"]))
        row = {
            "cap": cap,
            "best_epoch": best,
            "train_wall_s": round(record["epoch_end"][n - 1]),
            "train_cpu_s": round(record["cpu_end"][n - 1]),
            "rmse_truth": round(m["truth"]["overall"]["rmse"], 3),
            "rmse_observed": round(m["observed"]["overall"]["rmse"], 3),
            "persistence_truth": round(res["models"]["persistence"]["truth"]["overall"]["rmse"], 3),
            "coverage80": [round(c, 1) for c in m["interval"]["coverage_percent"]],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| epoch cap | best epoch | training wall (s) | CPU (s) | RMSE vs truth (mm) | 80 % coverage per step |")
    print("|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['cap']} | {r['best_epoch']} | {r['train_wall_s']} | {r['train_cpu_s']} | {r['rmse_truth']:.2f} | "
            + ", ".join(f"{c:.1f}" for c in r["coverage80"])
            + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
