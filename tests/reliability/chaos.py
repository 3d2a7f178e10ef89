"""One chaos run: start the system, upload the corpus, drive the plan, settle and check."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from databank import DataBankClient
from events import connect
from tests.harness import write_corpus
from tests.reliability.checks import Checker, Report, until
from tests.reliability.driver import Driver
from tests.reliability.plan import Plan
from tests.reliability.system import System, running_system


def _ready(system: System) -> bool:
    """The API's /readyz: the projector's and every stage's group have a live consumer."""
    try:
        return httpx.get(f"{system.api_url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def chaos_run(plan: Plan, root: Path) -> Report:
    """Run `plan` on a fresh system under `root`; the report (its problems say what failed)."""
    started = time.monotonic()
    with running_system(root, plan.scale) as system:
        if not until(lambda: _ready(system), 180):
            raise RuntimeError(f"the API did not become ready; logs in {root / 'logs'}")
        corpus = write_corpus(root / "corpus.txt", lines=200, seed=plan.seed)
        with DataBankClient(system.bank_url, system.bank_key) as bank:
            corpus_id = bank.upload(corpus).file_id
        tally = Driver(system, plan, corpus_id).run()
        with connect(system.engine.url) as client:
            report = Checker(system, plan, tally, client).run()
    report.seconds = time.monotonic() - started
    return report
