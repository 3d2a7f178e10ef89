"""Train a GPT-2 model on a corpus: the plain torch loop behind the training stage.

The corpus is encoded once, cut into `sequence_length` blocks, and its tail (`holdout_fraction`
of the blocks) is held out for validation loss and perplexity. Loss curves (`consumers.curves`)
go out with each progress report: train loss per step window, and validation loss every
`eval_every_steps` (by default five times a run) on at most `_EVAL_BATCHES` held-out batches,
then on all of them after the last step. Training is seeded: on CPU the
same spec and corpus give the same losses and the same weights, byte for byte (CUDA kernels are
not all deterministic, so on CUDA only the data order and initial weights are fixed).

Precision: `fp32` everywhere; `bf16` through `torch.autocast` on CUDA and on CPU (weights stay
fp32); `fp16` through autocast and a gradient scaler on CUDA only; asked on CPU it is refused
with `PrecisionUnavailable`, as fp16 on CPU is slow and needs the scaler's overflow handling.

Data parallel (`training.processes` > 1): the caller (`consumers.ranks`) has started the
other ranks and hands rank 0 its `Group`; every rank (the others through `train_rank`) builds
the same seeded model, loads the same checkpoint, and trains its shard of each global batch
under `DistributedDataParallel`, so the global batch stays `batch_size`. Rank 0 alone decides
to stop, reports, validates (on the unwrapped model: no collective inside) and saves. Every
rank draws the same dropout masks for its rows (one RNG state, as a checkpoint holds one), so
with `model.dropout` 0 a data-parallel run computes what one process computes, up to the
order of float sums. With one process nothing changes: no collective, no wrapper.

Failures a caller reports as a failed run: `CorpusError` (from `consumers.tokenizer`, with
`CorpusTooShort` here) and `TrainingError`. `CancelRequested` is not a failure, so it stands
apart.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, JsonValue, TypeAdapter
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from consumers.checkpoints import Checkpoint, CheckpointStore
from consumers.checkpoints import Progress as CheckpointProgress
from consumers.curves import CurveState, LossCurve
from consumers.ddp import Group, Shard, shard
from consumers.manifest import Timings
from consumers.tokenizer import CorpusError, read_corpus
from events import MetricPoint, ModelSpec, TrainingMetrics, TrainingParams, TrainingSpec

_RECENT_STEPS = 32
"""Reported losses are the mean of the last this many steps: steadier than one step's loss."""
_MAX_LOG_PERPLEXITY = 700.0
"""exp() of more overflows a float; a model that bad reports a huge, finite perplexity."""
_EVAL_BATCHES = 2
"""Held-out batches of an interval validation: a cheap estimate; the final one uses all."""
_EVALUATIONS = 5
"""Interval validations per run when the spec does not say."""
_CONFIG_ADAPTER: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])


class TrainingError(Exception):
    """The run cannot train as specified (device, precision)."""


class DeviceUnavailable(TrainingError):  # noqa: N818 - names what happened, as httpx does
    """The spec asks for CUDA and this machine has none."""


class PrecisionUnavailable(TrainingError):  # noqa: N818 - names what happened, as httpx does
    """The spec asks for a precision this device does not train in."""


class CorpusTooShort(CorpusError):  # noqa: N818 - names what happened, as httpx does
    """The corpus does not fill the blocks training and validation need."""


class CancelRequested(Exception):  # noqa: N818 - an outcome, not an error
    """`should_stop()` said so between two steps; nothing was saved."""


class Progress(BaseModel):
    """Where a running training stands, reported at a bounded rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: int
    total_steps: int
    loss: float
    tokens_per_second: float
    eta_seconds: float
    train: list[MetricPoint] = []
    validation: list[MetricPoint] = []


@dataclass(frozen=True, slots=True)
class TrainingOutcome:
    """A finished run: where its files are, what it measured, and the saved model configuration."""

    directory: Path
    metrics: TrainingMetrics
    model: dict[str, JsonValue]
    device: str
    timings: Timings


def train_model(
    corpus: Path,
    tokenizer: PreTrainedTokenizerFast,
    spec: TrainingSpec,
    out_dir: Path,
    *,
    should_stop: Callable[[], bool],
    on_progress: Callable[[Progress], None],
    progress_every: float = 5.0,
    checkpointing: Checkpointing | None = None,
    group: Group | None = None,
) -> TrainingOutcome:
    """Train the spec's model on `corpus`, save model (safetensors) and tokenizer to `out_dir`.

    `should_stop` is called before every step (keep it cheap); `on_progress` at most every
    `progress_every` seconds, and always after the last step. With `group` (data parallel)
    this is rank 0, on the group's device.
    """
    params = spec.training
    if group is None:
        device = resolve_device(params.device, cuda_available=torch.cuda.is_available())
    else:
        device = group.device
    dtype = autocast_dtype(device, params.precision)
    started = time.perf_counter()
    train_blocks, holdout_blocks = _blocks(corpus, tokenizer, params)
    data_done = time.perf_counter()
    model = _seeded_model(spec, tokenizer, device)
    total = total_steps(params, len(train_blocks))
    loop = _Loop(
        holdout_blocks, device, dtype, should_stop, on_progress, progress_every, total,
        checkpointing=checkpointing,
    )  # fmt: skip
    fit = _fit(model, train_blocks, params, loop, group)
    val_loss = _evaluate(model, holdout_blocks, params.batch_size, device, dtype)
    loop.finish(fit, val_loss)
    trained = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(
        out_dir
    )  # safetensors: the default since transformers 4.35, in 5 the only
    tokenizer.save_pretrained(out_dir)
    saved = time.perf_counter()
    timings = Timings(
        data_seconds=data_done - started,
        train_seconds=trained - data_done,
        save_seconds=saved - trained,
    )
    model_config = _CONFIG_ADAPTER.validate_json((out_dir / "config.json").read_bytes())
    return TrainingOutcome(out_dir, _metrics(fit, val_loss), model_config, str(device), timings)


def train_rank(
    corpus: Path,
    tokenizer: PreTrainedTokenizerFast,
    spec: TrainingSpec,
    group: Group,
    resume: Checkpoint | None,
) -> None:
    """Rank > 0 of a data-parallel training: the same model, data order and checkpoint as
    rank 0, its own shard of every step; it reports, validates and saves nothing, and stops
    when rank 0 does (`CancelRequested` here too)."""
    params = spec.training
    dtype = autocast_dtype(group.device, params.precision)
    train_blocks, _ = _blocks(corpus, tokenizer, params)
    model = _seeded_model(spec, tokenizer, group.device)
    plan = None
    if resume is not None:  # read, never written: no step count, no interval reaches a save
        plan = Checkpointing(
            CheckpointStore(resume.directory.parent), every_s=math.inf, resume=resume
        )
    total = total_steps(params, len(train_blocks))
    nothing = torch.zeros(0, params.sequence_length, dtype=torch.int32)
    loop = _Loop(
        nothing, group.device, dtype, _never, lambda _: None, math.inf, total, checkpointing=plan
    )  # nothing reported: `math.inf` between reports, and the last one waits for `finish`
    _fit(model, train_blocks, params, loop, group)


def _never() -> bool:
    return False


def _blocks(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, params: TrainingParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """The corpus's training and held-out blocks."""
    ids = encode_corpus(corpus, tokenizer)
    return split_blocks(ids, params.sequence_length, params.holdout_fraction)


def _seeded_model(
    spec: TrainingSpec, tokenizer: PreTrainedTokenizerFast, device: torch.device
) -> GPT2LMHeadModel:
    """The spec's model, initialized from its seed: the same on every rank."""
    torch.manual_seed(spec.training.seed)
    with device:  # built in place: nothing is allocated twice
        return build_model(spec.model, spec.training.sequence_length, tokenizer)


def resolve_device(
    requested: Literal["auto", "cpu", "cuda"], *, cuda_available: bool
) -> torch.device:
    """`auto` prefers CUDA; `cuda` without CUDA is an error, never a silent CPU run."""
    if requested == "cpu":
        return torch.device("cpu")
    if cuda_available:
        return torch.device("cuda")
    if requested == "cuda":
        raise DeviceUnavailable("the spec asks for device 'cuda', and CUDA is not available here")
    return torch.device("cpu")


def autocast_dtype(
    device: torch.device, precision: Literal["fp32", "bf16", "fp16"]
) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`; None means plain fp32."""
    if precision == "fp32":
        return None
    if precision == "fp16" and device.type != "cuda":
        raise PrecisionUnavailable("precision 'fp16' needs CUDA; on CPU use 'bf16' or 'fp32'")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def encode_corpus(corpus: Path, tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    """The corpus as one 1-D int32 tensor of token ids (int32 halves the memory of int64)."""
    ids = array("i")
    backend = tokenizer.backend_tokenizer
    for lines in read_corpus(corpus):
        for encoding in backend.encode_batch_fast(lines, add_special_tokens=False):
            ids.extend(encoding.ids)
    if not ids:
        return torch.zeros(0, dtype=torch.int32)
    return torch.frombuffer(ids, dtype=torch.int32)


def split_blocks(
    ids: torch.Tensor, sequence_length: int, holdout_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut `ids` into blocks; the last `holdout_fraction` of them (at least one) is held out."""
    count = len(ids) // sequence_length
    holdout = 0 if holdout_fraction == 0 else max(1, round(count * holdout_fraction))
    if count - holdout < 1:
        raise CorpusTooShort(
            f"corpus too short: {len(ids)} tokens make {count} blocks of "
            f"sequence_length={sequence_length}; training needs {holdout + 1} "
            f"(1 to train, {holdout} held out for validation)"
        )
    blocks = ids[: count * sequence_length].view(count, sequence_length)
    return blocks[: count - holdout], blocks[count - holdout :]


def build_model(
    spec: ModelSpec, sequence_length: int, tokenizer: PreTrainedTokenizerFast
) -> GPT2LMHeadModel:
    """A freshly initialized GPT-2 of the spec's size over the tokenizer's vocabulary."""
    n_layer, n_head, n_embd = spec.dimensions()
    end_of_text: int | None = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=sequence_length,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        bos_token_id=end_of_text,
        eos_token_id=end_of_text,
        pad_token_id=end_of_text,
        resid_pdrop=spec.dropout,
        embd_pdrop=spec.dropout,
        attn_pdrop=spec.dropout,
    )
    model = GPT2LMHeadModel(config)
    # What transformers falls back to for this class anyway, named so it does not warn.
    model.loss_type = "ForCausalLM"
    return model


@dataclass(frozen=True, slots=True)
class _Fit:
    steps: int
    tokens: int
    seconds: float
    loss: float


def total_steps(params: TrainingParams, blocks: int) -> int:
    """The steps a run takes: `max_steps`, or its epochs over `blocks` training blocks."""
    return params.max_steps or (params.epochs or 1) * math.ceil(blocks / params.batch_size)


_Parts = tuple[GPT2LMHeadModel, torch.optim.Optimizer, torch.amp.GradScaler]
"""What a checkpoint saves and restores of the loop's objects."""


@dataclass(frozen=True)
class Checkpointing:
    """Where a training keeps checkpoints, how often (every `every_steps` steps, if set, and
    every `every_s` seconds), and the checkpoint it resumes from."""

    store: CheckpointStore
    every_steps: int | None = None
    every_s: float = 300.0
    resume: Checkpoint | None = None


@dataclass
class _Loop:
    """What the loop reports besides training: progress, curves, interval validation."""

    holdout: torch.Tensor
    device: torch.device
    dtype: torch.dtype | None
    should_stop: Callable[[], bool]
    on_progress: Callable[[Progress], None]
    progress_every: float
    total: int
    train: LossCurve = field(init=False)
    validation: LossCurve = field(init=False)
    final: Progress | None = None
    """The last step's report, held until the final validation loss is known."""
    checkpointing: Checkpointing | None = None
    last_checkpoint: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.train = LossCurve(self.total)
        self.validation = LossCurve(_EVALUATIONS)

    def resume(self, parts: _Parts, recent: deque[torch.Tensor]) -> tuple[int, int, float]:
        """Restore the checkpoint to resume from, if any: (step, tokens, seconds) done."""
        if self.checkpointing is None or self.checkpointing.resume is None:
            return 0, 0, 0.0
        checkpoint = self.checkpointing.resume
        checkpoint.restore(*parts)
        done = checkpoint.progress()
        recent.extend(torch.tensor(loss) for loss in done.recent)
        self.train.restore(done.train)
        self.validation.restore(done.validation)
        return done.step, done.tokens, done.seconds

    def checkpoint(self, parts: _Parts, position: CheckpointProgress) -> None:
        """Save a checkpoint at `position` when one is due (never after the last step)."""
        plan = self.checkpointing
        if plan is None or position.step == self.total:
            return
        by_steps = plan.every_steps is not None and position.step % plan.every_steps == 0
        by_time = time.monotonic() - self.last_checkpoint >= plan.every_s
        if by_steps or by_time:
            curves = {"train": self.train.state(), "validation": self.validation.state()}
            plan.store.save(*parts, position.model_copy(update=curves))
            self.last_checkpoint = time.monotonic()

    def validate(self, model: GPT2LMHeadModel, step: int, batch_size: int) -> None:
        """A cheap validation loss on a few held-out batches, then back to training."""
        held = self.holdout[: batch_size * _EVAL_BATCHES]
        loss = _evaluate(model, held, batch_size, self.device, self.dtype)
        model.train()
        if loss is not None:
            self.validation.add(step, torch.tensor(loss))

    def report(self, progress: Progress) -> None:
        """Report `progress` with the curves so far; the last step's waits for `finish`."""
        if progress.step == self.total:
            self.train.close(progress.step)
            self.final = progress
            return
        self.on_progress(self._with_curves(progress))

    def finish(self, fit: _Fit, val_loss: float | None) -> None:
        """The last report: the full validation loss ends the validation curve."""
        assert self.final is not None  # the loop reports its last step before it returns
        if val_loss is not None:
            self.validation.points.append(MetricPoint(step=fit.steps, loss=val_loss))
        self.on_progress(self._with_curves(self.final))

    def _with_curves(self, progress: Progress) -> Progress:
        curves = {"train": list(self.train.points), "validation": list(self.validation.points)}
        return progress.model_copy(update=curves)


def _fit(
    model: GPT2LMHeadModel,
    blocks: torch.Tensor,
    params: TrainingParams,
    loop: _Loop,
    group: Group | None,
) -> _Fit:
    """The hot loop: as little per step beyond forward, backward and the optimizer as possible
    (with one process, not even a collective)."""
    total = loop.total
    eval_every = params.eval_every_steps or max(1, total // _EVALUATIONS)
    device, dtype = loop.device, loop.dtype
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate)
    autocast = _autocast(device, dtype)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    parts: _Parts = (model, optimizer, scaler)
    recent: deque[torch.Tensor] = deque(maxlen=_RECENT_STEPS)
    start, tokens, before = loop.resume(parts, recent)
    trained: torch.nn.Module = model if group is None else group.wrap(model)  # after resuming
    # the data position: the same seeded order, its first `start` batches skipped
    batches = islice(_batch_indices(len(blocks), params.batch_size, params.seed), start, total)
    mean, width = math.nan, blocks.shape[1]
    model.train()
    started = last_report = time.perf_counter()
    for step, indices in enumerate(batches, start=start + 1):
        stop = loop.should_stop()
        if stop and group is None:
            raise CancelRequested(_cancelled(step, total))
        part = Shard(indices, 1.0) if group is None else shard(indices, group.rank, group.world)
        batch = blocks[part.rows].to(device=device, dtype=torch.long)
        with autocast:
            loss: torch.Tensor = trained(input_ids=batch, labels=batch).loss
        torch.autograd.backward(scaler.scale(loss if part.weight == 1 else loss * part.weight))
        if group is not None:  # every rank stops at the same step, before its update
            loss, stop = group.reduce(loss, part.weight, stop)
            if stop:
                raise CancelRequested(_cancelled(step, total))
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        recent.append(loss.detach())
        loop.train.add(step, recent[-1])
        tokens += len(indices) * width
        if step % eval_every == 0 and step < total:
            loop.validate(model, step, params.batch_size)
        now = time.perf_counter()
        elapsed = before + now - started
        if now - last_report >= loop.progress_every or step == total:
            last_report = now
            mean = torch.stack(tuple(recent)).float().mean().item()
            loop.report(
                Progress(
                    step=step,
                    total_steps=total,
                    loss=mean,
                    tokens_per_second=tokens / max(elapsed, 1e-9),
                    eta_seconds=elapsed / step * (total - step),
                )
            )
        loop.checkpoint(parts, _position(step, tokens, elapsed, recent))
    return _Fit(total, tokens, before + time.perf_counter() - started, mean)


def _cancelled(step: int, total: int) -> str:
    return f"cancelled after {step - 1} of {total} steps"


def _position(
    step: int, tokens: int, seconds: float, recent: deque[torch.Tensor]
) -> CheckpointProgress:
    """Where the loop stands, for a checkpoint (its curves are added by `_Loop`)."""
    blank = CurveState(points=[], window=1, open_sum=None, open_count=0)
    return CheckpointProgress(
        step=step,
        tokens=tokens,
        seconds=seconds,
        recent=[loss.float().item() for loss in recent],
        train=blank,
        validation=blank,
    )


def _metrics(fit: _Fit, val_loss: float | None) -> TrainingMetrics:
    perplexity = None if val_loss is None else math.exp(min(val_loss, _MAX_LOG_PERPLEXITY))
    return TrainingMetrics(
        steps=fit.steps,
        tokens=fit.tokens,
        seconds=fit.seconds,
        tokens_per_second=fit.tokens / max(fit.seconds, 1e-9),
        train_loss=fit.loss,
        val_loss=val_loss,
        perplexity=perplexity,
    )


def _batch_indices(count: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless batches of block indices: a fresh seeded permutation each epoch."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield from torch.split(torch.randperm(count, generator=generator), batch_size)


def _evaluate(
    model: GPT2LMHeadModel,
    blocks: torch.Tensor,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
) -> float | None:
    """Mean loss per token over the held-out blocks; None when nothing was held out."""
    if not len(blocks):
        return None
    model.train(False)  # eval mode: dropout off
    autocast = _autocast(device, dtype)
    total = torch.zeros((), device=device)
    with torch.inference_mode():
        for part in torch.split(blocks, batch_size):
            batch = part.to(device=device, dtype=torch.long)
            with autocast:
                loss: torch.Tensor = model(input_ids=batch, labels=batch).loss
            total += loss.float() * len(batch)
    return (total / len(blocks)).item()


def _autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[object]:
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)
