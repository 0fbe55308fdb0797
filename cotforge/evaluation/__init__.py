"""Evaluation: the prompt set, running models on it, judging and metrics."""
