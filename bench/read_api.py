"""API throughput and tail latency against a bare constant FastAPI endpoint.

Measured on the API (`producers.create_app`, the same app `trainledger api` serves): the
pointer read `GET /runs/{id}/artifact` (the inference service's hot path), the status read
`GET /runs/{id}`, and the command `POST /runs/train`. The baseline is a FastAPI endpoint that
returns a constant. Every server runs on uvicorn with the same settings (uvloop, httptools, one
process, no access log), on loopback, one after the other, each in its own process. The load
comes from another process: a small asyncio HTTP/1.1 keep-alive client (lighter than an HTTP
library, so the server, not the client, is the bottleneck), bounded in requests and seconds,
at each `--concurrency` (16 and 32 by default). Prints requests/s, p50/p99 latency and server
CPU per request of each, and for the pointer read the throughput ratio (target >= 0.5) and
the p99 ratio (target <= 3) against the bare endpoint. The engine is a private one
(`LocalEngine`), never a system Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import uvicorn
from fastapi import FastAPI, Response

from events import (
    ArtifactPointer,
    ArtifactPointerSet,
    EventLog,
    LocalEngine,
    PointerSetPayload,
    SignedFields,
    SigningKeys,
    TrainingRequested,
    TrainingSpec,
    connect,
    free_port,
)
from producers import ApiConfig, create_app
from projections import rebuild_read_model

FILE_ID = "ab" * 32
KEYS = SigningKeys(current="bench-signing-key-" + "0" * 46)
"""Signs the seeded pointer; the rebuild verifies it."""
RUN_ID = "bench-run"
CONSTANT = ArtifactPointer(file_id=FILE_ID).model_dump_json().encode()
TRAIN_BODY = TrainingSpec(corpus_file_id=FILE_ID).model_dump_json().encode()


@dataclass(frozen=True)
class Target:
    """One measured request: which server answers it, and the request's bytes."""

    name: str
    server: str
    method: str
    path: str
    body: bytes = b""
    status: int = 200

    def request(self, port: int) -> bytes:
        """The raw HTTP/1.1 request."""
        head = f"{self.method} {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        if self.body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n"
        return (head + "\r\n").encode() + self.body


TARGETS = (
    Target("bare", "bare", "GET", f"/runs/{RUN_ID}/artifact"),
    Target("pointer", "app", "GET", f"/runs/{RUN_ID}/artifact"),
    Target("status", "app", "GET", f"/runs/{RUN_ID}"),
    Target("train", "app", "POST", "/runs/train", TRAIN_BODY, 202),
)


def bare_app() -> FastAPI:
    """The baseline: a FastAPI endpoint that returns a constant, pre-serialized."""
    app = FastAPI()

    @app.get("/runs/{run_id}/artifact")
    async def constant(run_id: str) -> Response:
        return Response(CONSTANT, media_type="application/json")

    return app


def serve(kind: str, port: int, redis_url: str) -> None:
    """Run one server in this process (the bench starts it as a child)."""
    app = bare_app() if kind == "bare" else create_app(ApiConfig(redis_url=redis_url))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


# -- the load generator (a separate process) -----------------------------------------------


async def _connection(
    port: int,
    request: bytes,
    expected: bytes,
    deadline: float,
    budget: list[int],
    latencies: list[float],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(expected):
                raise RuntimeError(f"unexpected response {head[:40]!r}")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
    finally:
        writer.close()


async def _load(
    port: int, target: Target, concurrency: int, requests: int, seconds: float
) -> dict[str, float]:
    request, expected = target.request(port), f"HTTP/1.1 {target.status}".encode()
    latencies: list[float] = []
    budget = [requests]
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(
            _connection(port, request, expected, deadline, budget, latencies)
            for _ in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def load(port: int, target: str, concurrency: int, requests: int, seconds: float) -> None:
    """Run the load generator in this process and print its result as JSON."""
    chosen = next(t for t in TARGETS if t.name == target)
    print(json.dumps(asyncio.run(_load(port, chosen, concurrency, requests, seconds))))


# -- the driver -------------------------------------------------------------------------------


@dataclass
class Result:
    """One measured phase."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/runs/{RUN_ID}/artifact").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not answer")


def measure(target: Target, concurrency: int, redis_url: str, args: argparse.Namespace) -> Result:
    """Start the target's server, warm it up, load it from another process, stop it by PID."""
    port = free_port()
    me = [sys.executable, __file__]
    command = [*me, "--serve", target.server, "--port", str(port), "--redis", redis_url]
    server = subprocess.Popen(command)
    try:
        _wait_ready(port, server)
        loader = [*me, "--load", str(port), "--target", target.name]
        loader += ["--concurrency", str(concurrency)]
        warm = [*loader, "--requests", str(args.requests // 10), "--seconds", "5"]
        subprocess.run(warm, check=True, capture_output=True)
        cpu = psutil.Process(server.pid).cpu_times()
        run = [*loader, "--requests", str(args.requests), "--seconds", str(args.seconds)]
        out = subprocess.run(run, check=True, capture_output=True, text=True).stdout
        after = psutil.Process(server.pid).cpu_times()
    finally:
        server.terminate()
        server.wait(10)
    figures = json.loads(out)
    spent = (after.user + after.system) - (cpu.user + cpu.system)
    return Result(
        figures["rps"], figures["p50_ms"], figures["p99_ms"], spent / figures["requests"] * 1e6
    )


def seed(redis_url: str) -> None:
    """One run with a pointer, through the log and the projector's own rebuild path."""
    client = connect(redis_url)
    log = EventLog(client)
    log.append(
        TrainingRequested(correlation_id=RUN_ID, payload=TrainingSpec(corpus_file_id=FILE_ID))
    )
    signed = SignedFields(subject="run", subject_id=RUN_ID, file_id=FILE_ID, size=1)
    payload = PointerSetPayload(
        subject="run", pointer=ArtifactPointer(file_id=FILE_ID), size=1, signature=KEYS.sign(signed)
    )
    log.append(ArtifactPointerSet(correlation_id=RUN_ID, payload=payload))
    rebuild_read_model(client, KEYS)
    client.close()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", choices=["bare", "app"])
    parser.add_argument("--load", type=int, metavar="PORT")
    parser.add_argument("--target", choices=[t.name for t in TARGETS], default="bare")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis", default="")
    parser.add_argument("--concurrency", type=int, action="append")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    return parser.parse_args()


def report(concurrency: int, rounds: list[tuple[Target, Result]], count: int) -> None:
    """Each round, then each target's best round against the bare endpoint's."""
    for target, result in rounds:
        print(
            f"c{concurrency:<3} {target.name:8} {result.rps:9.0f} req/s  p50 {result.p50_ms:6.2f} ms"
            f"  p99 {result.p99_ms:6.2f} ms  server cpu {result.cpu_us_per_request:5.0f} us/req"
        )
    best = {
        target.name: max((r for t, r in rounds if t is target), key=lambda r: r.rps)
        for target in TARGETS
    }
    bare = best["bare"]
    for name in ("pointer", "status", "train"):
        result = best[name]
        line = (
            f"c{concurrency} {name}: {result.rps:.0f} req/s vs bare {bare.rps:.0f} "
            f"(ratio {result.rps / bare.rps:.2f}); p99 {result.p99_ms:.2f} ms vs bare "
            f"{bare.p99_ms:.2f} ms (ratio {result.p99_ms / bare.p99_ms:.2f})"
        )
        if name == "pointer":
            line += f"; best of {count}; targets: ratio >= 0.5, p99 ratio <= 3"
        print(line)


def main() -> None:
    """Measure every target `--rounds` times at each concurrency, alternating."""
    args = _arguments()
    if args.serve:
        serve(args.serve, args.port, args.redis)
        return
    if args.load:
        load(args.load, args.target, args.concurrency[0], args.requests, args.seconds)
        return
    with tempfile.TemporaryDirectory() as data:
        engine = LocalEngine(Path(data))
        engine.start()
        try:
            seed(engine.url)
            for concurrency in args.concurrency or [16, 32]:
                rounds = [
                    (target, measure(target, concurrency, engine.url, args))
                    for _ in range(args.rounds)
                    for target in TARGETS
                ]
                report(concurrency, rounds, args.rounds)
        finally:
            engine.stop()


if __name__ == "__main__":
    main()
