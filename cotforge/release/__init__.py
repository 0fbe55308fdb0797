"""Releases: Parquet tables, the dataset card, provenance and the Hub push."""
