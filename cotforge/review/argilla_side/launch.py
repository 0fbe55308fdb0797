"""Start argilla-server 2.8 in one process with the in-memory search engine (runs in the server venv only).

Run as a script by ``cotforge.review.server`` with the server venv's Python: ``python launch.py --port N``.
Before serving it migrates the database, and inside the app's start-up it makes sure the owner user exists
with the API key given in ``COTFORGE_ARGILLA_OWNER_API_KEY`` (never on the command line, never printed) and
rebuilds the search index from the database with Argilla's own ``Reindexer``. The rq job that recomputes
record statuses after a distribution change runs in-process: an rq worker in another process could not see
the in-memory index.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

# Must precede every argilla_server import: its settings read the environment once.
os.environ["ARGILLA_SEARCH_ENGINE"] = "memory"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import memory_engine  # the sibling module: this script's folder is sys.path[0]

_LOG = logging.getLogger("cotforge.review.server")
_background: set[asyncio.Task[Any]] = set()


def migrate() -> None:
    """Bring the database schema to Argilla's head revision (what ``argilla_server database migrate`` does)."""
    from alembic import command
    from alembic.config import Config
    from argilla_server.database import ALEMBIC_CONFIG_FILE

    command.upgrade(Config(ALEMBIC_CONFIG_FILE), "head")


async def ensure_owner(username: str, api_key: str, password: str) -> None:
    """Create the owner user, or give an existing one the configured API key."""
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole

    async with AsyncSessionLocal() as db:
        user = await accounts.get_user_by_username(db, username)
        if user is None:
            await User.create(
                db,
                first_name=username,
                username=username,
                role=UserRole.owner,
                password_hash=accounts.hash_password(password),
                api_key=api_key,
            )
        elif user.api_key != api_key or user.role != UserRole.owner:
            await user.update(db, api_key=api_key, role=UserRole.owner)


async def rebuild_index() -> tuple[int, int]:
    """Index every dataset and record from the database; returns (datasets, records)."""
    from argilla_server.cli.search_engine.reindex import Reindexer
    from argilla_server.database import AsyncSessionLocal

    engine = await memory_engine.MemorySearchEngine.new_instance()
    datasets = records = 0
    async with AsyncSessionLocal() as db:
        async for dataset in Reindexer.reindex_datasets(db, engine):
            datasets += 1
            async for batch in Reindexer.reindex_dataset_records(db, engine, dataset):
                records += len(batch)
    return datasets, records


def run_status_job_in_process() -> None:
    """Make ``update_dataset_records_status_job.delay`` run the job on the server's event loop."""
    from argilla_server.jobs import dataset_jobs

    job = dataset_jobs.update_dataset_records_status_job

    def delay(dataset_id: Any, *args: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(job(dataset_id))
        _background.add(task)  # keep a reference until done, or the task may be collected mid-run
        task.add_done_callback(_background.discard)
        return task

    job.delay = delay


def build_app(owner: str, api_key: str, password: str) -> Any:
    from argilla_server._app import app

    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with original(application) as state:
            await ensure_owner(owner, api_key, password)
            datasets, records = await rebuild_index()
            _LOG.warning("memory search index rebuilt: %d datasets, %d records", datasets, records)
            yield state

    app.router.lifespan_context = lifespan
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--owner", default="owner")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    api_key = os.environ.pop("COTFORGE_ARGILLA_OWNER_API_KEY", "")
    password = os.environ.pop("COTFORGE_ARGILLA_OWNER_PASSWORD", "") or api_key
    if len(api_key) < 8:
        print("COTFORGE_ARGILLA_OWNER_API_KEY must hold the owner's API key (8+ characters)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    migrate()
    run_status_job_in_process()
    app = build_app(args.owner, api_key, password)

    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
