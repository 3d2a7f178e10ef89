"""Training and upload through the worker, against doing the same by hand.

    python bench/training.py
    python bench/training.py --steps 300 --artifact-mib 100 --rounds 3

1. Throughput: tokens/s of a run trained by the worker (a `training.requested` handled by
   `trainledger worker`; the loop's tokens/s as `training.completed` reports it) against the
   same model, data and steps trained by a plain loop calling `transformers` and `torch`
   directly, in this process. Target: ratio >= 0.95.
3. Checkpoints (in this process, the trainer itself, after part 2): the cost of one
   checkpoint of the part-1 model (weights in safetensors, optimizer, scaler and RNG states,
   the loop's position) against a bare `torch.save` of the same weights and optimizer; that
   cost as a share of training time at the default interval (`WORKER__CHECKPOINT_INTERVAL_S`,
   300 s; target <= 3%); and the time to resume, from `train_model` called with the newest
   checkpoint to its first step after it, against the same call starting fresh (both encode
   the corpus and build the model; a redelivery adds the visibility timeout before either).
4. Resume from redelivery (after the others, through the worker as deployed): a run with a
   checkpoint every `--checkpoint-every` steps, its worker SIGKILLed after the first
   checkpoint and started again on the same node; the time from the redelivered request
   (its `training.started`, attempt 2, appended as the handler begins) to the first
   `training.progress` after the checkpoint, against the same span of attempt 1 (started to
   step 1). Also printed, not a target: SIGKILL to redelivery (process start plus the
   visibility timeout, `--visibility-s` here).
2. Upload to pointer: from appending `training.completed` of a run directory holding
   `--artifact-mib` MiB to the moment `GET /runs/{id}/artifact` answers the pointer, against
   `curl` uploading the same tar to the same Data Bank. Target: ratio <= 1.3.

Data Bank, the projector, the API and the worker run as `trainledger` processes, as deployed
(the engine is a private one), so this process's waiting never competes with them for the
GIL. Best of the rounds for each figure (the machine is shared). Everything lives in a
temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import redis
import torch
from tokenizers import Tokenizer
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from transformers.utils import logging as transformers_logging

from consumers import Manifest
from consumers.checkpoints import CheckpointStore
from consumers.manifest import MANIFEST_FILE
from consumers.tarball import tar_stream
from consumers.trainer import Checkpointing, train_model
from databank import DataBankClient
from events import (
    ArtifactUploaded,
    Envelope,
    EventLog,
    LocalEngine,
    ModelSpec,
    TokenizerParams,
    TrainingCancelled,
    TrainingCancelRequested,
    TrainingCompleted,
    TrainingCompletedPayload,
    TrainingParams,
    TrainingProgressed,
    TrainingRequested,
    TrainingSpec,
    TrainingStarted,
    connect,
    names,
    text,
    utc_now,
)
from events.engine import free_port

MIB = 1 << 20
KEY = "bench-key"
SIGNING_KEY = "bench-signing-key-" + "0" * 46
NODE = "bench-node"
THROUGHPUT_TARGET = 0.95
CHECKPOINT_INTERVAL_S = 300.0
"""The worker's default (`WORKER__CHECKPOINT_INTERVAL_S`)."""
CHECKPOINT_TARGET_PERCENT = 3.0
UPLOAD_TARGET = 1.3
E = TypeVar("E", bound=Envelope)
_WORDS = ("the", "a", "fox", "dog", "runs", "over", "lazy", "river", "tree", "sky", "blue",
          "cat", "sits", "on", "mat", "café", "naïve", "wörld", "東京", "quick", "brown")  # fmt: skip


@dataclass(frozen=True)
class Services:
    """Addresses of the running pieces."""

    redis_url: str
    bank_url: str
    api_url: str


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up")
        time.sleep(0.1)


@contextmanager
def _service(
    args: list[str], env: dict[str, str], ready: str | None, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`trainledger <args>` as a process until the block ends (stopped by PID); output to `log`."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "trainledger", *args],
            env=os.environ | env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if ready is not None:
            _wait_http(ready, process, args[0])
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def services(root: Path, threads: int) -> Iterator[Services]:
    """A private engine; Data Bank, the projector and the API as processes (the worker is
    started apart: part 4 kills it)."""
    with ExitStack() as stack:
        engine = LocalEngine(root / "engine")
        engine.start()
        stack.callback(engine.stop)
        bank_port, api_port = free_port(), free_port()
        bank_url, api_url = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{api_port}"
        bank_env = {
            "DATABANK__DATA_DIR": str(root / "databank"),
            "DATABANK__API_UPLOAD_KEYS": KEY,
            "DATABANK__MIN_FREE_GB": "0",
        }
        bank_args = ["databank", "--port", str(bank_port), "--log-level", "warning"]
        stack.enter_context(
            _service(bank_args, bank_env, f"{bank_url}/healthz", root / "databank.log")
        )
        env = {"REDIS__URL": engine.url, "APP__SIGNING_KEY": SIGNING_KEY}
        stack.enter_context(_service(["projector"], env, None, root / "projector.log"))
        api_args = ["api", "--port", str(api_port)]
        stack.enter_context(_service(api_args, env, f"{api_url}/healthz", root / "api.log"))
        yield Services(engine.url, bank_url, api_url)


def worker_env(root: Path, running: Services, threads: int, **settings: str) -> dict[str, str]:
    """The environment of this bench's worker (node `NODE`), plus `settings`."""
    return {
        "REDIS__URL": running.redis_url,
        "APP__SIGNING_KEY": SIGNING_KEY,
        "APP__NODE_ID": NODE,
        "APP__ARTIFACTS_ROOT": str(root / "artifacts"),
        "APP__DATA_BANK_API_URL": running.bank_url,
        "APP__DATA_BANK_API_KEY": KEY,
        "OMP_NUM_THREADS": str(threads),  # torch's intra-op threads, as in this process
        "WORKER__TORCH_THREADS": str(threads),
        **settings,
    }


def _corpus(path: Path, lines: int) -> Path:
    rng = random.Random(0)
    text = "".join(
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 16))) + ".\n"
        for _ in range(lines)
    )
    path.write_text(text, encoding="utf-8")
    return path


def _spec(corpus_file_id: str, args: argparse.Namespace) -> TrainingSpec:
    return TrainingSpec(
        corpus_file_id=corpus_file_id,
        tokenizer=TokenizerParams(vocab_size=1024),
        model=ModelSpec(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd),
        training=TrainingParams(
            max_steps=args.steps,
            batch_size=args.batch_size,
            sequence_length=args.sequence_length,
            device="cpu",
        ),
    )


def _wait(condition: Callable[[], bool], timeout: float, what: str, every: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


def _completed(log: EventLog, run_id: str) -> TrainingCompleted | None:
    for entry in log.read_correlation(run_id):
        event = entry.event()
        if isinstance(event, TrainingCompleted):
            return event
        if event.type in ("training.failed", "training.cancelled"):
            raise RuntimeError(f"run {run_id} ended as {event.type}")
    return None


def worker_tokens_per_second(log: EventLog, spec: TrainingSpec) -> tuple[float, str]:
    """Ask the worker for a run; the loop's tokens/s it reports, and the run id."""
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    log.append(TrainingRequested(correlation_id=run_id, payload=spec))
    # A slow poll: the figure is measured inside the loop, and polling must not take CPU from it.
    _wait(lambda: _completed(log, run_id) is not None, 600, f"run {run_id}", every=0.25)
    completed = _completed(log, run_id)
    assert completed is not None
    return completed.payload.metrics.tokens_per_second, run_id


def plain_tokens_per_second(run_dir: Path, corpus: Path, spec: TrainingSpec) -> float:
    """The same model, data and steps, by a loop written against transformers and torch."""
    params = spec.training
    assert params.max_steps is not None
    tokenizer = Tokenizer.from_file(str(run_dir / "tokenizer.json"))
    ids = [i for line in corpus.open(encoding="utf-8") for i in tokenizer.encode(line).ids]
    count = len(ids) // params.sequence_length
    blocks = torch.tensor(ids[: count * params.sequence_length]).view(count, -1)
    blocks = blocks[: count - max(1, round(count * params.holdout_fraction))]
    n_layer, n_head, n_embd = spec.model.dimensions()
    end_of_text = tokenizer.token_to_id("<|endoftext|>")
    torch.manual_seed(params.seed)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=tokenizer.get_vocab_size(),
            n_positions=params.sequence_length,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            bos_token_id=end_of_text,
            eos_token_id=end_of_text,
            pad_token_id=end_of_text,
        )
    )
    model.loss_type = "ForCausalLM"
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate)
    generator = torch.Generator().manual_seed(params.seed)
    order = torch.cat([torch.randperm(len(blocks), generator=generator) for _ in range(
        math.ceil(params.max_steps * params.batch_size / len(blocks)) + 1)])  # fmt: skip
    model.train()
    tokens = 0
    started = time.perf_counter()
    for step in range(params.max_steps):
        batch = blocks[order[step * params.batch_size : (step + 1) * params.batch_size]]
        loss: torch.Tensor = model(input_ids=batch, labels=batch).loss
        torch.autograd.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch.numel()
    return tokens / (time.perf_counter() - started)


def throughput(log: EventLog, bank: DataBankClient, root: Path, args: argparse.Namespace) -> None:
    """Part 1: worker against plain loop after a short warm-up of both, alternating which goes
    first, best of rounds."""
    corpus = _corpus(root / "corpus.txt", args.corpus_lines)
    spec = _spec(bank.upload(corpus).file_id, args)
    models = root / "artifacts" / "models"
    warm = spec.model_copy(update={"training": spec.training.model_copy(update={"max_steps": 5})})
    _, run_id = worker_tokens_per_second(log, warm)
    plain_tokens_per_second(models / run_id, corpus, warm)
    workers: list[float] = []
    plains: list[float] = []
    print(
        f"throughput: GPT-2 (n_layer, n_head, n_embd)={spec.model.dimensions()} "
        f"sequence_length={spec.training.sequence_length} batch_size={spec.training.batch_size} "
        f"steps={spec.training.max_steps} on CPU, torch threads={torch.get_num_threads()}"
    )
    for round_ in range(1, args.rounds + 1):
        if round_ % 2:
            worker, run_id = worker_tokens_per_second(log, spec)
            plain = plain_tokens_per_second(models / run_id, corpus, spec)
        else:
            plain = plain_tokens_per_second(models / run_id, corpus, spec)
            worker, run_id = worker_tokens_per_second(log, spec)
        workers.append(worker)
        plains.append(plain)
        print(f"  round {round_}: worker {worker:8.0f} tokens/s   plain loop {plain:8.0f} tokens/s")
    ratio = max(workers) / max(plains)
    verdict = "ok" if ratio >= THROUGHPUT_TARGET else "BELOW TARGET"
    print(
        f"  best: worker {max(workers):.0f} tokens/s, plain loop {max(plains):.0f} tokens/s, "
        f"ratio {ratio:.3f} (target >= {THROUGHPUT_TARGET}) {verdict}; "
        f"median ratio {statistics.median(workers) / statistics.median(plains):.3f}"
    )


class _FirstStep(Exception):  # noqa: N818 - a signal to stop, not an error
    """Raised by the progress callback at the first report: the step it measures happened."""


def _first_step_seconds(
    corpus: Path, run_dir: Path, spec: TrainingSpec, plan: Checkpointing | None
) -> float:
    """Seconds from calling `train_model` to its first step (after the checkpoint, if any)."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(run_dir)

    def first(_: object) -> None:
        raise _FirstStep

    started = time.perf_counter()
    try:
        train_model(
            corpus, tokenizer, spec, run_dir.parent / "resume-out", should_stop=lambda: False,
            on_progress=first, progress_every=0.0, checkpointing=plan,
        )  # fmt: skip
    except _FirstStep:
        return time.perf_counter() - started
    raise RuntimeError("the run ended without reporting a step")


def checkpoints(root: Path, run_dir: Path, spec: TrainingSpec, rounds: int) -> None:
    """Part 3: what a checkpoint costs, and how long a resume takes to train again."""
    corpus = root / "corpus.txt"
    store = CheckpointStore(root / "checkpoints" / "bench")
    short = spec.training.model_copy(update={"max_steps": 3})
    train_model(  # checkpoints after steps 1 and 2: the store keeps step 2
        corpus, PreTrainedTokenizerFast.from_pretrained(run_dir),
        spec.model_copy(update={"training": short}), root / "checkpoint-out",
        should_stop=lambda: False, on_progress=lambda _: None, progress_every=3600.0,
        checkpointing=Checkpointing(store, every_steps=1),
    )  # fmt: skip
    latest = store.latest()
    assert latest is not None
    model = GPT2LMHeadModel.from_pretrained(root / "checkpoint-out")
    optimizer = torch.optim.AdamW(model.parameters())
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    latest.restore(model, optimizer, scaler)
    position = latest.progress()
    saves: list[float] = []
    bare: list[float] = []
    for _ in range(rounds):
        begun = time.perf_counter()
        store.save(model, optimizer, scaler, position)
        saves.append(time.perf_counter() - begun)
        begun = time.perf_counter()
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        torch.save(state, root / "bare.pt")
        bare.append(time.perf_counter() - begun)
    save, raw = min(saves), min(bare)
    share = save / CHECKPOINT_INTERVAL_S * 100
    verdict = "ok" if share <= CHECKPOINT_TARGET_PERCENT else "ABOVE TARGET"
    print(
        f"checkpoints: one checkpoint {save * 1000:.1f} ms, bare torch.save of weights and "
        f"optimizer {raw * 1000:.1f} ms (ratio {save / raw:.2f}); at the default interval "
        f"({CHECKPOINT_INTERVAL_S:.0f} s) {share:.4f}% of training time "
        f"(target <= {CHECKPOINT_TARGET_PERCENT}%) {verdict}"
    )
    latest = store.latest()
    assert latest is not None
    resume = Checkpointing(store, every_s=3600.0, resume=latest)
    resumed = min(_first_step_seconds(corpus, run_dir, spec, resume) for _ in range(rounds))
    fresh = min(_first_step_seconds(corpus, run_dir, spec, None) for _ in range(rounds))
    print(
        f"  resume: train_model from the checkpoint at step {latest.step} to its first step "
        f"{resumed:.2f} s; the same call starting fresh {fresh:.2f} s (ratio {resumed / fresh:.2f})"
    )


def _events(log: EventLog, run_id: str, kind: type[E]) -> list[E]:
    return [
        e for e in (entry.event() for entry in log.read_correlation(run_id)) if isinstance(e, kind)
    ]


def resume_from_redelivery(
    log: EventLog, bank: DataBankClient, root: Path, running: Services, args: argparse.Namespace
) -> None:
    """Part 4: SIGKILL the worker after a checkpoint; the restarted node resumes the run."""
    spec = _spec(bank.upload(root / "corpus.txt").file_id, args)
    every = args.checkpoint_every
    training = spec.training.model_copy(
        update={"max_steps": every * 50, "checkpoint_every_steps": every}
    )
    spec = spec.model_copy(update={"training": training})
    env = worker_env(
        root, running, args.threads,
        WORKER__PROGRESS_INTERVAL_S="0", WORKER__METRICS_INTERVAL_S="0",
        WORKER__VISIBILITY_TIMEOUT_MS=str(int(args.visibility_s * 1000)),
    )  # fmt: skip
    run_id = f"bench-resume-{uuid.uuid4().hex[:8]}"
    checkpoints = root / "artifacts" / "checkpoints" / run_id
    with _service(["worker"], env, None, root / "worker-killed.log") as killed:
        log.append(TrainingRequested(correlation_id=run_id, payload=spec))
        _wait(lambda: any(checkpoints.glob("step-*")), 600, "a checkpoint", every=0.05)
        os.kill(killed.pid, signal.SIGKILL)
        killed_at = utc_now()
    with _service(["worker"], env, None, root / "worker-resumed.log"):
        _wait(lambda: len(_events(log, run_id, TrainingStarted)) == 2, 600, "a redelivery", 0.05)
        resumed_at = _events(log, run_id, TrainingStarted)[1].payload.resumed_at_step
        if resumed_at is None:
            raise RuntimeError("the restarted node did not resume from its checkpoint")

        def first_after(after: int) -> Callable[[], bool]:
            return lambda: any(
                p.payload.step > after for p in _events(log, run_id, TrainingProgressed)
            )

        _wait(first_after(resumed_at), 600, "a step after the checkpoint", every=0.05)
        log.append(TrainingCancelRequested(correlation_id=run_id))
        _wait(lambda: bool(_events(log, run_id, TrainingCancelled)), 600, "the cancel", 0.05)
    starts = _events(log, run_id, TrainingStarted)
    progress = _events(log, run_id, TrainingProgressed)
    fresh = min(p.occurred_at for p in progress if p.payload.step == 1) - starts[0].occurred_at
    resumed = (
        min(p.occurred_at for p in progress if p.payload.step > resumed_at) - starts[1].occurred_at
    )
    print(
        f"resume from redelivery: checkpoint at step {resumed_at}; redelivered request to its "
        f"first step after the checkpoint {resumed.total_seconds():.2f} s; attempt 1, started "
        f"to step 1, {fresh.total_seconds():.2f} s (ratio "
        f"{resumed / fresh:.2f}); SIGKILL to redelivery "
        f"{(starts[1].occurred_at - killed_at).total_seconds():.1f} s (a new worker process "
        f"plus the visibility timeout, {args.visibility_s:.0f} s here)"
    )


def _artifact_dir(directory: Path, size_mib: int, run_id: str, manifest: Manifest) -> Path:
    """A run directory of `size_mib` MiB of incompressible weights and a manifest."""
    directory.mkdir(parents=True)
    with (directory / "model.safetensors").open("wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(MIB))
    manifest.model_copy(update={"run_id": run_id}).write(directory / MANIFEST_FILE)
    return directory


def _write_tar(directory: Path, target: Path) -> Path:
    with target.open("wb") as out:
        for chunk in tar_stream(directory):
            out.write(chunk)
    return target


def _curl_upload(bank_url: str, tar: Path) -> float:
    command = ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{time_total}",
               "-H", f"X-API-Key: {KEY}", "-F", f"file=@{tar};type=application/x-tar",
               f"{bank_url}/files"]  # fmt: skip
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def _pointer_seconds(
    client: redis.Redis, api: httpx.Client, run_id: str, manifest: Manifest
) -> tuple[float, float]:
    """Seconds from appending `training.completed` to the pointer readable through the API,
    and the seconds of the upload itself (as `artifact.uploaded` reports them).

    Waiting costs no CPU during the upload (a blocking read of `stream:pointer`); the API is
    polled only once the pointer event exists, for the projector's last step.
    """
    log = EventLog(client)
    last = client.xrevrange(names.POINTER_STREAM, count=1)
    after = text(last[0][0]) if last else "0-0"
    payload = TrainingCompletedPayload(node_id=NODE, metrics=manifest.metrics)
    started = time.perf_counter()
    log.append(TrainingCompleted(correlation_id=run_id, payload=payload))
    client.xread({names.POINTER_STREAM: after}, count=1, block=600_000)

    def readable() -> bool:
        return api.get(f"/runs/{run_id}/artifact").status_code == 200

    _wait(readable, 600, "the pointer", every=0.0005)
    seconds = time.perf_counter() - started
    uploads = [entry.event() for entry in log.read_correlation(run_id)]
    [upload] = [event for event in uploads if isinstance(event, ArtifactUploaded)]
    return seconds, upload.payload.seconds


def upload_to_pointer(
    client: redis.Redis,
    services: Services,
    root: Path,
    manifest: Manifest,
    args: argparse.Namespace,
) -> None:
    """Part 2: `training.completed` -> pointer through the API, against curl; fresh random
    content each time (no deduplication), alternating which goes first, best of rounds."""
    models = root / "artifacts" / "models"
    workers: list[float] = []
    curls: list[float] = []
    print(f"upload to pointer: {args.artifact_mib} MiB artifact")
    with httpx.Client(base_url=services.api_url, timeout=30) as api:
        for round_ in range(1, args.upload_rounds + 1):
            run_id = f"upload-{uuid.uuid4().hex[:8]}"
            _artifact_dir(models / run_id, args.artifact_mib, run_id, manifest)
            other = _artifact_dir(root / f"curl-{run_id}", args.artifact_mib, run_id, manifest)
            tar = _write_tar(other, root / f"{run_id}.tar")
            if round_ % 2:
                curl = _curl_upload(services.bank_url, tar)
                worker, upload = _pointer_seconds(client, api, run_id, manifest)
            else:
                worker, upload = _pointer_seconds(client, api, run_id, manifest)
                curl = _curl_upload(services.bank_url, tar)
            workers.append(worker)
            curls.append(curl)
            print(
                f"  round {round_}: completed->pointer {worker:.3f} s "
                f"(upload {upload:.3f} s + log/projector/API {worker - upload:.3f} s)   "
                f"curl upload {curl:.3f} s"
            )
            shutil.rmtree(other)
            tar.unlink()
            shutil.rmtree(models / run_id)
    ratio = min(workers) / min(curls)
    verdict = "ok" if ratio <= UPLOAD_TARGET else "ABOVE TARGET"
    print(
        f"  best: completed->pointer {min(workers):.3f} s, curl {min(curls):.3f} s, "
        f"ratio {ratio:.3f} (target <= {UPLOAD_TARGET}) {verdict}; "
        f"median ratio {statistics.median(workers) / statistics.median(curls):.3f}"
    )


def main() -> None:
    """Run both parts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads, worker and plain loop alike"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-head", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--corpus-lines", type=int, default=4000)
    parser.add_argument("--artifact-mib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5, help="training rounds")
    parser.add_argument("--upload-rounds", type=int, default=5)
    parser.add_argument("--checkpoint-every", type=int, default=20, help="steps (part 4)")
    parser.add_argument("--visibility-s", type=float, default=3.0, help="redelivery (part 4)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    disable_progress_bar: Callable[[], None] = transformers_logging.disable_progress_bar
    disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as temporary:
        root = Path(temporary)
        with (
            services(root, args.threads) as running,
            DataBankClient(running.bank_url, KEY) as bank,
            connect(running.redis_url) as client,
        ):
            log = EventLog(client)
            env = worker_env(root, running, args.threads)
            with _service(["worker"], env, None, root / "worker.log"):
                throughput(log, bank, root, args)
                any_run = next((root / "artifacts" / "models").iterdir())
                manifest = Manifest.read(any_run / MANIFEST_FILE)
                upload_to_pointer(client, running, root, manifest, args)
            checkpoints(root, any_run, _spec("0" * 64, args), args.rounds)
            resume_from_redelivery(log, bank, root, running, args)


if __name__ == "__main__":
    main()
