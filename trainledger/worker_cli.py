"""`trainledger worker`: this node's training, tokenizer and upload stages until SIGTERM or SIGINT.

The stages run in threads of this process (no `exec`), so the JSON logging configured here
stays in force for all of them, with the Data Bank key masked. Without Data Bank there is no
worker (an artifact that cannot be uploaded is a failed run), so the command refuses to start
when `APP__DATA_BANK_API_URL` or `APP__DATA_BANK_API_KEY` is missing; and without
`APP__SIGNING_KEY`, which signs the pointers it publishes.

torch, transformers and the stages are imported when the command runs, not when the command
line loads: every `trainledger` command (the client ones too) would otherwise pay seconds.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError

from databank import DataBankClient
from events import SigningKeys, connect, engine_url
from trainledger.settings import Settings
from trainledger.signing import signing_keys
from trainledger.startup import start
from trainledger.version import version

if TYPE_CHECKING:
    from consumers import WorkerConfig

log = logging.getLogger(__name__)

MISSING_DATA_BANK = (
    "trainledger worker needs Data Bank: set APP__DATA_BANK_API_URL and APP__DATA_BANK_API_KEY "
    "(missing: {missing})"
)


def _quiet_transformers() -> None:
    """No progress bars in JSON logs (transformers leaves this function unannotated)."""
    from transformers.utils import logging as transformers_logging

    disable: Callable[[], None] = transformers_logging.disable_progress_bar
    disable()


def worker_config(settings: Settings, keys: SigningKeys) -> WorkerConfig:
    """The worker's configuration from the process settings, signing with `keys`."""
    from consumers import WorkerConfig

    return WorkerConfig(
        node_id=settings.app.node_id,
        artifacts_root=settings.app.artifacts_root,
        signing_keys=keys,
        progress_interval_s=settings.worker.progress_interval_s,
        metrics_interval_s=settings.worker.metrics_interval_s,
        checkpoint_interval_s=settings.worker.checkpoint_interval_s,
        cancel_check_s=settings.worker.cancel_check_s,
        visibility_timeout_ms=settings.worker.visibility_timeout_ms,
        upload_retry_window_s=settings.worker.upload_retry_window_s,
        durability=settings.redis.durability(),
        trainledger_version=version(),
    )


def worker() -> None:
    """Train, tokenize and upload for this node (APP__NODE_ID) until SIGTERM or SIGINT."""
    settings = start("worker")
    url, key = settings.app.data_bank_api_url, settings.app.data_bank_api_key
    if not url or not key:
        named = (("APP__DATA_BANK_API_URL", url), ("APP__DATA_BANK_API_KEY", key))
        missing = ", ".join(name for name, value in named if not value)
        typer.echo(MISSING_DATA_BANK.format(missing=missing), err=True)
        raise typer.Exit(2)
    keys = signing_keys(settings, "worker")
    try:
        config = worker_config(settings, keys)
    except ValidationError as error:
        typer.echo(f"invalid worker settings (APP__*, WORKER__*): {error}", err=True)
        raise typer.Exit(2) from None
    import torch

    from consumers import Worker

    _quiet_transformers()
    threads = settings.worker.threads()
    torch.set_num_threads(threads)  # the stages' threads take it up when they first use torch
    with (
        engine_url(settings.redis.url, settings.redis.data_dir) as redis_url,
        DataBankClient(url, key) as bank,
    ):
        node = Worker(connect(redis_url, settings.redis.policy()), bank, config)
        log.info(
            "worker starting on node %s, artifacts in %s, %d torch threads",
            config.node_id,
            config.artifacts_root,
            threads,
            extra={"category": "worker", "event": "worker_starting", "node_id": config.node_id},
        )

        def on_signal(signum: int, frame: FrameType | None) -> None:
            node.stop()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            node.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("worker stopped", extra={"category": "worker", "event": "worker_stopped"})
