"""A consumer in a process of its own, for the tests that kill it.

Run as `python -m tests.events.consumer_process URL NAME`. It records every entry it
handles in `handled:<NAME>`; the event of run `slow` blocks until the process dies.
"""

from __future__ import annotations

import sys

from events import (
    Consumer,
    Delivery,
    Handlers,
    RuntimeConfig,
    TrainingCancelRequested,
    connect,
    names,
)


def main(url: str, name: str) -> None:
    """Consume `stream:training` in group `g` until killed."""
    client = connect(url)

    def handle(event: TrainingCancelRequested, delivery: Delivery) -> None:
        client.rpush(f"handled:{name}", event.correlation_id)
        if event.correlation_id == "slow":
            client.set("slow:started", name)
            client.blpop(["never-filled"], 0)

    handlers = Handlers().on(TrainingCancelRequested, handle)
    config = RuntimeConfig(block_ms=50, visibility_timeout_ms=600)
    consumer = Consumer(
        client,
        streams=[names.TRAINING_STREAM],
        group="g",
        handlers=handlers,
        config=config,
        name=name,
    )
    consumer.serve()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
