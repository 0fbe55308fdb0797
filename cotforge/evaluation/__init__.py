"""Evaluation: the prompt set, running models on it, judging and metrics."""

from cotforge.evaluation.summary import results_frame

__all__ = ["results_frame"]
