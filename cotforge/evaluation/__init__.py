"""Evaluation: the prompt set, running models on it, judging and metrics."""

from cotforge.dataframes import eval_results_frame as results_frame

__all__ = ["results_frame"]
