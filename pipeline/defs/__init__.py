"""Dagster definitions, loaded by `pipeline/definitions.py` with `dg.load_from_defs_folder`.

Thin wrappers only: every asset and check calls plain functions in `pipeline.run` and
`pipeline.db`; nothing here holds pipeline logic.
"""
