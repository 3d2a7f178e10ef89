"""Exercise the trainer's CUDA paths: train a tiny GPT-2 in fp32, bf16, fp16 and `auto`,
resume one from a checkpoint after a crash, and train one on two processes (data parallel).

Each run must report the expected device, finite losses that went down, fp32 weights on disk,
and a saved directory that reloads on CPU, reproduces the reported validation loss and
generates. Also: fp16 on CPU is refused (`PrecisionUnavailable`). Every check runs; the exit
status is 1 when any failed. Timings are informational (each step syncs: progress every step).

    python3 scripts/gpu_check.py [--device cuda|cpu] [--out DIR]

`--device cpu` is a smoke test for a machine without CUDA (fp16 is then skipped). The resume
check crashes a run mid-way (an exception out of `should_stop`, as a SIGKILL leaves it: the
last checkpoint on disk), resumes it and compares with the run that never stopped: byte for
byte on CPU; on CUDA, whose kernels are not all deterministic, final losses within 2%.
The data-parallel check trains the same spec (dropout 0) on one process and on two (`nccl`,
one GPU each: it needs two GPUs, and is skipped on one; `gloo` with `--device cpu`) and
compares the final validation losses: within 1e-3 relative on CPU (the same sums in another
order, a gap that grows with the steps: about 2e-5 after these 200 at a learning rate of 3e-3),
2% on CUDA; every rank must have exited with status 0 and be gone.
The inference generator (`inference/generation.py`) has no device selection: it loads models
on CPU only, so there is no CUDA path of it to exercise here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import random
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, not installed
# the ranks of a data-parallel run are `python -m consumers.rank_process`: they need it too
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [sys.path[0], os.getenv("PYTHONPATH")]))
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local directories only; the GPU machine is offline

import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationMixin,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from consumers.checkpoints import CheckpointStore
from consumers.ranks import RankJob, data_parallel
from consumers.tokenizer import train_tokenizer
from consumers.trainer import (
    Checkpointing,
    DeviceUnavailable,
    PrecisionUnavailable,
    Progress,
    encode_corpus,
    split_blocks,
    train_model,
)
from events import ModelSpec, TokenizerParams, TrainingParams, TrainingSpec

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["fp32", "bf16", "fp16"]
STEPS = 200
SEQUENCE_LENGTH = 32
BATCH_SIZE = 8
HOLDOUT = 0.1
VAL_LOSS_TOLERANCE = 0.05
"""Relative gap allowed between the reported val loss and the one recomputed on CPU in fp32."""


@dataclass
class Row:
    """One training run, as the table shows it."""

    run: str
    device: str = "-"
    first_loss: float = math.nan
    train_loss: float = math.nan
    val_loss: float = math.nan
    perplexity: float = math.nan
    cpu_val_loss: float = math.nan
    steps_per_s: float = math.nan
    tokens_per_s: float = math.nan
    peak_mib: float = math.nan
    sample: str = ""
    failed: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Every check's outcome: failures are collected, never raised."""

    rows: list[Row] = field(default_factory=list)
    checks: list[tuple[str, str, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "", row: Row | None = None) -> None:
        """Record one check; a failed one is also noted on its run's row."""
        self.checks.append((name, "ok" if ok else "FAIL", detail))
        if not ok and row is not None:
            row.failed.append(name.rsplit(": ", 1)[-1])

    def skip(self, name: str, why: str) -> None:
        """Record a check that does not apply here."""
        self.checks.append((name, "skip", why))

    @property
    def failures(self) -> list[str]:
        """`name: detail` of every failed check."""
        return [f"{name}: {detail}" for name, status, detail in self.checks if status == "FAIL"]


def make_corpus(path: Path, sentences: int = 600) -> None:
    """A few KB of seeded, repetitive English: learned within a few hundred steps."""
    rng = random.Random(0)
    subjects = ["the cat", "a dog", "the old man", "my sister", "the robot", "a small bird"]
    verbs = ["sees", "likes", "carries", "paints", "follows", "finds"]
    objects = ["the red ball", "a green box", "the blue house", "a long road", "the tall tree"]
    lines = (
        f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.\n"
        for _ in range(sentences)
    )
    path.write_text("".join(lines), encoding="utf-8")


def spec_for(device: Device, precision: Precision) -> TrainingSpec:
    """A tiny model (2 layers, 64 dims) for `STEPS` steps on the given device and precision."""
    return TrainingSpec(
        corpus_file_id="0" * 64,
        model=ModelSpec(size="tiny"),
        training=TrainingParams(
            max_steps=STEPS,
            batch_size=BATCH_SIZE,
            learning_rate=3e-3,
            sequence_length=SEQUENCE_LENGTH,
            holdout_fraction=HOLDOUT,
            device=device,
            precision=precision,
        ),
    )


def number(value: float | None) -> float:
    """`value`, with None as NaN."""
    return math.nan if value is None else value


def finite(*values: float | None) -> bool:
    """Whether every value is a finite float."""
    return all(value is not None and math.isfinite(value) for value in values)


def train_run(
    report: Report,
    row: Row,
    work: Path,
    tokenizer: PreTrainedTokenizerFast,
    name: str,
    device: Device,
    precision: Precision,
    expected: str,
) -> None:
    """Train once and check the outcome, its files, and a CPU reload of them."""
    corpus, out_dir = work / "corpus.txt", work / name
    progress: list[Progress] = []
    if expected == "cuda":
        torch.cuda.reset_peak_memory_stats()
    outcome = train_model(
        corpus,
        tokenizer,
        spec_for(device, precision),
        out_dir,
        should_stop=lambda: False,
        on_progress=progress.append,
        progress_every=0.0,  # every step: the first step's loss is the baseline
    )
    row.device, metrics = outcome.device, outcome.metrics
    row.first_loss = progress[0].loss if progress else math.nan
    row.train_loss, row.val_loss = number(metrics.train_loss), number(metrics.val_loss)
    row.perplexity, row.tokens_per_s = number(metrics.perplexity), metrics.tokens_per_second
    row.steps_per_s = metrics.steps / max(metrics.seconds, 1e-9)
    if expected == "cuda":
        row.peak_mib = torch.cuda.max_memory_allocated() / 2**20
        report.check(f"{name}: used GPU memory", row.peak_mib > 0, f"{row.peak_mib:.1f} MiB", row)
    report.check(f"{name}: device", outcome.device == expected, outcome.device, row)
    report.check(f"{name}: steps", metrics.steps == STEPS, str(metrics.steps), row)
    losses = (row.first_loss, metrics.train_loss, metrics.val_loss, metrics.perplexity)
    report.check(f"{name}: finite losses", finite(*losses), str(losses), row)
    report.check(
        f"{name}: loss went down",
        row.train_loss < row.first_loss and row.val_loss < row.first_loss,
        f"first {row.first_loss:.3f} -> train {row.train_loss:.3f}, val {row.val_loss:.3f}",
        row,
    )
    weights = load_file(out_dir / "model.safetensors")
    dtypes = sorted({str(tensor.dtype) for tensor in weights.values()})
    report.check(f"{name}: fp32 on disk", dtypes == ["torch.float32"], ",".join(dtypes), row)
    reload_check(report, row, out_dir, corpus, tokenizer)


def reload_check(
    report: Report, row: Row, out_dir: Path, corpus: Path, tokenizer: PreTrainedTokenizerFast
) -> None:
    """Load the saved directory on CPU as the inference service does; recompute val loss, generate."""
    model = AutoModelForCausalLM.from_pretrained(out_dir, use_safetensors=True)
    assert isinstance(model, PreTrainedModel)
    assert isinstance(model, GenerationMixin)
    model.train(False)
    loaded = AutoTokenizer.from_pretrained(out_dir)
    _, holdout = split_blocks(encode_corpus(corpus, tokenizer), SEQUENCE_LENGTH, HOLDOUT)
    with torch.inference_mode():
        batch = holdout.long()
        row.cpu_val_loss = float(model(input_ids=batch, labels=batch).loss)
        prompt = loaded("the cat", return_tensors="pt")
        output = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    gap = abs(row.cpu_val_loss - row.val_loss) / max(abs(row.val_loss), 1e-9)
    report.check(
        f"{row.run}: CPU reload reproduces val loss",
        gap <= VAL_LOSS_TOLERANCE,
        f"cpu {row.cpu_val_loss:.4f} vs reported {row.val_loss:.4f} ({gap:.1%})",
        row,
    )
    assert isinstance(output, torch.Tensor)
    new_tokens = output.shape[1] - prompt["input_ids"].shape[1]
    texts: list[str] = loaded.batch_decode(output, skip_special_tokens=True)
    row.sample = texts[0].replace("\n", " ")[:40]
    report.check(f"{row.run}: CPU reload generates", new_tokens > 0, repr(row.sample), row)


def refusal_checks(report: Report, work: Path, tokenizer: PreTrainedTokenizerFast) -> None:
    """fp16 on CPU, and `cuda` without CUDA, are refused before any training."""
    cases: list[tuple[str, Device, type[Exception]]] = [
        ("cpu fp16 refused", "cpu", PrecisionUnavailable)
    ]
    if not torch.cuda.is_available():
        cases.append(("cuda without CUDA refused", "cuda", DeviceUnavailable))
    for name, device, error in cases:
        try:
            train_model(
                work / "corpus.txt",
                tokenizer,
                spec_for(device, "fp16"),
                work / "refused",
                should_stop=lambda: False,
                on_progress=lambda _: None,
            )
        except error as raised:
            report.check(name, True, f"{type(raised).__name__}: {raised}")
        except Exception as raised:
            report.check(name, False, f"wrong error {type(raised).__name__}: {raised}")
        else:
            report.check(name, False, f"trained instead of raising {error.__name__}")
    report.check("nothing saved on refusal", not (work / "refused").exists())


class _Crash(Exception):  # noqa: N818 - stands for a SIGKILL, not an error
    """Ends a run where it is, as a kill would."""


def _resume_run(
    work: Path,
    tokenizer: PreTrainedTokenizerFast,
    device: Device,
    name: str,
    plan: Checkpointing,
    crash: bool = False,
) -> tuple[Path, float]:
    steps = iter(range(1, STEPS + 1))

    def crash_mid_way() -> bool:
        if crash and next(steps) == STEPS // 2 + 7:
            raise _Crash
        return False

    outcome = train_model(
        work / "corpus.txt",
        tokenizer,
        spec_for(device, "fp32"),
        work / name,
        should_stop=crash_mid_way,
        on_progress=lambda _: None,
        checkpointing=plan,
    )
    return work / name / "model.safetensors", number(outcome.metrics.val_loss)


def resume_check(
    report: Report, work: Path, tokenizer: PreTrainedTokenizerFast, device: Device
) -> None:
    """Crash a run after a checkpoint, resume it, compare with the run that never stopped."""
    store = CheckpointStore(work / "checkpoints")
    straight, straight_loss = _resume_run(
        work, tokenizer, device, "straight", Checkpointing(CheckpointStore(work / "unused"))
    )
    with contextlib.suppress(_Crash):
        plan = Checkpointing(store, every_steps=25)
        _resume_run(work, tokenizer, device, "crashed", plan, crash=True)
    latest = store.latest()
    report.check("resume: a checkpoint survived the crash", latest is not None)
    if latest is None:
        return
    plan = Checkpointing(store, every_steps=25, resume=latest)
    resumed, resumed_loss = _resume_run(work, tokenizer, device, "resumed", plan)
    if device == "cpu":
        same = resumed.read_bytes() == straight.read_bytes()
        report.check("resume: weights byte-identical", same, f"resumed at step {latest.step}")
    else:
        close = abs(resumed_loss - straight_loss) <= 0.02 * abs(straight_loss)
        detail = f"val loss {resumed_loss:.4f} vs {straight_loss:.4f}, step {latest.step}"
        report.check("resume: final loss within 2%", close, detail)


class _RankExits(logging.Handler):
    """Collects (pid, exit status) of the ranks `consumers.ranks` reports ended."""

    def __init__(self) -> None:
        super().__init__()
        self.exits: list[tuple[int, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep a `rank_exited` record's pid and status."""
        pid, status = getattr(record, "pid", None), getattr(record, "exit_status", None)
        if getattr(record, "event", None) == "rank_exited":
            self.exits.append((int(str(pid)), int(str(status))))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def data_parallel_check(
    report: Report, work: Path, tokenizer: PreTrainedTokenizerFast, device: Device
) -> None:
    """`processes: 2` against one process with the same global batch: the same validation
    loss; every rank gone once the run returns."""
    gpus = torch.cuda.device_count()
    if device == "cuda" and gpus < 2:
        why = f"nccl needs one GPU per process: 2 GPUs; this machine has {gpus}"
        report.skip("processes > 1", why)
        return
    exits = _RankExits()
    ranks_log = logging.getLogger("consumers.ranks")
    ranks_log.addHandler(exits)
    ranks_log.setLevel(logging.INFO)
    losses: dict[int, float] = {}
    try:
        for processes in (1, 2):
            base = spec_for(device, "fp32")
            spec = base.model_copy(
                update={
                    "model": base.model.model_copy(update={"dropout": 0.0}),
                    "training": base.training.model_copy(update={"processes": processes}),
                }
            )
            job = RankJob("gpu-check", work / "corpus.txt", spec, work / f"ddp-{processes}-tok")
            started = time.perf_counter()
            with data_parallel(job, tokenizer, lambda: False) as group:
                outcome = train_model(
                    work / "corpus.txt",
                    tokenizer,
                    spec,
                    work / f"ddp-{processes}",
                    should_stop=lambda: False,
                    on_progress=lambda _: None,
                    group=group,
                )
            losses[processes] = number(outcome.metrics.val_loss)
            print(f"processes={processes}: {time.perf_counter() - started:.1f}s", flush=True)
    finally:
        ranks_log.removeHandler(exits)
    one, two = losses[1], losses[2]
    gap = abs(two - one) / max(abs(one), 1e-9)
    tolerance = 1e-3 if device == "cpu" else 0.02
    detail = f"val loss {two:.6f} vs {one:.6f} on one process ({gap:.1e}, at most {tolerance:g})"
    report.check("processes=2: val loss of one process", gap <= tolerance, detail)
    clean = bool(exits.exits) and all(status == 0 for _, status in exits.exits)
    report.check("processes=2: ranks exited with status 0", clean, str(exits.exits))
    left = [pid for pid, _ in exits.exits if _alive(pid)]
    report.check("processes=2: no rank left", not left, f"still running: {left}")


def environment(device: str) -> dict[str, str]:
    """Versions and hardware, for the log."""
    info = {"python": platform.python_version(), "device": device}
    for package in ("torch", "transformers", "tokenizers", "pydantic", "typing_extensions"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = "?"
    if torch.cuda.is_available():
        info["cuda"] = f"{torch.version.cuda} on {torch.cuda.get_device_name()}"
    return info


def table(report: Report) -> str:
    """The runs and the checks, as aligned text."""
    head = "run    device  first  train    val    ppl  cpuval  steps/s    tok/s  peakMiB  result"
    lines = [head, "-" * len(head)]
    for r in report.rows:
        result = "ok" if not r.failed else "FAIL " + ",".join(r.failed)
        lines.append(
            f"{r.run:<6} {r.device:<6} {r.first_loss:6.3f} {r.train_loss:6.3f} {r.val_loss:6.3f} "
            f"{r.perplexity:6.2f} {r.cpu_val_loss:7.3f} {r.steps_per_s:8.1f} "
            f"{r.tokens_per_s:8.0f} {r.peak_mib:8.1f}  {result}"
        )
    lines.append("")
    lines.extend(f"{status:<4}  {name}  {detail}" for name, status, detail in report.checks)
    return "\n".join(lines)


def main() -> int:
    """Run every check, print the table, write the log; 1 when any check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--out", type=Path, help="write gpu_check.json and gpu_check.txt here")
    args = parser.parse_args()
    device: Literal["cuda", "cpu"] = args.device
    info = environment(device)
    print(json.dumps(info))
    report = Report()
    if device == "cuda" and not torch.cuda.is_available():
        report.check("CUDA available", False, "torch.cuda.is_available() is False")
    auto_expected = "cuda" if torch.cuda.is_available() else "cpu"
    runs: list[tuple[str, Device, Precision, str]] = [
        ("fp32", device, "fp32", device),
        ("bf16", device, "bf16", device),
        ("fp16", device, "fp16", device),
        ("auto", "auto", "fp32", auto_expected),
    ]
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        work = Path(tmp)
        make_corpus(work / "corpus.txt")
        tokenizer = train_tokenizer(
            work / "corpus.txt", TokenizerParams(vocab_size=300), work / "tokenizer"
        )
        if device == "cuda" and torch.cuda.is_available():
            torch.ones(64, 64, device="cuda").matmul(torch.ones(64, 64, device="cuda")).sum().item()
        for name, run_device, precision, expected in runs:
            if precision == "fp16" and device == "cpu":
                report.skip(f"{name}: train", "fp16 trains on CUDA only")
                continue
            started, row = time.perf_counter(), Row(run=name)
            report.rows.append(row)
            try:
                train_run(report, row, work, tokenizer, name, run_device, precision, expected)
            except Exception:
                report.check(f"{name}: run", False, traceback.format_exc(limit=-3).strip(), row)
            print(f"{name}: {time.perf_counter() - started:.1f}s", flush=True)
        refusal_checks(report, work, tokenizer)
        resume_check(report, work, tokenizer, device)
        try:
            data_parallel_check(report, work, tokenizer, device)
        except Exception:
            report.check("processes=2: run", False, traceback.format_exc(limit=-3).strip())
    report.skip("inference on cuda", "inference/generation.py loads models on CPU only")
    text = table(report)
    failures = report.failures
    text += f"\n\n{'FAILED: ' + str(len(failures)) + ' check(s)' if failures else 'ALL OK'}"
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.txt").write_text(json.dumps(info) + "\n" + text + "\n")
        rows = [{k: None if v != v else v for k, v in asdict(r).items()} for r in report.rows]
        log = {"environment": info, "rows": rows}  # NaN (v != v) is not JSON: null
        log["checks"] = [
            dict(zip(("name", "status", "detail"), c, strict=True)) for c in report.checks
        ]
        (args.out / "gpu_check.json").write_text(json.dumps(log, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
