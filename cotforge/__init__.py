"""cotforge: build chain-of-thought safety datasets and train on them (Alignment-Weighted DPO)."""

__version__ = "0.1.0"
