"""What a chaos run does and when, drawn from one seed, so a run can be repeated with `--seed`."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Target = Literal["worker-a", "worker-b", "projector", "api"]
TARGETS: tuple[Target, ...] = ("worker-a", "worker-b", "projector", "api")
FaultKind = Literal["5xx", "cut", "slow"]


@dataclass(frozen=True)
class Scale:
    """How much chaos, over how long."""

    runs: int
    tokenizers: int
    kills: int
    engine_restarts: int
    outage_s: float
    chaos_s: float
    """The submissions, kills, restarts and faults are spread over this many seconds."""
    fault_bursts: int
    """Bursts of each kind of Data Bank fault (5xx, dropped connections, slow answers)."""
    upload_window_s: float
    """`WORKER__UPLOAD_RETRY_WINDOW_S`: outlasts the outage."""
    settle_s: float
    """How long the system may take to finish everything once the chaos stops."""


SHORT = Scale(
    runs=4, tokenizers=1, kills=4, engine_restarts=1, outage_s=12, chaos_s=25, fault_bursts=2,
    upload_window_s=120, settle_s=150,
)  # fmt: skip
FULL = Scale(
    runs=50, tokenizers=6, kills=32, engine_restarts=3, outage_s=65, chaos_s=420,
    fault_bursts=12, upload_window_s=600, settle_s=900,
)  # fmt: skip


@dataclass(frozen=True)
class Submit:
    """Ask for a run (or a tokenizer); `twice`: send it again with the same key afterwards."""

    at: float
    index: int
    tokenizer: bool
    twice: bool
    after_outage: bool = False
    """Sent once Data Bank went down, so that its upload always meets the outage."""


@dataclass(frozen=True)
class Kill:
    """SIGKILL a supervised service."""

    at: float
    target: Target


@dataclass(frozen=True)
class RestartEngine:
    """Stop the engine (SIGTERM: it flushes its append-only file) and start it again."""

    at: float


@dataclass(frozen=True)
class Outage:
    """Data Bank answers 503 to everything for `seconds`."""

    at: float
    seconds: float


@dataclass(frozen=True)
class Burst:
    """Queue `times` faults of one kind for the next matching Data Bank requests."""

    at: float
    kind: FaultKind
    times: int
    method: str
    detail: float
    """`slow`: the delay in seconds; `cut`: bytes of the body let through; `5xx`: the status."""


Chaos = Kill | RestartEngine | Outage | Burst


@dataclass(frozen=True)
class Plan:
    """The seed's submissions and chaos, each list in time order."""

    seed: int
    scale: Scale
    submissions: list[Submit]
    chaos: list[Chaos]


def make_plan(seed: int, scale: Scale) -> Plan:
    """Draw the plan: submissions over the first 80% of the chaos period (one run sent once
    the outage began), every target killed at least once (when there are kills enough), one
    outage in the middle third."""
    rng = random.Random(seed)
    span = scale.chaos_s

    def when(start: float = 0.05, end: float = 1.0) -> float:
        return round(rng.uniform(start * span, end * span), 2)

    jobs = [False] * scale.runs + [True] * scale.tokenizers
    rng.shuffle(jobs)
    twice = set(rng.sample(range(len(jobs)), max(1, len(jobs) // 4)))
    submissions = [
        Submit(when(0.0, 0.8), index, tokenizer, index in twice)
        for index, tokenizer in enumerate(jobs)
    ]
    # One run is sent once the outage began, so some upload always meets it.
    late = next(index for index, tokenizer in enumerate(jobs) if not tokenizer)
    submissions[late] = Submit(when(0.66, 0.8), late, False, late in twice, after_outage=True)
    targets = list(TARGETS) if scale.kills >= len(TARGETS) else []
    rng.shuffle(targets)
    targets += [rng.choice(TARGETS) for _ in range(scale.kills - len(targets))]
    chaos: list[Chaos] = [Kill(when(0.1), target) for target in targets]
    chaos += [RestartEngine(when(0.1)) for _ in range(scale.engine_restarts)]
    chaos.append(Outage(when(0.33, 0.66), scale.outage_s))
    for _ in range(scale.fault_bursts):
        chaos.append(Burst(when(), "5xx", rng.randint(1, 4), rng.choice(["GET", "POST"]),
                           rng.choice([500, 502, 503])))  # fmt: skip
        chaos.append(Burst(when(), "cut", rng.randint(1, 2), rng.choice(["GET", "POST"]),
                           rng.randint(0, 512)))  # fmt: skip
        chaos.append(Burst(when(), "slow", rng.randint(1, 4), rng.choice(["GET", "POST", "HEAD"]),
                           round(rng.uniform(0.2, 3.0), 2)))  # fmt: skip
    return Plan(
        seed,
        scale,
        sorted(submissions, key=lambda submit: submit.at),
        sorted(chaos, key=lambda action: action.at),
    )
