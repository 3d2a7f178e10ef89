"""How `runs show` and `runs reproduce --watch` put a reproduction in words."""

from __future__ import annotations

from pydantic import JsonValue

from trainledger.client.models import Run
from trainledger.client.tables import reproduction


def _run(found: JsonValue) -> Run:
    return Run.model_validate({"run_id": "new", "status": "completed", "reproduction": found})


def test_a_run_that_reproduces_none_says_nothing() -> None:
    assert reproduction(_run(None)) == ""


def test_the_verdict_and_the_inputs_that_differed() -> None:
    torch: JsonValue = {"name": "torch", "original": "2.3.0", "reproduction": "[b]2.4"}
    added: JsonValue = {"name": "tokenizers", "original": None, "reproduction": "0.19.1"}
    differed = _run({"of": "r0", "identical": False, "differences": [torch, added]})
    assert reproduction(differed) == (
        "r0; different weights; differed: torch 2.3.0 -> \\[b]2.4, tokenizers ? -> 0.19.1"
    )
    device: JsonValue = {"name": "device", "original": "cuda", "reproduction": "cpu"}
    unjudged = _run({"of": "r0", "identical": None, "differences": [device]})
    assert reproduction(unjudged) == "r0; differed: device cuda -> cpu"
    assert reproduction(_run({"of": "r0"})) == "r0"
