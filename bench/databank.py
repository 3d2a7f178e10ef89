"""Data Bank throughput and memory: the client against `curl`, on the same local server.

    python bench/databank.py            # a 512 MiB file
    python bench/databank.py 512 2048   # 512 MiB and 2 GiB

For each size: upload and download with `curl` and with `DataBankClient` (each in its own
process, best of `--rounds`, 3 by default: the machine is noisy), against one
`trainledger databank` server started as a subprocess. Prints MB/s, the client/curl ratio,
CPU seconds, and the peak RSS of the client process and of the server (Linux `VmHWM`, reset
before each transfer). Targets: ratio >= 0.8 both ways; peak RSS < 150 MiB for each, whatever
the size. Each transfer starts after `sync`, so none pays for writing back the files of the
one before it.

The client hashes (sha256) every byte and curl does not, so as references only it also times
curl plus `openssl dgst -sha256` (the same verification), and sha256 itself over bytes in
memory on one core: no verifying download can be faster than that, and when curl writes
faster than this machine hashes, a 0.8 download ratio is out of reach by arithmetic.
Everything lives in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict

# Run as a script, this file's directory leads sys.path and its name would shadow the `databank`
# package: drop it, and import the package inside the functions that use it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

MIB = 1 << 20
KEY = "bench-key"
RATIO_TARGET = 0.8
RSS_TARGET_MIB = 150.0


class Transfer(BaseModel):
    """One timed transfer: wall and CPU seconds, and the peak RSS (MiB) of the process."""

    model_config = ConfigDict(frozen=True)

    seconds: float
    cpu_seconds: float
    peak_rss_mib: float = 0.0


class Row(BaseModel):
    """The figures of one direction at one size."""

    model_config = ConfigDict(frozen=True)

    direction: str
    size_mib: int
    curl_mbps: float
    client_mbps: float
    curl_cpu: float
    verified_curl_mbps: float
    client_cpu: float
    client_rss_mib: float
    server_rss_mib: float

    @property
    def ratio(self) -> float:
        return self.client_mbps / self.curl_mbps


def _make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            block = os.urandom(min(MIB, remaining))
            digest.update(block)
            out.write(block)
            remaining -= len(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def _sha256_mbps() -> float:
    """sha256 over 256 MiB already in memory, on one core (best of 3): the ceiling of any
    download that verifies what it receives."""
    data = os.urandom(256 * MIB)
    best = min(_timed_hash(data) for _ in range(3))
    return len(data) / 1e6 / best


def _timed_hash(data: bytes) -> float:
    start = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def _reset_hwm(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@contextmanager
def _server(data_dir: Path) -> Iterator[tuple[str, int]]:
    port = _free_port()
    env = os.environ | {
        "DATABANK__DATA_DIR": str(data_dir),
        "DATABANK__API_UPLOAD_KEYS": KEY,
        "DATABANK__MIN_FREE_GB": "0",
    }
    code = "import typer; from trainledger.databank_cli import serve; typer.run(serve)"
    command = [sys.executable, "-c", code, "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
            time.sleep(0.05)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _client_upload(url: str, source: str) -> Transfer:
    from databank import DataBankClient

    _reset_hwm(os.getpid())  # a spawned child starts with its forking parent's high-water mark
    with DataBankClient(url, KEY) as client:
        start, cpu = time.perf_counter(), time.process_time()
        client.upload(Path(source))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Transfer(seconds=seconds, cpu_seconds=cpu, peak_rss_mib=_own_peak_mib())


def _client_download(url: str, file_id: str, target: str) -> Transfer:
    from databank import DataBankClient

    _reset_hwm(os.getpid())
    with DataBankClient(url, KEY) as client:
        start, cpu = time.perf_counter(), time.process_time()
        client.download_to(file_id, Path(target))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Transfer(seconds=seconds, cpu_seconds=cpu, peak_rss_mib=_own_peak_mib())


def _own_peak_mib() -> float:
    return _vm_hwm_mib(os.getpid())


def _in_child(function: Callable[..., Transfer], *args: str) -> Transfer:
    """Run a client transfer in a fresh process, so its peak RSS is the client's alone."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _curl(*args: str) -> Transfer:
    command = ["curl", "-sS", "--fail", "-H", f"X-API-Key: {KEY}", "-w", "%{time_total}", *args]
    cpu = _children_cpu()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return Transfer(seconds=float(output.strip()), cpu_seconds=_children_cpu() - cpu)


def _verified_curl(script: str, expected: str) -> Transfer:
    """curl plus `openssl dgst -sha256`, the client's verification: a reference, not the target."""
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if expected not in result.stdout:
        raise RuntimeError("openssl dgst disagrees with the file id")
    return Transfer(seconds=seconds, cpu_seconds=_children_cpu() - cpu)


def _delete(url: str, file_id: str) -> None:
    httpx.delete(f"{url}/files/{file_id}", headers={"X-API-Key": KEY}).raise_for_status()


def _measure(url: str, pid: int, work: Path, size_mib: int, rounds: int) -> list[Row]:
    size = size_mib * MIB
    source = work / "source.bin"
    file_id = _make_file(source, size)
    target = work / "download.bin"
    best: dict[str, Transfer] = {}
    rss = {"up": 0.0, "down": 0.0}
    server_rss = {"up": 0.0, "down": 0.0}

    def keep(name: str, transfer: Transfer) -> None:
        if name not in best or transfer.seconds < best[name].seconds:
            best[name] = transfer

    def timed(direction: str, name: str, run: Callable[[], Transfer]) -> None:
        os.sync()  # no transfer pays for writing back the one before it
        _reset_hwm(pid)
        transfer = run()
        server_rss[direction] = max(server_rss[direction], _vm_hwm_mib(pid))
        rss[direction] = max(rss[direction], transfer.peak_rss_mib)
        keep(name, transfer)

    files_url = f"{url}/files"
    upload_script = (
        f"openssl dgst -sha256 {source} && curl -sS --fail -o /dev/null -H 'X-API-Key: {KEY}' "
        f"-F file=@{source} {files_url}"
    )
    download_script = " | ".join(
        [
            f"curl -sS --fail -H 'X-API-Key: {KEY}' {files_url}/{file_id}",
            f"tee {target}",
            "openssl dgst -sha256",
        ]
    )
    for _ in range(rounds):
        timed("up", "curl_up", lambda: _curl("-o", "/dev/null", "-F", f"file=@{source}", files_url))
        _delete(url, file_id)
        timed("up", "verified_up", lambda: _verified_curl(upload_script, file_id))
        _delete(url, file_id)
        timed("up", "client_up", lambda: _in_child(_client_upload, url, str(source)))
        timed("down", "curl_down", lambda: _curl("-o", str(target), f"{files_url}/{file_id}"))
        target.unlink()
        timed("down", "verified_down", lambda: _verified_curl(download_script, file_id))
        target.unlink()
        timed("down", "client_down", lambda: _in_child(_client_download, url, file_id, str(target)))
        if _sha256(target) != file_id:
            raise RuntimeError("downloaded bytes differ")
        target.unlink()
        _delete(url, file_id)
    source.unlink()
    megabytes = size / 1e6
    return [
        Row(
            direction=direction,
            size_mib=size_mib,
            curl_mbps=megabytes / best[f"curl_{short}"].seconds,
            client_mbps=megabytes / best[f"client_{short}"].seconds,
            curl_cpu=best[f"curl_{short}"].cpu_seconds,
            verified_curl_mbps=megabytes / best[f"verified_{short}"].seconds,
            client_cpu=best[f"client_{short}"].cpu_seconds,
            client_rss_mib=rss[short],
            server_rss_mib=server_rss[short],
        )
        for direction, short in (("upload", "up"), ("download", "down"))
    ]


def _report(rows: list[Row], hash_mbps: float) -> bool:
    print(
        f"{'size':>8} {'direction':>9} {'curl MB/s':>10} {'client MB/s':>12} {'ratio':>6} "
        f"{'curl CPU s':>11} {'client CPU s':>13} {'client RSS':>11} {'server RSS':>11} "
        f"{'curl+openssl MB/s':>20} {'client/that':>12}"
    )
    met = True
    for row in rows:
        ok = (
            row.ratio >= RATIO_TARGET
            and row.client_rss_mib < RSS_TARGET_MIB
            and row.server_rss_mib < RSS_TARGET_MIB
        )
        met &= ok
        print(
            f"{row.size_mib:>5}MiB {row.direction:>9} {row.curl_mbps:>10.0f} "
            f"{row.client_mbps:>12.0f} {row.ratio:>6.2f} {row.curl_cpu:>11.2f} "
            f"{row.client_cpu:>13.2f} {row.client_rss_mib:>7.0f} MiB "
            f"{row.server_rss_mib:>7.0f} MiB {row.verified_curl_mbps:>20.0f} "
            f"{row.client_mbps / row.verified_curl_mbps:>12.2f}"
            f"  {'ok' if ok else 'MISSED'}"
        )
    print(
        f"targets: client/curl >= {RATIO_TARGET} both ways; peak RSS < {RSS_TARGET_MIB:.0f} MiB "
        f"(client process, server process): {'met' if met else 'MISSED'}"
    )
    downloads = [row for row in rows if row.direction == "download"]
    print(
        f"sha256 on one core, bytes in memory: {hash_mbps:.0f} MB/s, the ceiling of a verifying "
        f"download; the client's download reaches "
        + ", ".join(f"{row.client_mbps / hash_mbps:.2f}" for row in downloads)
        + " of it, and curl's unverified one "
        + ", ".join(f"{row.curl_mbps / hash_mbps:.2f}" for row in downloads)
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end. "
        "The client hashes (sha256) every byte it moves and curl does not; "
        "'curl+openssl' does the same verification with openssl dgst (a reference only)."
    )
    return met


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("sizes", nargs="*", type=int, default=[512], help="file sizes in MiB")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="databank-bench-"))
    try:
        with _server(work / "data") as (url, pid):
            rows = [
                row for size in args.sizes for row in _measure(url, pid, work, size, args.rounds)
            ]
        _report(rows, _sha256_mbps())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
