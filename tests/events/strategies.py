"""Hypothesis strategies for every event type."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from events import (
    ArtifactPointer,
    ArtifactPointerRevoked,
    ArtifactPointerSet,
    ArtifactUploadDeferred,
    ArtifactUploaded,
    ArtifactUploadedPayload,
    ArtifactUploadFailed,
    ArtifactUploadRequested,
    CancelRequestedPayload,
    Difference,
    Event,
    FailurePayload,
    ModelSpec,
    NodePayload,
    PointerRevokedPayload,
    PointerSetPayload,
    Provenance,
    Reproduction,
    RevivalPayload,
    StartedPayload,
    TokenizerCompleted,
    TokenizerCompletedPayload,
    TokenizerFailed,
    TokenizerParams,
    TokenizerRef,
    TokenizerRequested,
    TokenizerRevived,
    TokenizerSpec,
    TrainingCancelled,
    TrainingCancelRequested,
    TrainingCompleted,
    TrainingCompletedPayload,
    TrainingFailed,
    TrainingMetrics,
    TrainingParams,
    TrainingRequested,
    TrainingRevived,
    TrainingSpec,
    TrainingStarted,
    UploadDeferredPayload,
    UploadFailedPayload,
    UploadRequestedPayload,
)

file_ids = st.text("0123456789abcdef", min_size=64, max_size=64)
run_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
texts = st.text(max_size=40)
floats = st.floats(min_value=0, max_value=1e9, allow_nan=False)
subjects = st.sampled_from(["run", "tokenizer"])
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)

tokenizer_params = st.builds(
    TokenizerParams,
    vocab_size=st.integers(260, 65536),
    min_frequency=st.integers(1, 1000),
)
model_specs = st.one_of(
    st.builds(ModelSpec, size=st.sampled_from(["tiny", "mini", "small"])),
    st.builds(
        lambda layers, heads, width: ModelSpec(n_layer=layers, n_head=heads, n_embd=heads * width),
        st.integers(1, 48),
        st.integers(1, 64),
        st.integers(8, 64),
    ),
)
training_params = st.builds(
    TrainingParams,
    max_steps=st.none() | st.integers(1, 1000),
    batch_size=st.integers(1, 1024),
    learning_rate=st.floats(1e-6, 1),
    sequence_length=st.integers(8, 4096),
    seed=st.integers(0, 2**32 - 1),
    holdout_fraction=st.floats(0, 0.99),
    device=st.sampled_from(["auto", "cpu", "cuda"]),
    precision=st.sampled_from(["fp32", "bf16", "fp16"]),
)
training_specs = st.builds(
    TrainingSpec,
    corpus_file_id=file_ids,
    tokenizer=st.one_of(tokenizer_params, st.builds(TokenizerRef, tokenizer_id=run_ids)),
    model=model_specs,
    training=training_params,
)
metrics = st.builds(
    TrainingMetrics,
    steps=st.integers(0, 10**6),
    tokens=st.integers(0, 10**9),
    seconds=floats,
    tokens_per_second=floats,
    train_loss=st.none() | floats,
    val_loss=st.none() | floats,
    perplexity=st.none() | floats,
)
provenances = st.builds(
    Provenance,
    model_sha256=file_ids,
    device=st.sampled_from(["cpu", "cuda"]),
    threads=st.integers(1, 256),
    versions=st.dictionaries(texts, texts, max_size=5),
)
reproductions = st.builds(
    Reproduction,
    of=run_ids,
    identical=st.none() | st.booleans(),
    differences=st.lists(
        st.builds(
            Difference, name=texts, original=st.none() | texts, reproduction=st.none() | texts
        ),
        max_size=3,
    ),
)
failures = st.builds(FailurePayload, message=texts, error_code=texts)
nodes = st.builds(NodePayload, node_id=texts)
revivals = st.builds(RevivalPayload, failure_id=texts, message=texts)
starts = st.builds(
    StartedPayload,
    node_id=texts,
    attempt=st.integers(1, 9),
    resumed_at_step=st.none() | st.integers(0, 10**6),
)

common: dict[str, st.SearchStrategy[object]] = {
    "correlation_id": run_ids,
    "causation_id": st.none() | texts,
    "occurred_at": times,
}

events: st.SearchStrategy[Event] = st.one_of(
    st.builds(TrainingRequested, payload=training_specs, reproduces=st.none() | run_ids, **common),
    st.builds(TrainingStarted, payload=starts, **common),
    st.builds(
        TrainingCompleted,
        payload=st.builds(
            TrainingCompletedPayload,
            node_id=texts,
            metrics=metrics,
            provenance=st.none() | provenances,
            reproduction=st.none() | reproductions,
        ),
        **common,
    ),
    st.builds(TrainingFailed, payload=failures, **common),
    st.builds(
        TrainingCancelRequested,
        payload=st.builds(CancelRequestedPayload, reason=st.none() | texts),
        **common,
    ),
    st.builds(TrainingCancelled, payload=nodes, **common),
    st.builds(
        TokenizerRequested,
        payload=st.builds(TokenizerSpec, corpus_file_id=file_ids, params=tokenizer_params),
        **common,
    ),
    st.builds(
        TokenizerCompleted,
        payload=st.builds(
            TokenizerCompletedPayload, node_id=texts, vocab_size=st.integers(1, 10**6)
        ),
        **common,
    ),
    st.builds(TokenizerFailed, payload=failures, **common),
    st.builds(TrainingRevived, payload=revivals, **common),
    st.builds(TokenizerRevived, payload=revivals, **common),
    st.builds(
        ArtifactUploaded,
        payload=st.builds(
            ArtifactUploadedPayload,
            subject=subjects,
            node_id=texts,
            file_id=file_ids,
            size=st.integers(0, 2**40),
            sha256=file_ids,
            seconds=floats,
        ),
        **common,
    ),
    st.builds(
        ArtifactUploadFailed,
        payload=st.builds(UploadFailedPayload, subject=subjects, node_id=texts, reason=texts),
        **common,
    ),
    st.builds(
        ArtifactUploadDeferred,
        payload=st.builds(
            UploadDeferredPayload,
            subject=subjects,
            node_id=texts,
            error=texts,
            attempt=st.integers(1, 1000),
            next_attempt_at=times,
            deadline=times,
        ),
        **common,
    ),
    st.builds(
        ArtifactUploadRequested,
        payload=st.builds(UploadRequestedPayload, subject=subjects),
        **common,
    ),
    st.builds(
        ArtifactPointerSet,
        payload=st.builds(
            PointerSetPayload,
            subject=subjects,
            pointer=st.builds(ArtifactPointer, file_id=file_ids),
        ),
        **common,
    ),
    st.builds(
        ArtifactPointerRevoked,
        payload=st.builds(PointerRevokedPayload, subject=subjects, reason=texts),
        **common,
    ),
)
"""A valid event of every type."""
