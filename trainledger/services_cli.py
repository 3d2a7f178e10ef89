"""`trainledger api`, `trainledger projector`, `trainledger rebuild`: settings in, service out.

Each command reads `Settings` once (the composition root), finds the engine (`REDIS__URL`, or a
private one in `REDIS__DATA_DIR`), builds its service from explicit arguments and runs it.
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from events import connect, engine_url
from producers import ApiConfig, SpecLimits, create_app
from projections import Projector, RebuildReport, rebuild_read_model
from trainledger.settings import Settings
from trainledger.signing import signing_keys
from trainledger.startup import start

Host = Annotated[str | None, typer.Option(help="Listen address (default: API__HOST).")]
Port = Annotated[int | None, typer.Option(help="Listen port (default: API__PORT).")]


def api_config(settings: Settings, redis_url: str) -> ApiConfig:
    """The API's configuration from the process settings."""
    return ApiConfig(
        redis_url=redis_url,
        api_key=settings.security.api_key,
        read_your_writes_timeout_s=settings.api.read_your_writes_timeout_s,
        sse_max_s=settings.api.sse_max_s,
        policy=settings.redis.policy(),
        durability=settings.redis.durability(),
        limits=SpecLimits(
            max_n_layer=settings.api.max_n_layer,
            max_n_embd=settings.api.max_n_embd,
            max_batch_size=settings.api.max_batch_size,
            max_sequence_length=settings.api.max_sequence_length,
            max_processes=settings.api.max_processes,
        ),
    )


def api(host: Host = None, port: Port = None) -> None:
    """Serve the write and read API (FastAPI on uvicorn) until SIGTERM or SIGINT."""
    settings = start("api")
    with engine_url(settings.redis.url, settings.redis.data_dir) as url:
        uvicorn.run(
            create_app(api_config(settings, url)),
            host=host or settings.api.host,
            port=settings.api.port if port is None else port,
            access_log=False,
            log_config=None,  # uvicorn's records go through our JSON handler
        )


def projector() -> None:
    """Materialize the read model from the log until SIGTERM or SIGINT."""
    settings = start("projector")
    keys = signing_keys(settings, "projector")
    with engine_url(settings.redis.url, settings.redis.data_dir) as url:
        Projector(connect(url, settings.redis.policy()), keys).serve()


def rebuild(
    verify: Annotated[
        bool, typer.Option("--verify", help="Only report the drift; change nothing.")
    ] = False,
    show: Annotated[int, typer.Option(min=0, help="Keys to list per kind of drift.")] = 20,
) -> None:
    """Replay the log into the read model; with --verify, exit 1 when it has drifted."""
    settings = start("rebuild")
    keys = signing_keys(settings, "rebuild")
    with engine_url(settings.redis.url, settings.redis.data_dir) as url:
        report = rebuild_read_model(connect(url, settings.redis.policy()), keys, verify=verify)
    for line in describe(report, show):
        typer.echo(line)
    if verify and not report.drift.clean:
        raise typer.Exit(1)


def describe(report: RebuildReport, show: int) -> list[str]:
    """The report as lines: what was replayed, then each kind of drift with its first keys."""
    lines = [f"replayed {report.events} events ({report.skipped} undecodable skipped)"]
    if report.refused:
        lines.append(f"refused {report.refused} pointer(s) whose signature does not verify")
    for kind, keys in (
        ("missing", report.drift.missing),
        ("extra", report.drift.extra),
        ("different", report.drift.different),
    ):
        lines.append(f"{kind}: {len(keys)}")
        lines.extend(f"  {key}" for key in keys[:show])
        if len(keys) > show:
            lines.append(f"  ... and {len(keys) - show} more")
    lines.append("repaired" if report.applied else "verified only: nothing changed")
    return lines
