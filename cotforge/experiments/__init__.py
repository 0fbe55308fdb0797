"""Experiments that test what the method claims: segment credit (AW-DPO vs DPO) and parameter sweeps."""
