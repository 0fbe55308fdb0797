"""A local server with the Files and Batches endpoints of the OpenAI API, executing batches on a real vLLM server.

Run: ``python tests/llm/batch_server.py --port P --upstream http://127.0.0.1:Q/v1``. Each batch line's body is
sent to the upstream ``/chat/completions``; results go to an output file, failures to an error file, as the
OpenAI Batch API does. ``POST /admin/config`` sets what the next batches do, for tests:

- ``hold``: batches stay ``in_progress`` until ``POST /admin/release``;
- ``expire_after``: the next batch runs this many items, then expires (the rest get ``batch_expired``);
- ``fail_every``: in the next batch, every n-th item fails with a 500;
- ``bad_lines``: the next batch's output file gains a malformed line and a line with an unknown custom_id.

``GET /admin/record`` lists every upload and batch (what the client paid for).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import PlainTextResponse


def make_app(upstream: str) -> FastAPI:
    app = FastAPI()
    files: dict[str, dict[str, Any]] = {}
    batches: dict[str, dict[str, Any]] = {}
    config: dict[str, Any] = {}
    released = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    def store(content: bytes, purpose: str, name: str) -> dict[str, Any]:
        meta = {
            "id": f"file-{uuid.uuid4().hex[:12]}",
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
        }
        files[meta["id"]] = {"meta": meta, "content": content}
        return meta

    @app.post("/v1/files")
    async def upload(file: UploadFile = File(...), purpose: str = Form(...)) -> dict[str, Any]:
        return store(await file.read(), purpose, file.filename or "upload.jsonl")

    @app.get("/v1/files/{file_id}")
    async def file_meta(file_id: str) -> dict[str, Any]:
        if file_id not in files:
            raise HTTPException(404, "no such file")
        return dict(files[file_id]["meta"])

    @app.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str) -> PlainTextResponse:
        if file_id not in files:
            raise HTTPException(404, "no such file")
        return PlainTextResponse(files[file_id]["content"].decode("utf-8"))

    async def execute(batch: dict[str, Any], plan: dict[str, Any]) -> None:
        lines = files[batch["input_file_id"]]["content"].decode("utf-8").splitlines()
        if plan.get("hold"):
            await released.wait()
        batch["status"] = "in_progress"
        outputs: list[str] = []
        errors: list[str] = []
        expire_after = plan.get("expire_after")
        fail_every = plan.get("fail_every")
        async with httpx.AsyncClient(base_url=upstream, timeout=300) as client:
            for index, line in enumerate(lines):
                item = json.loads(line)
                cid = item["custom_id"]
                if expire_after is not None and index >= expire_after:
                    error = {
                        "code": "batch_expired",
                        "message": "This request could not be executed before the completion window expired.",
                    }
                    errors.append(
                        json.dumps({"id": f"req-{index}", "custom_id": cid, "response": None, "error": error})
                    )
                    continue
                if fail_every and index % fail_every == 0:
                    body = {"error": {"code": "server_error", "message": "injected failure"}}
                    response = {"status_code": 500, "request_id": f"req-{index}", "body": body}
                    errors.append(
                        json.dumps(
                            {"id": f"req-{index}", "custom_id": cid, "response": response, "error": None}
                        )
                    )
                    continue
                reply = await client.post("/chat/completions", json=item["body"])
                response = {
                    "status_code": reply.status_code,
                    "request_id": f"req-{index}",
                    "body": reply.json(),
                }
                record = json.dumps(
                    {"id": f"req-{index}", "custom_id": cid, "response": response, "error": None}
                )
                (outputs if reply.status_code == 200 else errors).append(record)
        if plan.get("bad_lines"):
            outputs += [
                "{not json",
                json.dumps(
                    {
                        "id": "x",
                        "custom_id": "nobody",
                        "response": {"status_code": 200, "body": {}},
                        "error": None,
                    }
                ),
            ]
        done = len(outputs) - (2 if plan.get("bad_lines") else 0)
        batch["request_counts"] = {"total": len(lines), "completed": done, "failed": len(errors)}
        if outputs:
            batch["output_file_id"] = store(
                ("\n".join(outputs) + "\n").encode(), "batch_output", "out.jsonl"
            )["id"]
        if errors:
            batch["error_file_id"] = store(("\n".join(errors) + "\n").encode(), "batch_output", "err.jsonl")[
                "id"
            ]
        batch["status"] = "expired" if expire_after is not None else "completed"
        batch["completed_at"] = int(time.time())

    @app.post("/v1/batches")
    async def create(payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("input_file_id") not in files:
            raise HTTPException(400, "unknown input_file_id")
        batch = {
            "id": f"batch_{uuid.uuid4().hex[:12]}",
            "object": "batch",
            "endpoint": payload["endpoint"],
            "input_file_id": payload["input_file_id"],
            "completion_window": payload.get("completion_window", "24h"),
            "status": "validating",
            "created_at": int(time.time()),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": payload.get("metadata"),
        }
        batches[batch["id"]] = batch
        plan = dict(config)
        # One-shot faults apply to this batch only; hold stays until changed.
        for key in ("expire_after", "fail_every", "bad_lines"):
            config.pop(key, None)
        task = asyncio.create_task(execute(batch, plan))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return batch

    @app.get("/v1/batches/{batch_id}")
    async def retrieve(batch_id: str) -> dict[str, Any]:
        if batch_id not in batches:
            raise HTTPException(404, "no such batch")
        return batches[batch_id]

    @app.get("/v1/batches")
    async def listing(limit: int = 20) -> dict[str, Any]:
        data = sorted(batches.values(), key=lambda b: b["created_at"], reverse=True)[:limit]
        return {"object": "list", "data": data, "has_more": False}

    @app.post("/admin/config")
    async def set_config(payload: dict[str, Any]) -> dict[str, Any]:
        config.clear()
        config.update(payload)
        if not payload.get("hold"):
            released.set()
        else:
            released.clear()
        return config

    @app.post("/admin/release")
    async def release() -> dict[str, bool]:
        released.set()
        return {"released": True}

    @app.get("/admin/record")
    async def record() -> dict[str, Any]:
        uploads = [f["meta"] for f in files.values() if f["meta"]["purpose"] == "batch"]
        return {"uploads": uploads, "batches": list(batches.values())}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    released.set()
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.upstream), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
