"""Ingest: prompt files (JSONL, CSV, Parquet, `datasets` folders, Hub ids) into the run's ``prompts.jsonl``.

``sources`` reads files into :class:`~cotforge.ingest.raw_rows.RawRow` streams, ``rows`` is the pure core (rows
→ prompt records and rejects), ``dedup`` finds near-duplicate clusters, ``run`` is the stage's edge.
"""
