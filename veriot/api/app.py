"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from veriot import __version__
from veriot.api.problems import Problem, ProblemKind, problem_response
from veriot.api.routes import ai, anchors, devices, health, log, problems, readings
from veriot.bootstrap import Node
from veriot.core.errors import (
    ConflictError,
    DecodeError,
    InputError,
    InsufficientDataError,
    StoreError,
    UnknownDeviceError,
)


def create_app(node: Node, *, manage_node: bool = True) -> VeriotApp:
    """Builds the API around `node`. With `manage_node`, the app starts the node when it
    starts and stops it (final checkpoint, store closed) when it shuts down."""
    workers = node.settings.verify_threads or len(os.sched_getaffinity(0)) or 1

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.verify_pool = ThreadPoolExecutor(workers, thread_name_prefix="veriot-verify")
        if manage_node:
            node.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            app.state.verify_pool.shutdown(wait=True)
            if manage_node:
                await asyncio.to_thread(node.stop)

    app = VeriotApp(
        title="veriot",
        version=__version__,
        summary="Signed IoT readings in a verifiable log",
        lifespan=lifespan,
    )
    app.state.node = node
    for router in (
        readings.router,
        devices.router,
        log.router,
        anchors.router,
        health.router,
        problems.router,
        ai.router,
    ):
        app.include_router(router)

    def instance(request: Request) -> str:
        return request.url.path

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, instance(request))

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        kind = (
            ProblemKind.MALFORMED_REQUEST
            if any(str(e.get("loc", ("",))[0]) == "body" for e in exc.errors())
            else ProblemKind.INVALID_PARAMETER
        )
        return problem_response(
            Problem(kind, "; ".join(parts) or "invalid request"), instance(request)
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = ProblemKind.NOT_FOUND if exc.status_code == 404 else None
        if kind is None:
            body = {"type": "about:blank", "title": str(exc.detail), "status": exc.status_code}
            return JSONResponse(
                body, status_code=exc.status_code, media_type="application/problem+json"
            )
        return problem_response(
            Problem(kind, f"no such resource: {request.url.path}"), instance(request)
        )

    def domain_error(kind: ProblemKind) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            return problem_response(Problem(kind, str(exc)), instance(request))

        return handle

    # Starlette picks the handler of the most specific class in an error's MRO, so a
    # subclass listed here (InsufficientDataError) wins over its base (InputError).
    for error, kind in _DOMAIN_ERRORS.items():
        app.add_exception_handler(error, domain_error(kind))

    return app


class VeriotApp(FastAPI):
    """FastAPI, serving `POST /v1/readings`, the one hot route, ahead of everything else.

    FastAPI's middleware (error pages, telemetry, body limits), route matching,
    dependency solving and the endpoint wrappers cost a small request more CPU in the
    service process than checking its readings does; this hands the request straight to
    the route's own handler (`readings.ingest_readings`), which reads the body under the
    service's own limit, and answers its errors as the app's exception handlers would.
    Every other request goes through FastAPI unchanged.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == readings.INGEST_PATH
        ):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        request = Request(scope, receive)
        try:
            response: Response = await readings.ingest_readings(request, self.state.node)
        except Problem as problem:
            response = problem_response(problem, request.url.path)
        except tuple(_DOMAIN_ERRORS) as exc:
            # the most specific class in the error's MRO, as Starlette picks handlers
            kind = next(_DOMAIN_ERRORS[c] for c in type(exc).__mro__ if c in _DOMAIN_ERRORS)
            response = problem_response(Problem(kind, str(exc)), request.url.path)
        await response(scope, receive, send)


_DOMAIN_ERRORS: dict[type[Exception], ProblemKind] = {
    DecodeError: ProblemKind.MALFORMED_REQUEST,
    UnknownDeviceError: ProblemKind.NOT_FOUND,
    InsufficientDataError: ProblemKind.INSUFFICIENT_DATA,
    InputError: ProblemKind.INVALID_PARAMETER,
    ConflictError: ProblemKind.CONFLICT,
    StoreError: ProblemKind.UNAVAILABLE,
}
"""The problem each kind of domain error raised by a handler answers with."""
