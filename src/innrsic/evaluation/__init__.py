"""Evaluation grids: codec specs x (decoded, controls, enhancers x temperatures) over a dataset,
cached and resumable, with per-image rows, summaries with confidence intervals, Bjøntegaard deltas,
plots and an offline HTML report."""

from innrsic.evaluation.controls import ControlSettings
from innrsic.evaluation.page import ReportResult, build_report
from innrsic.evaluation.runner import EvaluationResult, EvaluationSettings, run_evaluation
from innrsic.metrics.stats import MeanCI, mean_ci

__all__ = [
    "ControlSettings",
    "EvaluationResult",
    "EvaluationSettings",
    "MeanCI",
    "ReportResult",
    "build_report",
    "mean_ci",
    "run_evaluation",
]
