"""Pipelines: YAML specs, stage declarations and their registry, the runner and the servers it starts."""
