"""Benchmark server launcher: a seeded callbridge on SQLite and the simulated switch.

Started by ``bench/run.py`` (not meant to be run by hand, though it can be)::

    python bench/_server.py --port 8765 --data-dir /tmp/x --info /tmp/x/info.json --cpu 0

It pins itself to ``--cpu``, builds the container (SQLite in ``--data-dir``, WAL, the simulated
switch answering at once), seeds one tenant with an all-powerful admin token and some extensions,
writes the ids and token to ``--info`` (JSON), then serves the native API with uvicorn on uvloop
and httptools until it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import uvicorn
import uvloop

from callbridge.api.native.app import create_app
from callbridge.bootstrap import Container, build
from callbridge.domain.tenancy import Level, Permission
from callbridge.runtime import tune_gc
from callbridge.service.auth import system_actor
from callbridge.settings import Settings

TENANT = "tenant-bench"
EXTENSIONS = 50


async def seed(c: Container) -> dict[str, Any]:
    """Like tests/support.seed: a telco, a role with every permission, a tenant, an admin token
    and ``EXTENSIONS`` extensions (numbers 101...)."""
    d = c.directory
    system = system_actor()
    await d.create_telco("Telco", telco_id="telco-1")
    everything = await d.create_role("Everything", list(Permission), role_id="role-all")
    tenant = await d.create_tenant(system, "bench", telco_id="telco-1", tenant_id=TENANT)
    admin = await d.create_principal(
        "bench-admin",
        Level.TENANT,
        "telco-1",
        [everything.id],
        tenant_id=tenant.id,
        principal_id="bench-admin",
    )
    _, secret = await d.issue_token(admin.id)
    extensions = []
    for i in range(EXTENSIONS):
        number = str(101 + i)
        ext = await d.create_extension(
            system, tenant.id, {"number": number, "firstname": f"Agent{number}"}
        )
        extensions.append(ext.id)
    return {"tenant": tenant.id, "token": secret, "extensions": extensions}


def write_info(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.rename(path)  # atomic: the parent sees all of it or nothing


async def serve(args: argparse.Namespace) -> None:
    settings = Settings(
        storage="sqlite",
        data_dir=Path(args.data_dir),
        sim_answer_after=0.0,
        log_level="warning",
    )
    container = build(settings)
    await container.start()
    try:
        info = await seed(container)
        info["pid"] = os.getpid()
        info["port"] = args.port
        info["db"] = settings.storage_url()
        info["subscriber_queue"] = settings.subscriber_queue
        app = create_app(container, manage_lifecycle=False)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=args.port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=4096,
            ws_per_message_deflate=False,  # as `callbridge serve` runs it
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        parent = os.getppid()

        async def orphan_watch() -> None:  # never outlive the benchmark that started us
            while not server.should_exit:
                if os.getppid() != parent:
                    server.should_exit = True
                await asyncio.sleep(1.0)

        watcher = asyncio.create_task(orphan_watch())
        while not server.started:
            if task.done():
                await task  # raises what made it fail
                return
            await asyncio.sleep(0.01)
        tune_gc()  # as `callbridge serve` does once it is up
        write_info(Path(args.info), info)
        await task
        watcher.cancel()
    finally:
        await container.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--info", required=True, help="where to write tenant/token/ids (JSON)")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: do not pin)")
    args = parser.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    logging.basicConfig(level=logging.WARNING)
    uvloop.run(serve(args))


if __name__ == "__main__":
    main()
