"""The bot's own state, kept away from the systems it diagnoses.

A SQLite file by default, PostgreSQL when ``OPS_DATABASE_URL`` names one; the schema is created
and migrated when the store opens::

    store = await open_store(settings.ops_store_url(), run_prefix=settings.ops_run_prefix)
"""

from __future__ import annotations

from agape_ops.store.sql import SqlStore, open_store

__all__ = ["SqlStore", "open_store"]
