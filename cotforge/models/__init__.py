"""Models cotforge builds or resolves: the tiny random test model and the embedded default (SmolLM2)."""
