"""`cotforge report`: one self-contained HTML page (plus PNGs) describing a run with plots."""

from __future__ import annotations

from cotforge.evaluation.summary import EvalCell, EvalSummary, ModelEval, read_eval_summary
from cotforge.report.build import ReportConfig, ReportResult, build_report, report_dir

__all__ = [
    "EvalCell",
    "EvalSummary",
    "ModelEval",
    "ReportConfig",
    "ReportResult",
    "build_report",
    "read_eval_summary",
    "report_dir",
]
