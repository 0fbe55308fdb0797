"""Curation: the ledger of every prompt's fate, judge calibration, near-duplicates and contamination."""
