"""evaluate_cube, the report folder and the CLI, end to end on small synthetic cubes."""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from insar_raster.cli import main
from insar_raster.evaluate import evaluate_cube, format_table, resample_cube, write_report
from insar_raster.evaluate.baselines import Persistence
from insar_raster.evaluate.importance import permutation_importance
from insar_raster.gis.write import write_cube
from insar_raster.io.cube import grid_transform
from insar_raster.synth import make_scene_cube

BASELINES = ["persistence", "trend", "trend_seasonal", "history_fit", "lasso", "lightgbm"]
FAST_DEEP = {
    "samples_per_epoch": 16,
    "batch_size": 8,
    "val_patches": 8,
    "paper_input_size": 32,
    "patch_size": 32,
    "hidden": 8,
    "features": 8,
    "paper_lstm_hidden": 16,
}


@pytest.fixture(scope="module")
def scene():
    return make_scene_cube((32, 32), 60, 12, "bowl", 3)


@pytest.fixture(scope="module")
def baseline_results(scene):
    observed, truth = scene
    return evaluate_cube(
        observed, BASELINES, window=8, steps=3, truth=truth, seed=0, max_rows=4000, permutation_repeats=2
    )


def test_persistence_rmse_matches_an_independent_computation_on_the_reported_dates(scene, baseline_results):
    observed, truth = scene
    res = baseline_results
    cube_dates = np.asarray(observed["time"].values, "datetime64[D]")
    sq_obs, sq_truth, n = 0.0, 0.0, 0
    for dates in res["test_dates"]:
        target_idx = [int(np.flatnonzero(cube_dates == np.datetime64(d))[0]) for d in dates]
        last_input = observed["displacement"].isel(time=target_idx[0] - 1).values.astype(np.float64)
        for t in target_idx:
            obs = observed["displacement"].isel(time=t).values.astype(np.float64)
            tru = truth["displacement"].isel(time=t).values.astype(np.float64)
            ok = np.isfinite(obs) & np.isfinite(last_input)
            sq_obs += np.sum((last_input[ok] - obs[ok]) ** 2)
            sq_truth += np.sum((last_input[ok] - tru[ok]) ** 2)
            n += ok.sum()
    pers = res["models"]["persistence"]
    assert pers["observed"]["overall"]["rmse"] == pytest.approx(np.sqrt(sq_obs / n), rel=1e-6)
    assert pers["truth"]["overall"]["rmse"] == pytest.approx(np.sqrt(sq_truth / n), rel=1e-6)
    assert res["evaluation_cells"]["observed"] == n
    assert pers["observed"]["overall"]["skill"] == pytest.approx(0.0)


def test_results_layout_split_and_dates(scene, baseline_results):
    observed, _ = scene
    res = baseline_results
    split = res["split"]
    assert split["train_samples"] > 0 and split["val_samples"] > 0 and split["test_samples"] > 0
    assert len(res["test_dates"]) == split["test_samples"]
    assert all(len(d) == 3 for d in res["test_dates"])
    last = str(np.asarray(observed["time"].values[-1], "datetime64[D]"))
    assert res["test_dates"][-1][-1] == last  # the last test target is the cube's last epoch
    for name in BASELINES:
        per_step = res["models"][name]["observed"]["per_step"]
        assert len(per_step) == 3
        assert all(np.isfinite([s["rmse"], s["mae"], s["r2"], s["skill"]]).all() for s in per_step)
    # lag importance: LASSO coefficients / LightGBM gain per step and lag, permutation per lag
    assert np.shape(res["importance"]["lasso"]["abs_coefficient"]) == (3, 8)
    assert np.shape(res["importance"]["lightgbm"]["gain"]) == (3, 8)
    assert len(res["importance"]["permutation"]["lasso"]["delta_rmse_mm"]) == 8
    assert res["ranking"][0] in BASELINES


def test_permutation_test_puts_persistence_entirely_on_the_last_epoch(scene):
    observed, _ = scene
    starts = np.array([40, 41, 42])
    out = permutation_importance(Persistence(8, 3), observed, starts, 8, 3, repeats=2)
    delta = np.asarray(out["delta_rmse_mm"])
    assert np.all(delta[:-1] == 0) and delta[-1] > 0
    assert out["share"][-1] == pytest.approx(1.0)
    assert out["donor_offsets"] == [11, 22]


def test_report_files_exist_parse_and_refuse_overwrite(tmp_path, baseline_results):
    folder = tmp_path / "report"
    write_report(baseline_results, folder)
    metrics = json.loads((folder / "metrics.json").read_text())  # strict JSON (no NaN)
    assert metrics["window"] == 8 and metrics["steps"] == 3
    assert metrics["test_dates"] == baseline_results["test_dates"]
    assert set(metrics["seeds"]) == set(BASELINES)
    for name in BASELINES:
        for step in metrics["models"][name]["observed"]["per_step"]:
            assert {"rmse", "mae", "r2", "skill"} <= set(step)
    assert "_arrays" not in metrics
    text = (folder / "report.md").read_text()
    assert "| model | RMSE (mm)" in text and all(f"| {n} |" in text for n in BASELINES)
    assert baseline_results["test_dates"][0][0] in text
    for png in ("maps.png", "errors.png", "rmse_per_step.png", "lag_importance.png"):
        image = mpimg.imread(folder / png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    with pytest.raises(Exception, match="already exists"):
        write_report(baseline_results, folder)
    write_report(baseline_results, folder, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temp folders left


def test_deep_models_share_the_split_and_are_scored(scene):
    observed, truth = scene
    res = evaluate_cube(
        observed,
        ["convlstm", "paper", "cnn"],
        window=8,
        steps=2,
        truth=truth,
        epochs=1,
        device="cpu",
        train_options=FAST_DEEP,
        permutation_repeats=1,
        permutation_models=("convlstm",),
    )
    assert set(res["models"]) == {"persistence", "convlstm", "paper", "cnn"}
    for name in ("convlstm", "paper", "cnn"):
        info = res["models"][name]
        assert info["kind"] == "deep" and info["details"]["epochs_trained"] == 1
        assert info["details"]["network_best_val_rmse_mm"] > 0
        assert np.isfinite(info["observed"]["overall"]["rmse"]) and np.isfinite(info["truth"]["overall"]["rmse"])
        assert res["_arrays"]["predictions"][name].shape == res["_arrays"]["observed"].shape
    assert len(res["importance"]["permutation"]["convlstm"]["delta_rmse_mm"]) == 8
    table = format_table(res)
    assert table.count("\n") == 1 + 4


def test_truth_on_another_grid_is_interpolated_onto_the_cube(scene):
    from insar_raster.evaluate import align_truth

    observed, truth = scene
    inner = observed.isel(x=slice(2, 30), y=slice(1, 31))  # a cube gridded with other bounds
    with pytest.warns(UserWarning, match="interpolated"):
        aligned = align_truth(inner, truth)
    expected = truth["displacement"].values[:, 1:31, 2:30]
    ok = np.isfinite(aligned)
    np.testing.assert_allclose(aligned[ok], expected[ok], atol=1e-4)
    # bilinear weights touch masked neighbours only along the water's edge
    assert ok.sum() > 0.85 * np.isfinite(expected).sum()


def test_resample_cube_keeps_extent_and_crs(scene):
    observed, _ = scene
    small = resample_cube(observed, 16)
    assert small["displacement"].shape == (60, 16, 16)
    assert small.rio.crs == observed.rio.crs
    assert grid_transform(small).a == pytest.approx(200.0)
    assert float(small.x.min()) - 100 == pytest.approx(float(observed.x.min()) - 50)


def test_cli_writes_report_and_prints_table(tmp_path, capsys, scene):
    observed, truth = scene
    cube_path, truth_path = tmp_path / "scene.nc", tmp_path / "truth.nc"
    write_cube(observed, cube_path)
    write_cube(truth, truth_path)
    out = tmp_path / "rep"
    argv = [
        "evaluate",
        str(cube_path),
        "--truth",
        str(truth_path),
        "-o",
        str(out),
        "--models",
        "persistence,trend,lasso",
        "--window",
        "8",
        "--steps",
        "2",
        "--max-rows",
        "2000",
        "-q",
    ]
    assert main(argv[:-1]) == 0  # without -q: the table on stdout
    printed = capsys.readouterr().out
    assert "| persistence |" in printed and "| lasso |" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["has_truth"] and metrics["steps"] == 2
    # refuse an existing folder: one line, exit 2
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # -q: not even the table
    err = captured.err
    assert "already exists" in err and err.count("\n") == 1
    assert main(argv + ["--overwrite"]) == 0


def test_cli_bad_inputs_exit_2(tmp_path, capsys, scene):
    observed, _ = scene
    cube_path = tmp_path / "scene.nc"
    write_cube(observed, cube_path)
    assert main(["evaluate", str(cube_path), "--models", "arima", "-o", str(tmp_path / "r")]) == 2
    assert "unknown model" in capsys.readouterr().err
    other = make_scene_cube((32, 32), 40, 12, "bowl", 3)[1]  # fewer dates
    write_cube(other, tmp_path / "other.nc")
    assert (
        main(
            [
                "evaluate",
                str(cube_path),
                "--truth",
                str(tmp_path / "other.nc"),
                "--models",
                "persistence",
                "-o",
                str(tmp_path / "r2"),
                "--window",
                "8",
                "--steps",
                "2",
            ]
        )
        == 2
    )
    assert "not in the truth cube" in capsys.readouterr().err
    assert main(["evaluate", str(cube_path), "--window", "70", "-o", str(tmp_path / "r3"), "--models", "trend"]) == 2
    assert "cannot split" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "r3").exists()


def test_cli_scores_a_saved_model_instead_of_training(tmp_path, capsys, scene):
    from insar_raster import TrainConfig, train_model
    from insar_raster.forecast.windows import chronological_split

    observed, _ = scene
    cube_path = tmp_path / "scene.nc"
    write_cube(observed, cube_path)
    split = chronological_split(60, 8, 2)
    model = train_model(
        observed,
        TrainConfig(
            arch="cnn",
            window=8,
            steps=2,
            epochs=1,
            device="cpu",
            **{k: v for k, v in FAST_DEEP.items() if not k.startswith("paper")},
        ),
        split=split,
        progress=False,
    )
    model.save(tmp_path / "cnn.ipt")
    out = tmp_path / "rep"
    assert (
        main(
            [
                "evaluate",
                str(cube_path),
                "--model",
                str(tmp_path / "cnn.ipt"),
                "--models",
                "persistence",
                "--window",
                "8",
                "--steps",
                "2",
                "--permutation-repeats",
                "0",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["models"]["cnn"]["details"]["pretrained"] is True
    # a model for another horizon is refused before any work
    assert (
        main(
            [
                "evaluate",
                str(cube_path),
                "--model",
                str(tmp_path / "cnn.ipt"),
                "--window",
                "8",
                "--steps",
                "3",
                "-o",
                str(tmp_path / "rep2"),
                "-q",
            ]
        )
        == 2
    )
    assert "--steps 2" in capsys.readouterr().err


def test_report_says_when_the_prior_read_a_shorter_past_than_history_fit():
    from insar_raster.evaluate.report import _history_lengths

    hf = {"details": {"history_epochs": 150}}
    shorter = _history_lengths({"details": {"config": {"prior_history": 72}}}, hf)
    assert "last 72 epochs" in shorter and "up to 150" in shorter
    assert _history_lengths({"details": {"config": {"prior_history": 150}}}, hf) == ""
    assert _history_lengths({"details": {"config": {"prior_history": None}}}, hf) == ""
