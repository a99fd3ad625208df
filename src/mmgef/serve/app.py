"""``mmgef serve``: a FastAPI app over one finished run (loaded once, in the lifespan).

Endpoints (JSON, raw ids as strings): ``/health``, ``/users/{id}/recommendations``,
``/items/{id}/similar``, ``POST /items`` (a new item placed from its content, see ``catalog``),
``POST /interactions`` (stored durably for the next training), ``/metrics`` (Prometheus text) and
``/`` (a web page). The app holds its own metrics registry, so two apps in one process never share
counters.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmgef.serve.catalog import BadFeatures, Catalog, Conflict, UnknownId
from mmgef.serve.store import Store

PAGE = Path(__file__).with_name("page.html")
K = Query(20, ge=1, le=1000, description="how many items")
SYNC_EVERY_S = 1.0


class NewItem(BaseModel):
    item: str = Field(min_length=1, description="the new item's raw id")
    features: dict[str, list[float]] = Field(default_factory=dict,
                                             description="one vector per modality the run uses, e.g. {'audio': [...]}")
    text: str | None = Field(None, min_length=1, description="the item's text, encoded on the server for the run's text "
                                                             "modalities by the local encoder their manifest names")
    title: str | None = None


class NewInteraction(BaseModel):
    user: str = Field(min_length=1)
    item: str = Field(min_length=1)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mmgef_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram("mmgef_request_seconds", "request latency", ["route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.items_added = Counter("mmgef_items_added", "items added through POST /items", registry=self.registry)
        self.interactions = Counter("mmgef_interactions", "interactions stored", registry=self.registry)


class Measured:
    """ASGI middleware counting requests and timing them per route (a plain ASGI wrapper: Starlette's
    ``BaseHTTPMiddleware`` costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, status = time.perf_counter(), [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(path, str(status[0])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - t0)


def described(item: str, c: Catalog) -> dict[str, Any]:
    """An item as the API shows it: its id, and its title and image address when the data has them."""
    out: dict[str, Any] = {"item": item}
    if item in c.titles:
        out["title"] = c.titles[item]
    if item in c.images:
        out["image"] = f"/items/{quote(item, safe='')}/image"
    return out


def ranked(pairs: list[tuple[str, float]], c: Catalog) -> list[dict[str, Any]]:
    return [{**described(i, c), "score": s} for i, s in pairs]


def create_app(run_dir: str | Path | None = None, db: str | Path | None = None, catalog: Catalog | None = None,
               faiss_above: int = 50_000) -> FastAPI:
    """The service for ``run_dir`` (or an already built ``catalog``); added items and interactions live in
    ``db`` (default ``RUN_DIR/service.sqlite``) and added items are placed again on every start."""
    if catalog is None and run_dir is None:
        raise ValueError("create_app needs run_dir or catalog")
    metrics = Metrics()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cat = catalog or Catalog.load(run_dir, faiss_above)  # type: ignore[arg-type]
        store = Store(db or Path(run_dir or cat.p.cfg.data.name) / "service.sqlite")
        store.bind(cat.p.cfg.data.location or cat.p.cfg.data.name)
        state.update(catalog=cat, store=store, applied=0)
        sync()
        yield
        state.clear()

    def sync_due() -> bool:
        """Whether the store holds items this catalogue lacks: asked at most every ``SYNC_EVERY_S`` seconds, so
        an item another worker (or an earlier run of the service) added shows up here within that time."""
        now = time.monotonic()
        if now - state.get("synced_at", -SYNC_EVERY_S) < SYNC_EVERY_S:
            return False
        state["synced_at"] = now
        return bool(state["store"].item_count() > state["applied"])

    def sync() -> None:
        """Place every stored item this catalogue lacks (workers add in interleaved order)."""
        store, c = state["store"], state["catalog"]
        with c.lock:
            stored = store.items()
            c.add_items([(i, c.check_features(f), t) for i, f, t in stored if i not in c.item_index])
            state["applied"] = len(stored)

    app = FastAPI(title="mmgef", description="multimodal recommendations from a trained mmgef run", lifespan=lifespan)
    app.add_middleware(Measured, metrics=metrics)

    async def cat() -> Catalog:
        """The catalogue, for the read endpoints: they run on the event loop (no thread hop per request), and a
        model rebuild for stored items goes to a worker thread while reads go on against the current view."""
        if sync_due():
            await run_in_threadpool(sync)
        return state["catalog"]  # type: ignore[no-any-return]

    def cat_now() -> Catalog:
        if sync_due():
            sync()
        return state["catalog"]  # type: ignore[no-any-return]

    @app.exception_handler(UnknownId)
    async def not_found(_: Request, err: UnknownId) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_: Request, err: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=409)

    @app.exception_handler(BadFeatures)
    async def bad_features(_: Request, err: BadFeatures) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        c = await cat()
        return {"status": "ok", "model": c.name, "items": len(c.item_ids), "users": len(c.user_ids),
                "added_items": len(c.added), "accepts_new_items": c.inductive, "modalities": c.content_widths,
                "text_modalities": sorted(c.text_sources)}

    @app.get("/users")
    async def users(q: str = "", limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        """User ids containing ``q`` (for the page's picker)."""
        return {"users": [u for u in (await cat()).user_ids if q in u][:limit]}

    @app.get("/items")
    async def items(q: str = "", limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        """Item ids (and titles) containing ``q`` in either."""
        c = await cat()
        q = q.lower()
        hits = [i for i in c.item_ids if q in i.lower() or q in c.titles.get(i, "").lower()][:limit]
        return {"items": [described(i, c) for i in hits]}

    @app.get("/users/{user_id}/recommendations")
    async def recommendations(user_id: str, k: int = K, exclude_seen: bool = True, explain: bool = False) -> dict[str, Any]:
        c = await cat()
        out: dict[str, Any] = {"user": user_id, "items": ranked(c.recommend(user_id, k, exclude_seen), c)}
        if explain:  # the history items closest to each recommendation (why it is there)
            history = c.seen_items(user_id)
            out["history"] = [described(i, c) for i in history]
            for rec in out["items"]:
                rec["because"] = ranked(c.closest_in(rec["item"], history, 3), c)
        return out

    @app.get("/items/{item_id}/similar")
    async def similar(item_id: str, k: int = K) -> dict[str, Any]:
        c = await cat()
        out: dict[str, Any] = {"item": item_id, "items": ranked(c.similar(item_id, k), c)}
        graph = c.graph_neighbours(item_id, k)
        if graph is not None:
            out["graph_neighbours"] = ranked(graph, c)
        return out

    @app.get("/items/{item_id}/image", response_model=None)
    async def image(item_id: str) -> FileResponse | RedirectResponse:
        """The item's picture: the file ``items.csv`` names (its ``image`` column), or a redirect to its URL."""
        c = await cat()
        c.item_row(item_id)
        where = c.images.get(item_id)
        if where is None:
            raise UnknownId(f"item '{item_id}' has no image (items.csv has no 'image' cell for it)")
        if where.startswith(("http://", "https://")):
            return RedirectResponse(where)
        if not Path(where).is_file():
            raise UnknownId(f"item '{item_id}': image file {where} is missing (fix the 'image' cell in items.csv)")
        return FileResponse(where)

    @app.post("/items", status_code=201)
    def add_item(body: NewItem) -> dict[str, Any]:
        c = cat_now()
        c.check_new([body.item])  # before the store write: a refused item is never stored
        given = dict(body.features)
        if body.text is not None:  # vectors sent beside the text win
            given = {**{m: x.tolist() for m, x in c.encode_text(body.text).items()}, **given}
        features = c.check_features(given)
        with c.lock:
            try:  # on disk first: another worker may have taken the id since this one last synced
                state["store"].add_items([(body.item, given, body.title)])
            except sqlite3.IntegrityError:
                raise Conflict(f"item '{body.item}' already exists") from None
            c.add_items([(body.item, features, body.title)])
            state["applied"] += 1
        metrics.items_added.inc()
        return {"item": body.item, "items": len(c.item_ids), "similar": ranked(c.similar(body.item, 5), c)}

    @app.post("/interactions", status_code=202)
    def add_interaction(body: NewInteraction) -> dict[str, Any]:
        cat_now().item_row(body.item)  # the item must exist (404); a new user is welcome: stored for the next training
        row = state["store"].add_interaction(body.user, body.item)
        metrics.interactions.inc()
        return {"stored": row}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory`` worker processes: the run and store paths come in the environment."""
    import os

    return create_app(os.environ["MMGEF_RUN_DIR"], os.environ.get("MMGEF_DB") or None,
                      faiss_above=int(os.environ.get("MMGEF_FAISS_ABOVE", "50000")))
