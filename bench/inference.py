"""The inference service against transformers called directly, on a tiny model trained by the
pipeline.

    python bench/inference.py
    python bench/inference.py --requests 200 --rounds 5 --threads 2

1. Cold start: a fresh `trainledger inference` with an empty cache answering its first
   `POST /generate` of one new token (resolve the run's pointer, download, verify, extract,
   load, first token), against `from_pretrained` + the first token on an already extracted
   copy, in a fresh process that has imported transformers (as the service has before it
   answers). No target: the service's extra is the download, verification and extraction.
2. Warm latency: p50/p99 of `--requests` generations of 32 new tokens (greedy) through
   `POST /generate`, against `generate` on the same model loaded in this process, requests
   interleaved one by one. Target: ratio <= 1.1 at p50 and p99.
3. Throughput: tokens/s of 8 requests of 32 new tokens sent at once, against the same 8 sent
   one by one, both through the service (which batches concurrent requests for one model).
   Target: ratio >= 2.

The engine is a private one; Data Bank, the projector, a worker (which trains the model and
uploads it) and the inference service run as `trainledger` processes, as deployed. Torch runs
`--threads` threads in the service and in this process alike. Best of `--rounds` for cold
start and throughput (the machine is shared). Everything lives in a temporary directory
removed at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import torch
from pydantic import BaseModel, ConfigDict
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationMixin,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as transformers_logging

from databank import ArtifactFetcher, DataBankClient
from events import (
    EventLog,
    LocalEngine,
    ModelSpec,
    TokenizerParams,
    TrainingParams,
    TrainingRequested,
    TrainingSpec,
    connect,
)
from events.engine import free_port
from projections import ReadModel

KEY = "bench-key"
SIGNING_KEY = "bench-signing-key-" + "0" * 46
NEW_TOKENS = 32
CONCURRENT = 8
LATENCY_TARGET = 1.1
THROUGHPUT_TARGET = 2.0
_WORDS = ("the", "a", "fox", "dog", "runs", "over", "lazy", "river", "tree", "sky", "blue",
          "cat", "sits", "on", "mat", "quick", "brown", "jumps", "under", "green")  # fmt: skip
PROMPTS = (
    "The quick brown fox",
    "A lazy dog sits on",
    "The river runs under",
    "Blue sky over the green tree",
    "A cat jumps over",
    "The brown dog runs",
    "Green trees and a blue",
    "The fox sits on the mat and",
)


@dataclass(frozen=True)
class Services:
    """Addresses of the running pieces, and where the service processes write."""

    redis_url: str
    bank_url: str
    root: Path


class Usage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    generated_tokens: int


class Timings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    resolve_s: float
    fetch_s: float
    load_s: float
    run_s: float


class Answer(BaseModel):
    """What this bench reads of a `POST /generate` answer (counts and timings when given)."""

    model_config = ConfigDict(extra="ignore")

    text: str
    usage: Usage | None = None
    timings: Timings | None = None


@dataclass(frozen=True)
class Direct:
    """The model loaded in this process, for the baselines."""

    model: GenerationMixin
    tokenizer: PreTrainedTokenizerBase

    def generate(self, prompt: str, new_tokens: int) -> tuple[str, int]:
        """Greedy continuation, as the service decodes: the text and the new tokens' count."""
        encoded = self.tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            output = self.model.generate(
                **encoded,
                max_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.eos_token_id,
            )
        texts: list[str] = self.tokenizer.batch_decode(output, skip_special_tokens=True)
        return texts[0], int(output.shape[1] - encoded["input_ids"].shape[1])


def _load(directory: Path) -> Direct:
    model = AutoModelForCausalLM.from_pretrained(directory, use_safetensors=True)
    assert isinstance(model, PreTrainedModel)
    assert isinstance(model, GenerationMixin)
    model.train(False)
    return Direct(model, AutoTokenizer.from_pretrained(directory))


def _quiet(threads: int) -> None:
    torch.set_num_threads(threads)
    disable_progress_bar: Callable[[], None] = transformers_logging.disable_progress_bar
    disable_progress_bar()


def _cold_direct(directory: str, prompt: str, threads: int) -> float:
    """In a fresh process (transformers imported): seconds of `from_pretrained` + one token."""
    _quiet(threads)
    started = time.perf_counter()
    _load(Path(directory)).generate(prompt, 1)
    return time.perf_counter() - started


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
        time.sleep(0.05)


@contextmanager
def _service(args: list[str], env: dict[str, str], ready: str | None, log: Path) -> Iterator[None]:
    """`trainledger <args>` as a process until the block ends (stopped by PID); output to `log`."""
    with log.open("ab") as out:
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
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _bank_env(services: Services) -> dict[str, str]:
    return {
        "REDIS__URL": services.redis_url,
        "APP__DATA_BANK_API_URL": services.bank_url,
        "APP__DATA_BANK_API_KEY": KEY,
        "APP__SIGNING_KEY": SIGNING_KEY,
    }


@contextmanager
def services(root: Path) -> Iterator[Services]:
    """A private engine; Data Bank and the projector as processes."""
    with ExitStack() as stack:
        engine = LocalEngine(root / "engine")
        engine.start()
        stack.callback(engine.stop)
        bank_port = free_port()
        bank_url = f"http://127.0.0.1:{bank_port}"
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
        yield Services(engine.url, bank_url, root)


@contextmanager
def inference(running: Services, cache: Path, threads: int) -> Iterator[str]:
    """`trainledger inference` over `cache` until the block ends; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _bank_env(running) | {
        "INFERENCE__CACHE_DIR": str(cache),
        "OMP_NUM_THREADS": str(threads),  # torch's intra-op threads, as in this process
    }
    log = running.root / "inference.log"
    with _service(["inference", "--port", str(port)], env, f"{url}/healthz", log):
        yield url


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.25)


def train(running: Services, args: argparse.Namespace) -> tuple[str, str]:
    """A tiny model trained and uploaded by a worker; its run id and file id."""
    corpus = running.root / "corpus.txt"
    rng = random.Random(0)
    corpus.write_text(
        "".join(
            " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 16))) + ".\n"
            for _ in range(args.corpus_lines)
        ),
        encoding="utf-8",
    )
    with DataBankClient(running.bank_url, KEY) as bank:
        corpus_id = bank.upload(corpus).file_id
    spec = TrainingSpec(
        corpus_file_id=corpus_id,
        tokenizer=TokenizerParams(vocab_size=512),
        model=ModelSpec(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd),
        training=TrainingParams(
            max_steps=args.steps, batch_size=8, sequence_length=args.context, device="cpu"
        ),
    )
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    worker_env = _bank_env(running) | {
        "APP__NODE_ID": "bench-node",
        "APP__ARTIFACTS_ROOT": str(running.root / "artifacts"),
        "WORKER__TORCH_THREADS": str(args.threads),
    }
    with (
        connect(running.redis_url) as client,
        _service(["worker"], worker_env, None, running.root / "worker.log"),
    ):
        EventLog(client).append(TrainingRequested(correlation_id=run_id, payload=spec))
        reads = ReadModel(client)
        _wait(lambda: reads.run_artifact(run_id) is not None, 600, f"run {run_id}'s artifact")
        pointer = reads.run_artifact(run_id)
    assert pointer is not None
    return run_id, pointer.file_id


def _post(http: httpx.Client, run_id: str, prompt: str, new_tokens: int) -> tuple[Answer, float]:
    body = {"run_id": run_id, "prompt": prompt, "max_new_tokens": new_tokens}
    started = time.perf_counter()
    answer = http.post("/generate", json=body)
    seconds = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"POST /generate answered {answer.status_code}: {answer.text}")
    return Answer.model_validate_json(answer.content), seconds


def cold_start(
    running: Services, run_id: str, extracted: Path, args: argparse.Namespace, stack: ExitStack
) -> str:
    """Part 1; leaves the last round's service running for the others and returns its URL."""
    print("cold start (resolve + download + verify + extract + load + first token):")
    context = multiprocessing.get_context("spawn")
    services_s: list[float] = []
    directs: list[float] = []
    url = ""
    for round_ in range(1, args.rounds + 1):
        with ExitStack() as round_stack:
            cache = running.root / f"cache-{round_}"
            url = round_stack.enter_context(inference(running, cache, args.threads))
            with httpx.Client(base_url=url, timeout=120) as http:
                answer, seconds = _post(http, run_id, PROMPTS[0], 1)
            if round_ == args.rounds:  # the last one serves the other parts
                stack.enter_context(round_stack.pop_all())
        with context.Pool(1) as pool:
            direct = pool.apply(_cold_direct, (str(extracted), PROMPTS[0], args.threads))
        services_s.append(seconds)
        directs.append(direct)
        split = ""
        if answer.timings is not None:
            timed = answer.timings
            split = (
                f" (resolve {timed.resolve_s:.3f}, fetch {timed.fetch_s:.3f}, "
                f"load {timed.load_s:.3f}, run {timed.run_s:.3f})"
            )
        print(
            f"  round {round_}: service {seconds:.3f} s{split}   "
            f"from_pretrained + first token {direct:.3f} s"
        )
    print(
        f"  best: service {min(services_s):.3f} s, direct {min(directs):.3f} s, "
        f"ratio {min(services_s) / min(directs):.2f} (no target: the service also resolves, "
        "downloads, verifies and extracts)"
    )
    return url


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def warm_latency(url: str, run_id: str, direct: Direct, requests: int) -> None:
    """Part 2: service and direct generate, interleaved request by request."""
    served: list[float] = []
    directs: list[float] = []
    same = 0
    with httpx.Client(base_url=url, timeout=120) as http:
        _post(http, run_id, PROMPTS[1], NEW_TOKENS)  # warm both paths once
        direct.generate(PROMPTS[1], NEW_TOKENS)
        for index in range(requests):
            prompt = PROMPTS[index % len(PROMPTS)]
            answer, seconds = _post(http, run_id, prompt, NEW_TOKENS)
            started = time.perf_counter()
            text, _ = direct.generate(prompt, NEW_TOKENS)
            directs.append(time.perf_counter() - started)
            served.append(seconds)
            same += answer.text == text
    ratios = []
    print(f"warm latency, {NEW_TOKENS} new tokens (greedy), {requests} requests:")
    for name, share in (("p50", 0.5), ("p99", 0.99)):
        service_ms = _percentile(served, share) * 1000
        direct_ms = _percentile(directs, share) * 1000
        ratios.append(service_ms / direct_ms)
        print(
            f"  {name}: service {service_ms:7.2f} ms   direct generate {direct_ms:7.2f} ms   "
            f"ratio {service_ms / direct_ms:.3f}"
        )
    verdict = "ok" if max(ratios) <= LATENCY_TARGET else "ABOVE TARGET"
    print(
        f"  target <= {LATENCY_TARGET} at p50 and p99: {verdict}; the service's text equals the "
        f"direct one in {same} of {requests}"
    )


def _tokens(answer: Answer, direct_tokens: dict[str, int], prompt: str) -> int:
    return answer.usage.generated_tokens if answer.usage else direct_tokens[prompt]


def throughput(url: str, run_id: str, direct: Direct, rounds: int) -> None:
    """Part 3: 8 requests at once against the same 8 one by one, through the service."""
    prompts = PROMPTS[:CONCURRENT]
    direct_tokens = {prompt: direct.generate(prompt, NEW_TOKENS)[1] for prompt in prompts}
    at_once: list[float] = []
    one_by_one: list[float] = []
    print(f"throughput, {CONCURRENT} requests of {NEW_TOKENS} new tokens through the service:")
    with (
        httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=16)) as http,
        ThreadPoolExecutor(max_workers=CONCURRENT) as pool,
    ):

        def one(prompt: str) -> int:
            answer, _ = _post(http, run_id, prompt, NEW_TOKENS)
            return _tokens(answer, direct_tokens, prompt)

        for round_ in range(1, rounds + 1):
            started = time.perf_counter()
            tokens = sum(pool.map(one, prompts))
            concurrent_rate = tokens / (time.perf_counter() - started)
            started = time.perf_counter()
            tokens = sum(one(prompt) for prompt in prompts)
            serial_rate = tokens / (time.perf_counter() - started)
            at_once.append(concurrent_rate)
            one_by_one.append(serial_rate)
            print(
                f"  round {round_}: {CONCURRENT} at once {concurrent_rate:8.0f} tokens/s   "
                f"one by one {serial_rate:8.0f} tokens/s"
            )
    ratio = max(at_once) / max(one_by_one)
    verdict = "ok" if ratio >= THROUGHPUT_TARGET else "BELOW TARGET"
    print(
        f"  best: at once {max(at_once):.0f} tokens/s, one by one {max(one_by_one):.0f} "
        f"tokens/s, ratio {ratio:.2f} (target >= {THROUGHPUT_TARGET}) {verdict}; median ratio "
        f"{statistics.median(at_once) / statistics.median(one_by_one):.2f}"
    )


def main() -> None:
    """Train the model, then run the three parts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    parser.add_argument("--requests", type=int, default=100, help="warm latency requests")
    parser.add_argument("--rounds", type=int, default=3, help="cold start and throughput")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-head", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--corpus-lines", type=int, default=2000)
    args = parser.parse_args()
    _quiet(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as temporary:
        root = Path(temporary)
        with services(root) as running, ExitStack() as stack:
            run_id, file_id = train(running, args)
            with DataBankClient(running.bank_url, KEY) as bank:
                extracted = ArtifactFetcher(bank, root / "extracted").fetch(file_id)
            size = sum(path.stat().st_size for path in extracted.iterdir())
            print(
                f"model: GPT-2 (n_layer, n_head, n_embd)=({args.n_layer}, {args.n_head}, "
                f"{args.n_embd}), context {args.context}, trained by the pipeline (run {run_id}, "
                f"artifact {file_id[:12]}, {size / 1e6:.1f} MB extracted), torch threads "
                f"{args.threads}, {os.cpu_count()} CPUs"
            )
            url = cold_start(running, run_id, extracted, args, stack)
            direct = _load(extracted)
            warm_latency(url, run_id, direct, args.requests)
            throughput(url, run_id, direct, args.rounds)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
