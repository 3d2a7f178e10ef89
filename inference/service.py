"""The inference service: `model@alias` or `run_id` -> file id -> model -> text or score.

A request resolves its run through the read model (afresh each time: an alias moved is served
by the next request), gets the run's model in memory (`serving`: a verified, safely extracted
artifact from the disk cache, loaded once), then generates (batched with concurrent requests,
streamed on request) or scores. Every answer names the run and file id it used. Errors are
`httpservice`'s JSON `{"code", "message", "request_id", "errors"}`, like every trainledger
service.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from databank import ArtifactFetcher
from httpservice import AUTH_ERRORS, ErrorBody, RequestIdMiddleware, api_key_required, request_id
from inference import errors, health, streaming
from inference.generation import Generation, Generator
from inference.metrics import InferenceMetrics
from inference.requests import (
    GenerateRequest,
    GenerateResponse,
    ScoreRequest,
    ScoreResponse,
    Timings,
    TokenSurprisal,
    Usage,
)
from inference.scoring import ContextOverflowError
from inference.serving import Prepared, Serving
from projections import ReadModel, SigningKeys

MODEL_ERRORS: dict[int | str, dict[str, object]] = {
    **AUTH_ERRORS,
    404: {"model": ErrorBody, "description": "unknown run or alias, or no artifact yet"},
    409: {"model": ErrorBody, "description": "the run failed, was cancelled or deleted"},
    502: {
        "model": ErrorBody,
        "description": "the artifact was unsafe, unreachable or unloadable, or its pointer "
        "not signed by this deployment",
    },
    503: {"model": ErrorBody, "description": "the event log is unreachable"},
}


def _timings(prepared: Prepared, run_s: float) -> Timings:
    return Timings(
        resolve_s=prepared.resolve_s,
        fetch_s=prepared.fetch_s,
        load_s=prepared.load_s,
        run_s=run_s,
    )


def generated(prepared: Prepared, generation: Generation, run_s: float) -> GenerateResponse:
    """The answer to a generation."""
    target = prepared.target
    return GenerateResponse(
        run_id=target.run_id,
        file_id=target.file_id,
        model=target.model,
        timings=_timings(prepared, run_s),
        text=generation.texts[0],
        texts=generation.texts,
        completions=generation.completions,
        finish_reasons=generation.finish_reasons,
        usage=Usage(
            prompt_tokens=generation.prompt_tokens,
            generated_tokens=sum(generation.generated_tokens),
        ),
    )


def create_app(
    read_model: ReadModel,
    fetcher: ArtifactFetcher,
    generator: Generator,
    *,
    signing_keys: SigningKeys,
    api_key: str | None = None,
) -> FastAPI:
    """The inference API over a read model, an artifact cache and a generator; it serves only
    pointers signed under `signing_keys`; with an `api_key`, generation and scoring require it
    in `X-API-Key` (health does not)."""
    app = FastAPI(title="trainledger inference", version="0.2.0")
    errors.install(app)
    metrics = InferenceMetrics(fetcher, generator)
    app.add_middleware(RequestIdMiddleware, observe=metrics.observe)
    app.include_router(health.router(read_model, metrics))
    serving = Serving(read_model, signing_keys, fetcher, generator, metrics)
    guarded = [Depends(api_key_required(api_key, "this inference service"))]

    @app.post(
        "/generate",
        response_model=GenerateResponse,
        dependencies=guarded,
        responses={
            **MODEL_ERRORS,
            200: {
                "description": "the generation; with `stream`, Server-Sent Events",
                "content": {"text/event-stream": {}},
            },
        },
    )
    async def generate(
        body: GenerateRequest, request: Request
    ) -> GenerateResponse | StreamingResponse:
        """Continue `prompt` with the model of `run_id` or `model` (`name@alias`)."""
        with generator.ticket() as ticket:
            prepared = await run_in_threadpool(serving.prepare, body)
            started = time.perf_counter()
            queue = streaming.EventQueue() if body.stream else None
            listener = queue.listener() if queue is not None else None
            running = generator.submit(prepared.loaded, body, listener=listener, ticket=ticket)
        if queue is not None:
            queue.follow(running)

            def answer(generation: Generation) -> GenerateResponse:
                return generated(prepared, generation, time.perf_counter() - started)

            body_events = streaming.events(queue, running, answer, request_id(request))
            return streaming.response(body_events)
        generation = await asyncio.wrap_future(running.done)
        return generated(prepared, generation, time.perf_counter() - started)

    @app.post("/score", dependencies=guarded, responses={**MODEL_ERRORS, 422: {"model": ErrorBody}})
    async def score(body: ScoreRequest) -> ScoreResponse:
        """Mean loss, perplexity and (`per_token`) surprisal of `text` under the model."""
        prepared = await run_in_threadpool(serving.prepare, body)
        started = time.perf_counter()
        try:
            result = await run_in_threadpool(generator.score, prepared.loaded, body.text)
        except ContextOverflowError as error:
            raise errors.TextTooLongError(str(error)) from error
        target = prepared.target
        per_token = [
            TokenSurprisal(token=token, surprisal=surprisal)
            for token, surprisal in zip(result.tokens, result.surprisals, strict=True)
        ]
        return ScoreResponse(
            run_id=target.run_id,
            file_id=target.file_id,
            model=target.model,
            timings=_timings(prepared, time.perf_counter() - started),
            tokens=len(result.tokens),
            loss=result.loss,
            perplexity=result.perplexity,
            per_token=per_token if body.per_token else None,
        )

    return app
