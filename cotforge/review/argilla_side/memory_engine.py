"""An in-memory search engine for a single-node local Argilla 2.8 review server.

Runs INSIDE the argilla-server venv (it imports ``argilla_server``); cotforge itself never imports it.
Elasticsearch/OpenSearch cannot run where cotforge serves its local review server, so this engine plugs into
Argilla's own extension point (``SearchEngine.register``) and is selected with ``ARGILLA_SEARCH_ENGINE=memory``.
The index lives in the server process (one uvicorn worker) and is rebuilt from the database at start by
``launch.py``. It is a substitute for a local review server, not for a production deployment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from argilla_server.enums import MetadataPropertyType, ResponseStatusFilter, SimilarityOrder, SortOrder
from argilla_server.search_engine import (
    AndFilter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)

# The sibling module: launch.py runs from this folder, so it is on sys.path.
from memory_documents import (
    Doc,
    as_list,
    cosine,
    in_range,
    matches_terms,
    plain,
    record_doc,
    response_doc,
    seeded_score,
    text_score,
)


@SearchEngine.register(engine_name="memory")
class MemorySearchEngine(SearchEngine):
    """Argilla's search-engine interface over Python dicts, one index per dataset."""

    _instance: MemorySearchEngine | None = None

    def __init__(self) -> None:
        self.indices: dict[UUID, dict[UUID, Doc]] = {}
        self.dataset_of: dict[UUID, UUID] = {}

    @classmethod
    async def new_instance(cls) -> MemorySearchEngine:
        # Argilla asks for an engine per request; the index must be one per process.
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    async def close(self) -> None:
        """Nothing to release: Argilla closes the engine after every request, the index must survive."""

    async def ping(self) -> bool:
        return True

    async def info(self) -> dict:
        return {"engine": "memory", "datasets": len(self.indices), "records": len(self.dataset_of)}

    # ---- index lifecycle -------------------------------------------------------------------------------
    async def create_index(self, dataset: Any) -> None:
        await self.delete_index(dataset)
        self.indices[dataset.id] = {}

    async def delete_index(self, dataset: Any) -> None:
        for record_id in self.indices.pop(dataset.id, {}):
            self.dataset_of.pop(record_id, None)

    async def configure_metadata_property(self, dataset: Any, metadata_property: Any) -> None:
        """Schemaless: metadata values are stored as given."""

    async def configure_index_vectors(self, vector_settings: Any) -> None:
        """Schemaless: vectors are stored as given."""

    # ---- documents -------------------------------------------------------------------------------------
    def _doc(self, record_id: UUID) -> Doc | None:
        dataset_id = self.dataset_of.get(record_id)
        return None if dataset_id is None else self.indices.get(dataset_id, {}).get(record_id)

    async def index_records(self, dataset: Any, records: Iterable[Any]) -> None:
        index = self.indices.setdefault(dataset.id, {})
        for record in records:
            index[record.id] = record_doc(record)
            self.dataset_of[record.id] = dataset.id

    async def partial_record_update(self, record: Any, **update: Any) -> None:
        doc = self._doc(record.id)
        if doc is not None:
            doc.update({key: plain(value) for key, value in update.items()})

    async def delete_records(self, dataset: Any, records: Iterable[Any]) -> None:
        index = self.indices.get(dataset.id, {})
        for record in records:
            index.pop(record.id, None)
            self.dataset_of.pop(record.id, None)

    async def update_record_response(self, response: Any) -> None:
        doc = self._doc(response.record_id)
        if doc is not None:
            kept = [r for r in doc["responses"] if r["id"] != response.id]
            doc["responses"] = [*kept, response_doc(response)]

    async def delete_record_response(self, response: Any) -> None:
        doc = self._doc(response.record_id)
        if doc is not None:
            doc["responses"] = [r for r in doc["responses"] if r["id"] != response.id]

    async def update_record_suggestion(self, suggestion: Any) -> None:
        doc = self._doc(suggestion.record_id)
        if doc is not None:
            doc["suggestions"][suggestion.question.name] = {
                "type": plain(suggestion.type),
                "agent": suggestion.agent,
                "score": suggestion.score,
                "value": suggestion.value,
            }

    async def delete_record_suggestion(self, suggestion: Any) -> None:
        doc = self._doc(suggestion.record_id)
        if doc is not None:
            doc["suggestions"].pop(suggestion.question.name, None)

    # ---- progress and metrics --------------------------------------------------------------------------
    async def get_dataset_progress(self, dataset: Any) -> dict:
        if dataset.is_draft:
            return {}
        docs = self.indices.get(dataset.id, {}).values()
        statuses = Counter(d["status"] for d in docs if d.get("status") is not None)
        return {"total": sum(statuses.values()), **statuses}

    async def get_dataset_user_progress(self, dataset: Any, user: Any) -> dict:
        if dataset.is_draft:
            return {}
        user_id = str(user.id)
        statuses = Counter(
            r["status"]
            for d in self.indices.get(dataset.id, {}).values()
            for r in d["responses"]
            if r["user_id"] == user_id
        )
        return {"total": sum(statuses.values()), **statuses}

    async def compute_metrics_for(self, metadata_property: Any) -> Any:
        docs = self.indices.get(metadata_property.dataset_id, {}).values()
        values = [v for d in docs for v in as_list(d["metadata"].get(metadata_property.name))]
        if metadata_property.type == MetadataPropertyType.terms:
            counts = Counter(str(v) for v in values)
            return TermsMetrics(
                total=len(values),
                values=[TermsMetrics.TermCount(term=t, count=c) for t, c in counts.most_common()],
            )
        numbers = [v for v in values if isinstance(v, int | float)]
        metrics = (
            IntegerMetadataMetrics
            if metadata_property.type == MetadataPropertyType.integer
            else FloatMetadataMetrics
        )
        return metrics(min=min(numbers, default=None), max=max(numbers, default=None))

    # ---- search ----------------------------------------------------------------------------------------
    def _scoped_values(self, doc: Doc, scope: Any) -> list[Any]:
        if isinstance(scope, MetadataFilterScope):
            return as_list(doc["metadata"].get(scope.metadata_property))
        if isinstance(scope, SuggestionFilterScope):
            return as_list(doc["suggestions"].get(scope.question, {}).get(scope.property))
        if isinstance(scope, RecordFilterScope):
            return as_list(doc.get(scope.property))
        raise ValueError(f"cannot read values for scope {scope}")

    def _user_responses(self, doc: Doc, scope: Any) -> list[Doc]:
        user_id = None if scope.user is None else str(scope.user.id)
        return [r for r in doc["responses"] if user_id is None or r["user_id"] == user_id]

    def _matches(self, doc: Doc, flt: Any) -> bool:
        if isinstance(flt, AndFilter):
            return all(self._matches(doc, f) for f in flt.filters)
        scope = flt.scope
        if isinstance(scope, ResponseFilterScope):
            responses = self._user_responses(doc, scope)
            if scope.question:
                values = [v for r in responses for v in as_list(r.get(scope.question))]
            elif scope.property == "status" and isinstance(flt, TermsFilter):
                wanted = {str(plain(v)) for v in flt.values}
                # "pending" means: no response at all by this user (by anyone, without a user).
                if ResponseStatusFilter.pending.value in wanted and not responses:
                    return True
                values = [r["status"] for r in responses]
            else:
                raise ValueError(f"cannot process response filter {flt}")
        else:
            values = self._scoped_values(doc, scope)
        if isinstance(flt, TermsFilter):
            return matches_terms(values, flt.values)
        if isinstance(flt, RangeFilter):
            return in_range(values, flt.ge, flt.le)
        raise ValueError(f"cannot process filter {flt}")

    def _sort_value(self, doc: Doc, scope: Any) -> Any:
        if isinstance(scope, ResponseFilterScope):
            key = scope.question or scope.property
            numbers = [
                v
                for r in self._user_responses(doc, scope)
                for v in as_list(r.get(key))
                if isinstance(v, int | float)
            ]
            return sum(numbers) / len(numbers) if numbers else None
        values = self._scoped_values(doc, scope)
        return values[0] if values else None

    def _sorted(self, scored: list[tuple[Doc, float]], sort: list[Any] | None) -> list[tuple[Doc, float]]:
        # Stable sorts applied last-key-first give a lexicographic order; missing values sort last (as in ES).
        ordered = sorted(scored, key=lambda item: item[0]["inserted_at"])
        if not sort:
            return sorted(ordered, key=lambda item: -item[1])
        for order in reversed(sort):
            present = [i for i in ordered if self._sort_value(i[0], order.scope) is not None]
            missing = [i for i in ordered if self._sort_value(i[0], order.scope) is None]
            present.sort(
                key=lambda i: self._sort_value(i[0], order.scope), reverse=order.order == SortOrder.desc
            )
            ordered = present + missing
        return ordered

    def _candidates(self, dataset: Any, query: Any, flt: Any, user_id: Any = None) -> list[tuple[Doc, float]]:
        text = TextQuery(q=query) if isinstance(query, str) else query
        out = []
        for doc in self.indices.get(dataset.id, {}).values():
            if flt is not None and not self._matches(doc, flt):
                continue
            score = 1.0 if text is None else text_score(doc, text)
            if score <= 0:
                continue
            out.append((doc, seeded_score(user_id, doc["id"]) if user_id is not None else score))
        return out

    async def search(
        self,
        dataset: Any,
        query: Any = None,
        filter: Any = None,
        sort: list[Any] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Any = None,
    ) -> Any:
        ordered = self._sorted(self._candidates(dataset, query, filter, user_id), sort)
        page = ordered[offset : offset + limit]
        return SearchResponses(
            items=[SearchResponseItem(record_id=doc["id"], score=score) for doc, score in page],
            total=len(ordered),
        )

    async def similarity_search(
        self,
        dataset: Any,
        vector_settings: Any,
        value: list[float] | None = None,
        record: Any = None,
        query: Any = None,
        filter: Any = None,
        max_results: int = 100,
        order: Any = SimilarityOrder.most_similar,
        threshold: float | None = None,
    ) -> Any:
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        target = value or record.vector_value_by_vector_settings(vector_settings)
        if not target:
            raise ValueError("Cannot find a vector value to apply with provided info")
        key = str(vector_settings.id)
        sign = -1.0 if order == SimilarityOrder.least_similar else 1.0
        hits = []
        for doc, _ in self._candidates(dataset, query, filter):
            vector = doc["vectors"].get(key)
            if vector is None or (record is not None and doc["id"] == record.id):
                continue
            score = (1.0 + sign * cosine(target, vector)) / 2.0  # ES' cosine score, in [0, 1]
            if threshold is None or score >= threshold:
                hits.append((doc, score))
        hits.sort(key=lambda item: -item[1])
        hits = hits[:max_results]
        return SearchResponses(
            items=[SearchResponseItem(record_id=doc["id"], score=score) for doc, score in hits],
            total=len(hits),
        )
