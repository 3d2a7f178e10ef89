"""The API's bounds on a training spec: each excess is a field error, all of them at once."""

from __future__ import annotations

from events import TrainingSpec
from httpservice import FieldError
from producers.config import SpecLimits
from producers.errors import SpecTooLargeError


def check(spec: TrainingSpec, limits: SpecLimits) -> None:
    """Raise 422 `SPEC_TOO_LARGE` when `spec` asks for more than `limits` allow."""
    n_layer, _, n_embd = spec.model.dimensions()
    model = "size" if spec.model.size is not None else None
    asked = (
        (f"model.{model or 'n_layer'}", n_layer, limits.max_n_layer, "MAX_N_LAYER"),
        (f"model.{model or 'n_embd'}", n_embd, limits.max_n_embd, "MAX_N_EMBD"),
        ("training.batch_size", spec.training.batch_size, limits.max_batch_size, "MAX_BATCH_SIZE"),
        (
            "training.sequence_length",
            spec.training.sequence_length,
            limits.max_sequence_length,
            "MAX_SEQUENCE_LENGTH",
        ),
        ("training.processes", spec.training.processes, limits.max_processes, "MAX_PROCESSES"),
    )
    errors = [
        FieldError(field=f"body.{field}", message=f"at most {bound} (API__{setting})")
        for field, value, bound, setting in asked
        if value > bound
    ]
    if errors:
        raise SpecTooLargeError(errors)
