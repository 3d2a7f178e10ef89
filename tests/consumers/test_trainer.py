"""Training a tiny GPT-2: deterministic on CPU, cancellable, rate-limited progress, loadable files."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Literal

import pytest
import torch
from pydantic import JsonValue
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from consumers.tokenizer import CorpusError
from consumers.trainer import (
    CancelRequested,
    CorpusTooShort,
    DeviceUnavailable,
    PrecisionUnavailable,
    Progress,
    TrainingError,
    TrainingOutcome,
    autocast_dtype,
    encode_corpus,
    resolve_device,
    split_blocks,
    train_model,
)
from events.specs import ModelSpec, TrainingParams, TrainingSpec

FILE_ID = "cd" * 32
SAVED_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
}


def make_spec(**training: JsonValue) -> TrainingSpec:
    """A one-layer model on 32-token blocks, on CPU, a few steps unless told otherwise."""
    defaults: dict[str, JsonValue] = {
        "batch_size": 4,
        "sequence_length": 32,
        "device": "cpu",
        "max_steps": 4,
    }
    return TrainingSpec(
        corpus_file_id=FILE_ID,
        model=ModelSpec(n_layer=1, n_head=2, n_embd=32),
        training=TrainingParams.model_validate(defaults | training),
    )


def never() -> bool:
    return False


def train(
    corpus: Path,
    tokenizer: PreTrainedTokenizerFast,
    out_dir: Path,
    spec: TrainingSpec | None = None,
    progress: list[Progress] | None = None,
    progress_every: float = 0.0,
) -> TrainingOutcome:
    reports = [] if progress is None else progress
    return train_model(
        corpus,
        tokenizer,
        spec or make_spec(),
        out_dir,
        should_stop=never,
        on_progress=reports.append,
        progress_every=progress_every,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_block_count(corpus: Path, tokenizer: PreTrainedTokenizerFast, spec: TrainingSpec) -> int:
    params = spec.training
    ids = encode_corpus(corpus, tokenizer)
    return len(split_blocks(ids, params.sequence_length, params.holdout_fraction)[0])


def test_same_seed_gives_same_losses_and_same_weights(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    first = train(corpus, tokenizer, tmp_path / "first")
    second = train(corpus, tokenizer, tmp_path / "second")
    other_seed = train(corpus, tokenizer, tmp_path / "other", make_spec(seed=1))

    assert first.metrics.train_loss == second.metrics.train_loss
    assert first.metrics.val_loss == second.metrics.val_loss
    weights = "model.safetensors"
    assert sha256(first.directory / weights) == sha256(second.directory / weights)
    assert sha256(first.directory / weights) != sha256(other_seed.directory / weights)


def test_saved_run_loads_with_transformers_and_generates_text(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    outcome = train(corpus, tokenizer, tmp_path / "run")

    model = AutoModelForCausalLM.from_pretrained(outcome.directory)
    loaded = AutoTokenizer.from_pretrained(outcome.directory)
    prompt = loaded("The quick", return_tensors="pt")["input_ids"]
    generated = model.generate(prompt, max_new_tokens=8, do_sample=False)
    text = loaded.decode(generated[0])

    assert {path.name for path in outcome.directory.iterdir()} == SAVED_FILES
    assert isinstance(text, str)
    assert text.startswith("The quick")
    assert generated.shape[1] > prompt.shape[1]
    assert outcome.model["n_layer"] == 1
    assert outcome.model["n_positions"] == 32
    assert outcome.model["vocab_size"] == len(tokenizer)
    assert outcome.model["eos_token_id"] == tokenizer.eos_token_id
    assert outcome.device == "cpu"


def test_metrics_add_up(corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path) -> None:
    metrics = train(corpus, tokenizer, tmp_path / "run").metrics

    assert (metrics.steps, metrics.tokens) == (4, 4 * 4 * 32)
    assert metrics.tokens_per_second == pytest.approx(metrics.tokens / metrics.seconds)
    assert metrics.train_loss is not None
    assert metrics.val_loss is not None
    assert math.isfinite(metrics.train_loss)
    assert metrics.perplexity == pytest.approx(math.exp(metrics.val_loss))


def test_epochs_set_the_length_and_one_epoch_is_the_default(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    one = make_spec(max_steps=None)
    two = make_spec(max_steps=None, epochs=2)
    blocks = train_block_count(corpus, tokenizer, one)

    default = train(corpus, tokenizer, tmp_path / "one", one).metrics
    twice = train(corpus, tokenizer, tmp_path / "two", two).metrics

    assert default.steps == math.ceil(blocks / 4)
    assert default.tokens == blocks * 32
    assert twice.steps == 2 * default.steps
    assert twice.tokens == 2 * blocks * 32


def test_progress_is_reported_at_most_at_the_asked_rate_and_at_the_end(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    every: list[Progress] = []
    bounded: list[Progress] = []

    train(corpus, tokenizer, tmp_path / "every", progress=every, progress_every=0.0)
    train(corpus, tokenizer, tmp_path / "bounded", progress=bounded, progress_every=math.inf)

    assert [report.step for report in every] == [1, 2, 3, 4]
    assert [(report.step, report.total_steps) for report in bounded] == [(4, 4)]
    assert bounded[0].eta_seconds == 0
    assert every[0].eta_seconds > 0
    assert all(report.tokens_per_second > 0 and math.isfinite(report.loss) for report in every)


def test_should_stop_cancels_between_steps_and_saves_nothing(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    answers = iter([False, False, True])
    progress: list[Progress] = []

    with pytest.raises(CancelRequested, match="after 2 of 4 steps"):
        train_model(
            corpus,
            tokenizer,
            make_spec(),
            tmp_path / "run",
            should_stop=lambda: next(answers),
            on_progress=progress.append,
            progress_every=0.0,
        )
    assert [report.step for report in progress] == [1, 2]
    assert not (tmp_path / "run").exists()


def test_without_holdout_there_is_no_validation_loss(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    metrics = train(corpus, tokenizer, tmp_path / "run", make_spec(holdout_fraction=0)).metrics

    assert (metrics.val_loss, metrics.perplexity) == (None, None)
    assert metrics.train_loss is not None


def test_bf16_trains_on_cpu_through_autocast(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    outcome = train(corpus, tokenizer, tmp_path / "run", make_spec(precision="bf16", max_steps=2))

    assert outcome.metrics.val_loss is not None
    assert math.isfinite(outcome.metrics.val_loss)
    assert outcome.model["dtype"] == "float32"


def test_fp16_on_cpu_is_refused_before_any_work(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    with pytest.raises(PrecisionUnavailable, match="fp16"):
        train(corpus, tokenizer, tmp_path / "run", make_spec(precision="fp16"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "0 tokens make 0 blocks"),
        ("Short.\n", "make 0 blocks of sequence_length=32; training needs 2"),
    ],
)
def test_a_corpus_too_short_for_training_is_refused(
    text: str, message: str, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text)

    with pytest.raises(CorpusTooShort, match=message) as caught:
        train(corpus, tokenizer, tmp_path / "run")
    assert isinstance(caught.value, CorpusError)


def test_encode_corpus_concatenates_the_lines(
    corpus: Path, tokenizer: PreTrainedTokenizerFast
) -> None:
    ids = encode_corpus(corpus, tokenizer)

    lines = corpus.read_text().splitlines(keepends=True)
    assert ids.dtype == torch.int32
    assert ids.tolist() == [i for line in lines for i in tokenizer.encode(line)]


@pytest.mark.parametrize(
    ("count", "fraction", "split"),
    [(10, 0.1, (9, 1)), (30, 0.1, (27, 3)), (2, 0.01, (1, 1)), (5, 0.0, (5, 0))],
)
def test_split_blocks_holds_out_the_tail(
    count: int, fraction: float, split: tuple[int, int]
) -> None:
    ids = torch.arange(count * 8 + 3, dtype=torch.int32)

    train_blocks, holdout = split_blocks(ids, 8, fraction)

    assert (len(train_blocks), len(holdout)) == split
    assert torch.equal(torch.cat([train_blocks, holdout]).flatten(), ids[: count * 8])


def test_split_blocks_needs_one_block_to_train() -> None:
    with pytest.raises(CorpusTooShort, match="1 to train, 1 held out"):
        split_blocks(torch.arange(15, dtype=torch.int32), 8, 0.5)


@pytest.mark.parametrize(
    ("requested", "cuda_available", "expected"),
    [
        ("cpu", True, "cpu"),
        ("cpu", False, "cpu"),
        ("auto", True, "cuda"),
        ("auto", False, "cpu"),
        ("cuda", True, "cuda"),
    ],
)
def test_resolve_device(
    requested: Literal["auto", "cpu", "cuda"], cuda_available: bool, expected: str
) -> None:
    device = resolve_device(requested, cuda_available=cuda_available)

    assert device == torch.device(expected)


def test_cuda_asked_without_cuda_is_an_error() -> None:
    with pytest.raises(DeviceUnavailable, match="CUDA is not available") as caught:
        resolve_device("cuda", cuda_available=False)
    assert isinstance(caught.value, TrainingError)


def test_autocast_dtype_per_device_and_precision() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")

    assert autocast_dtype(cpu, "fp32") is None
    assert autocast_dtype(cuda, "fp32") is None
    assert autocast_dtype(cpu, "bf16") == torch.bfloat16
    assert autocast_dtype(cuda, "bf16") == torch.bfloat16
    assert autocast_dtype(cuda, "fp16") == torch.float16
    with pytest.raises(PrecisionUnavailable):
        autocast_dtype(cpu, "fp16")
