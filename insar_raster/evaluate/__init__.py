"""Evaluation: baselines and deep models on identical windows, scores, importance, report.

>>> from insar_raster.evaluate import evaluate_cube, write_report
>>> results = evaluate_cube(cube, ["persistence", "lasso"], window=8, steps=3, truth=truth, max_rows=2000)
>>> sorted(results["models"]) == ["lasso", "persistence"]
True
>>> write_report(results, tmp / "report")                     # doctest: +ELLIPSIS
PosixPath('.../report')

Modules
-------
config       ``EvaluateConfig``: window, steps, split fractions... (defaults from ``TrainConfig``)
registry     every model by name: kind, description, how to make the unfitted estimator
baselines    persistence, per-pixel trend and history fits, LASSO, LightGBM
compare      ``evaluate_cube``: every model on one chronological split, one common mask
truth        ``align_truth``: a synthetic scene's noise-free cube on the cube's cells
metrics      RMSE, MAE, R², skill, per step
importance   lag importance (intrinsic shares, permutation test)
resolution   ``evaluate_resolutions``: the study repeated across grid sizes
report       ``write_report``: metrics.json, report.md, figures
"""

from insar_raster.evaluate.compare import evaluate_cube
from insar_raster.evaluate.config import EvaluateConfig
from insar_raster.evaluate.registry import ALL_MODELS, DEEP_MODELS, DEFAULT_MODELS, MODELS, make_model, parse_models
from insar_raster.evaluate.report import format_table, write_report
from insar_raster.evaluate.resolution import evaluate_resolutions, resample_cube
from insar_raster.evaluate.truth import align_truth

__all__ = [
    "evaluate_cube",
    "evaluate_resolutions",
    "write_report",
    "format_table",
    "parse_models",
    "resample_cube",
    "align_truth",
    "make_model",
    "EvaluateConfig",
    "MODELS",
    "ALL_MODELS",
    "DEFAULT_MODELS",
    "DEEP_MODELS",
]
