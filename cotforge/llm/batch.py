"""Batch mode: the provider's Batch API (OpenAI Files + Batches endpoints) behind the engine's backend interface.

The engine hands over every request at once (``takes_all``). Requests that arrive together are written as a
batch input file (``{custom_id, method, url, body}`` per line, split at the request-count and file-size
limits), uploaded, submitted and polled; each output line goes back to the request whose ``custom_id`` it
names, and from there through the engine's parsing, cache and append-only outputs as in online mode.

``batches.jsonl`` in the run folder records every input file and batch before and after it is created, so a
restarted run polls the batches it already paid for. Items a batch did not run (expired, cancelled, or absent
from its output) are submitted again; items that failed go back to the engine as errors, whose retry policy
decides. The ``custom_id`` is the request's cache key: a line can only ever be attached to that request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import openai

from cotforge.errors import CotforgeError
from cotforge.llm.cache import request_key
from cotforge.llm.chat import ChatRequest, ChatResponse
from cotforge.llm.config import LLMConfig
from cotforge.llm.request_body import chat_request_body, response_of

STATE_FILE = "batches.jsonl"
ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class BatchFailed(CotforgeError):
    """The provider refused a whole batch (e.g. its input file did not validate)."""


def custom_id_of(model: str, request: ChatRequest) -> str:
    """The request's cache key: what makes it this request and no other."""
    schema = request.json_schema if request.regex is None else {"regex": request.regex}
    return request_key(model, request.messages, request.sampling.model_dump(mode="json"), schema)


def split_lines(lines: list[str], max_requests: int, max_bytes: int) -> list[list[str]]:
    """Consecutive chunks of ``lines`` within both limits (a single line over the byte limit is an error)."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for line in lines:
        n = len(line.encode("utf-8")) + 1
        if n > max_bytes:
            raise CotforgeError(
                f"batch mode: one request is {n} bytes, over batch.max_file_bytes ({max_bytes})"
            )
        if current and (len(current) >= max_requests or size + n > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(line)
        size += n
    if current:
        chunks.append(current)
    return chunks


def _status_error(status: int, message: str) -> openai.APIStatusError:
    # The engine classifies per-item errors by HTTP status, exactly as it does online.
    response = httpx2.Response(status, request=httpx2.Request("POST", ENDPOINT))
    return openai.APIStatusError(message, response=response, body=None)


class BatchBackend:
    """See the module docstring."""

    name = "batch"
    takes_all = True

    def __init__(self, config: LLMConfig, state_dir: Path | None) -> None:
        if state_dir is None:
            raise CotforgeError("batch mode needs a run folder to keep its batch ids in")
        from openai import AsyncOpenAI

        self.config = config
        self.model = config.model
        self.state_path = state_dir / STATE_FILE
        self._client = AsyncOpenAI(
            base_url=config.base_urls[0], api_key=config.api_key(), max_retries=config.max_retries
        )
        self._known: list[dict[str, Any]] = self._load_state()
        self._waiting: dict[str, list[asyncio.Future[ChatResponse]]] = {}
        self._requests: dict[str, ChatRequest] = {}
        self._assigned: dict[str, str] = {}
        self._consumed: set[tuple[str, str]] = set()
        self._results: dict[str, dict[str, dict[str, Any]]] = {}
        self._batches: dict[str, Any] = {}
        self._arrived = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self.problems: list[str] = []
        self.submitted: list[str] = []

    # --- state ----------------------------------------------------------------------------------------------

    def _load_state(self) -> list[dict[str, Any]]:
        if not self.state_path.is_file():
            return []
        rows = []
        for line in self.state_path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill: its batch is found again by its input file
        merged: dict[str, dict[str, Any]] = {}
        for row in rows:
            merged.setdefault(row["input_file_id"], {}).update(row)
        return [r for r in merged.values() if r.get("model") == self.model]

    def _record(self, row: dict[str, Any]) -> None:
        with self.state_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def _say(self, message: str) -> None:
        self.problems.append(message)
        print(f"cotforge batch: {message}", file=sys.stderr)

    # --- the backend interface ------------------------------------------------------------------------------

    async def check_fits(self, request: ChatRequest) -> None:
        """A batch provider judges each request's length itself (an over-long one comes back as an error)."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        cid = custom_id_of(self.model, request)
        future: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(cid, []).append(future)
        self._requests[cid] = request
        self._arrived.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    async def aclose(self) -> None:
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await self._client.close()

    # --- the loop -------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self._waiting:
                await self._settle()
                await self._assign()
                await self._poll()
                if self._waiting and all(cid in self._assigned for cid in self._waiting):
                    self._arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), self.config.batch.poll_interval_s)
        except Exception as exc:
            for futures in self._waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            self._waiting.clear()
            self._assigned.clear()  # a later call starts over from the recorded batches

    async def _settle(self) -> None:
        """Wait until no request has arrived for ``settle_s``, so one batch carries them all."""
        while True:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), self.config.batch.settle_s)
            except TimeoutError:
                return

    async def _batch(self, batch_id: str, refresh: bool = True) -> Any:
        if refresh or batch_id not in self._batches:
            self._batches[batch_id] = await self._client.batches.retrieve(batch_id)
        return self._batches[batch_id]

    async def _adopt(self, row: dict[str, Any]) -> None:
        """A batch created by a run killed before it wrote the id down: find it by its input file."""
        async for batch in self._client.batches.list(limit=100):
            if batch.input_file_id == row["input_file_id"]:
                row["batch_id"] = batch.id
                self._record(row)
                return

    async def _assign(self) -> None:
        unassigned = [cid for cid in self._waiting if cid not in self._assigned]
        for row in reversed(self._known):
            if not unassigned:
                break
            ids = set(row["custom_ids"]) & set(unassigned)
            if not ids:
                continue
            if "batch_id" not in row:
                await self._adopt(row)
            batch_id = row.get("batch_id")
            if batch_id is None:
                continue
            batch = await self._batch(batch_id, refresh=False)
            if batch.status in TERMINAL:
                results = await self._download(batch)
                ids = {cid for cid in ids if "response" in results.get(cid, {})}
            for cid in ids:
                if (cid, batch_id) not in self._consumed:
                    self._assigned[cid] = batch_id
            unassigned = [cid for cid in unassigned if cid not in self._assigned]
        if unassigned:
            await self._submit(unassigned)

    async def _submit(self, cids: list[str]) -> None:
        lines = [
            json.dumps(
                {
                    "custom_id": cid,
                    "method": "POST",
                    "url": ENDPOINT,
                    "body": chat_request_body(self.model, self._requests[cid], self.config.extra_body),
                },
                ensure_ascii=False,
            )
            for cid in cids
        ]
        limits = self.config.batch
        for chunk in split_lines(lines, limits.max_requests, limits.max_file_bytes):
            ids = [json.loads(line)["custom_id"] for line in chunk]
            data = ("\n".join(chunk) + "\n").encode("utf-8")
            uploaded = await self._client.files.create(file=("batch.jsonl", data), purpose="batch")
            row: dict[str, Any] = {"input_file_id": uploaded.id, "model": self.model, "custom_ids": ids}
            self._record(row)  # before the batch exists: a kill now leaves a file to adopt, not a lost batch
            batch = await self._client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window=limits.completion_window,  # type: ignore[arg-type]
            )
            row["batch_id"] = batch.id
            row["created_at"] = time.time()
            self._record(
                {"input_file_id": uploaded.id, "batch_id": batch.id, "created_at": row["created_at"]}
            )
            self._known.append(row)
            self._batches[batch.id] = batch
            self.submitted.append(batch.id)
            for cid in ids:
                self._assigned[cid] = batch.id

    async def _poll(self) -> None:
        for batch_id in sorted(set(self._assigned.values())):
            batch = await self._batch(batch_id)
            if batch.status not in TERMINAL:
                continue
            if batch.status == "failed":
                errors = "; ".join(
                    f"{e.code}: {e.message}" for e in (batch.errors.data if batch.errors else []) or []
                )
                raise BatchFailed(f"batch {batch_id} failed: {errors or 'no reason given'}")
            self._deliver(batch_id, await self._download(batch))

    async def _download(self, batch: Any) -> dict[str, dict[str, Any]]:
        """``custom_id`` → output or error line, from the batch's output and error files (read once)."""
        if batch.id in self._results:
            return self._results[batch.id]
        expected = next((set(r["custom_ids"]) for r in self._known if r.get("batch_id") == batch.id), set())
        found: dict[str, dict[str, Any]] = {}
        for kind, file_id in (("error", batch.error_file_id), ("response", batch.output_file_id)):
            if not file_id:
                continue
            text = (await self._client.files.content(file_id)).text
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                where = f"batch {batch.id} {kind} file {file_id} line {number}"
                try:
                    item = json.loads(line)
                    cid = item["custom_id"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    self._say(
                        f"{where}: not a batch result line ({line[:80]!r}); ignored, its request is asked again"
                    )
                    continue
                if cid not in expected:
                    self._say(f"{where}: custom_id {cid!r} matches no request of this batch; ignored")
                    continue
                if kind == "response" and (item.get("response") or {}).get("status_code") == 200:
                    found[cid] = {"response": item["response"]}
                else:
                    found.setdefault(cid, {"error": item})
        self._results[batch.id] = found
        return found

    def _deliver(self, batch_id: str, results: dict[str, dict[str, Any]]) -> None:
        for cid in [c for c, b in self._assigned.items() if b == batch_id]:
            del self._assigned[cid]
            self._consumed.add((cid, batch_id))
            result = results.get(cid)
            if result is None or _not_run(result):
                continue  # expired, cancelled or missing: left waiting, so the next round submits it again
            futures = self._waiting.pop(cid, [])
            request = self._requests.pop(cid)
            for future in futures:
                if future.done():
                    continue
                try:
                    future.set_result(self._response(request, batch_id, result))
                except Exception as exc:
                    future.set_exception(exc)

    def _response(self, request: ChatRequest, batch_id: str, result: dict[str, Any]) -> ChatResponse:
        if "error" in result:
            item = result["error"]
            response = item.get("response") or {}
            error = item.get("error") or (response.get("body") or {}).get("error") or {}
            status = int(response.get("status_code") or 500)
            raise _status_error(status, f"batch {batch_id}: {error.get('code')}: {error.get('message')}")
        return response_of(request, result["response"].get("body"), f"batch:{batch_id}")


def _not_run(result: dict[str, Any]) -> bool:
    """An error line that says the item never ran (the batch expired or was cancelled first)."""
    if "error" not in result:
        return False
    error = result["error"].get("error") or {}
    return error.get("code") in ("batch_expired", "batch_cancelled")
