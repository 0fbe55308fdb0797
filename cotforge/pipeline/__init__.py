"""Pipelines: YAML specs, the runner, the stage registry and the vLLM servers a run starts on demand."""
