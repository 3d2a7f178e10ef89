"""Generate text with the models of extracted artifacts: batched, seeded, streamed on request.

`Generator` keeps loaded models in a small LRU (`ModelCache`, single-flight loads) and decodes
every request on one thread (`Batcher`): concurrent requests for one model share batches. A
request's sequences are rows of a batch, each with its own seeded sampler, so a request's
answer does not depend on what it was batched with.

Prompt and continuation must fit the model's context: a long prompt keeps its end (at least
half the context), and new tokens are capped to the room left.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from inference.admission import MAX_PARAMETERS
from inference.batching import Batcher, Job, Ticket
from inference.completion import Completion, decode
from inference.decoding import SEED_STRIDE, Row, Sampling, decode_batch
from inference.loading import Loaded, ModelCache, load_model
from inference.requests import FinishReason, GenerateRequest
from inference.scoring import Score, score

Listener = Callable[[int, str], None]
"""Called from the decoding thread with a sequence's index and its next piece of text."""


@dataclass(frozen=True)
class Generation:
    """What a request generated."""

    prompt: str
    """The prompt as the model saw it (its end, when it did not fit)."""
    prompt_tokens: int
    completions: list[str]
    generated_tokens: list[int]
    finish_reasons: list[FinishReason]

    @property
    def texts(self) -> list[str]:
        """Prompt and completion, per sequence."""
        return [self.prompt + completion for completion in self.completions]


@dataclass(frozen=True)
class Running:
    """A submitted request: `done` resolves to its generation; `cancel` stops its rows."""

    done: Future[Generation]
    rows: list[Row]

    def cancel(self) -> None:
        """Stop decoding this request's rows at their next step (a client went away)."""
        for row in self.rows:
            row.cancelled = True


@dataclass(frozen=True)
class GeneratorStats:
    """What the generator did since it was made."""

    loads: int
    tokens_generated: int
    batch_rows: dict[int, int]
    """Batches run, by their number of rows."""


class Generator:
    """Models in memory, and one decoding thread that batches their requests."""

    def __init__(
        self,
        max_models: int = 4,
        *,
        max_batch: int = 8,
        batch_wait_s: float = 0.005,
        max_parameters: int = MAX_PARAMETERS,
    ) -> None:
        self.models = ModelCache(max_models)
        self.max_parameters = max_parameters
        """The largest model loaded (parameters): a larger artifact is refused."""
        self.batcher = Batcher(decode_batch, max_rows=max_batch, wait_s=batch_wait_s)
        self._tokens = 0

    @property
    def max_models(self) -> int:
        """Models kept in memory."""
        return self.models.max_models

    def load(self, directory: Path) -> Loaded:
        """The model of `directory`, loaded once and kept in the LRU (keyed by its path)."""
        loaded, _ = self.models.get(
            str(directory), lambda: load_model(directory, self.max_parameters)
        )
        return loaded

    def ticket(self) -> Ticket:
        """Announce a request that will submit soon: a forming batch waits for it briefly."""
        return self.batcher.ticket()

    def submit(
        self,
        loaded: Loaded,
        request: GenerateRequest,
        *,
        listener: Listener | None = None,
        ticket: Ticket | None = None,
    ) -> Running:
        """Queue `request` on `loaded`; `listener` hears each sequence's text as it settles."""
        encoded = loaded.tokenizer(request.prompt)["input_ids"]
        assert isinstance(encoded, list)  # one string encodes to one list of ids
        prompt = [int(token) for token in encoded]
        room = max(loaded.context - request.max_new_tokens, loaded.context // 2)
        kept = prompt[-min(len(prompt), room) :]
        budget = min(request.max_new_tokens, loaded.context - len(kept))
        sampling = Sampling(request.temperature, request.top_k, request.top_p)
        rows = [
            Row(
                prompt=kept,
                budget=budget,
                completion=Completion(loaded.tokenizer, request.stop, _heard(listener, index)),
                sampling=sampling,
                seed=request.seed * SEED_STRIDE + index,
            )
            for index in range(request.num_return_sequences)
        ]
        job = Job(loaded, rows)
        done: Future[Generation] = Future()
        job.done.add_done_callback(lambda ran: self._finish(ran, done, loaded, rows))
        self.batcher.submit(job, ticket)
        return Running(done, rows)

    def generate(
        self, loaded: Loaded, request: GenerateRequest, ticket: Ticket | None = None
    ) -> Generation:
        """`request` generated on `loaded` (waits for its batch)."""
        return self.submit(loaded, request, ticket=ticket).done.result()

    def score(self, loaded: Loaded, text: str) -> Score:
        """Per-token surprisal of `text` under `loaded` (between batches)."""
        with self.batcher.compute:
            return score(loaded, text)

    def stats(self) -> GeneratorStats:
        """Loads, tokens generated and batch sizes so far."""
        return GeneratorStats(
            loads=self.models.loads,
            tokens_generated=self._tokens,
            batch_rows=self.batcher.batch_sizes(),
        )

    def close(self) -> None:
        """Stop the decoding thread (queued requests fail)."""
        self.batcher.close()

    def _finish(
        self, ran: Future[None], done: Future[Generation], loaded: Loaded, rows: list[Row]
    ) -> None:
        error = ran.exception()
        if error is not None:
            done.set_exception(error)
            return
        completions = [row.completion.finish() for row in rows]
        generated = [row.generated for row in rows]
        self._tokens += sum(generated)
        done.set_result(
            Generation(
                prompt=decode(loaded.tokenizer, rows[0].prompt),
                prompt_tokens=len(rows[0].prompt),
                completions=completions,
                generated_tokens=generated,
                finish_reasons=[row.finish or "length" for row in rows],
            )
        )


def _heard(listener: Listener | None, index: int) -> Callable[[str], None] | None:
    if listener is None:
        return None
    return lambda text: listener(index, text)
