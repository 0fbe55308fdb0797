"""Pipelines: YAML specs, the runner, releases, reports and evaluation."""
