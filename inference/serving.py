"""From a request to a model in memory: resolve, fetch (held on disk while loading), load.

A model already in memory is served without touching the disk cache or Data Bank. Otherwise
the first request for a file id holds its artifact in the disk cache (downloading it when
missing) while it loads; concurrent requests for the same id wait for that one load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import databank
from databank import ArtifactFetcher
from inference import errors
from inference.admission import LoadError, TooLargeError
from inference.generation import Generator
from inference.loading import Loaded, load_model
from inference.metrics import InferenceMetrics
from inference.requests import ModelRequest
from inference.resolution import Target, resolve
from projections import ReadModel, SigningKeys


@dataclass(frozen=True)
class Prepared:
    """A request's model, ready, and the seconds it took to get there."""

    target: Target
    loaded: Loaded
    resolve_s: float
    fetch_s: float
    load_s: float


class Serving:
    """Resolution and loading for the endpoints (blocking: called from worker threads)."""

    def __init__(
        self,
        read_model: ReadModel,
        keys: SigningKeys,
        fetcher: ArtifactFetcher,
        generator: Generator,
        metrics: InferenceMetrics,
    ) -> None:
        self.read_model = read_model
        self.keys = keys
        self.fetcher = fetcher
        self.generator = generator
        self.metrics = metrics

    def prepare(self, request: ModelRequest) -> Prepared:
        """The model `request` names, in memory; errors say why there is none."""
        started = time.perf_counter()
        target = resolve(self.read_model, request, self.keys)
        resolved = time.perf_counter()
        fetched: list[float] = []

        def load() -> Loaded:
            with _fetched(self.fetcher, target.file_id) as directory:
                fetched.append(time.perf_counter())
                try:
                    loaded = load_model(directory, self.generator.max_parameters)
                except TooLargeError as error:
                    too_large = errors.ModelTooLargeError
                    raise errors.artifact_error(too_large, "artifact too large", error) from error
                except LoadError as error:
                    unloadable = errors.UnloadableArtifactError
                    raise errors.artifact_error(unloadable, "artifact unloadable", error) from error
            self.metrics.load_seconds.observe(time.perf_counter() - fetched[0])
            return loaded

        loaded, in_memory = self.generator.models.get(target.file_id, load)
        (self.metrics.model_hits if in_memory else self.metrics.model_misses).inc()
        done = time.perf_counter()
        fetch_end = fetched[0] if fetched else resolved
        return Prepared(target, loaded, resolved - started, fetch_end - resolved, done - fetch_end)


@contextmanager
def _fetched(fetcher: ArtifactFetcher, file_id: str) -> Iterator[Path]:
    """`fetcher.hold(file_id)`, Data Bank's errors turned into the service's."""
    held = ExitStack()
    try:
        directory = held.enter_context(fetcher.hold(file_id))
    except databank.UnsafeArtifactError as error:
        raise errors.artifact_error(
            errors.UnsafeArtifactError, "artifact refused", error
        ) from error
    except databank.DataBankError as error:
        failed = errors.DataBankError
        raise errors.artifact_error(failed, "artifact download failed", error) from error
    with held:
        yield directory
