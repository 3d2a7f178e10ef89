"""Data Bank throughput and memory: the client against `curl`, on the same local server.

    python bench/databank_transfer.py            # a 512 MiB file
    python bench/databank_transfer.py 512 2048   # 512 MiB and 2 GiB

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

It also prints the costs behind two design choices. The client downloads on `http.client` into
reused buffers rather than on httpx's streamed body: the CPU of the same verifying download
read through httpx is printed beside the client's, with sha256's own share. The server sends a
file in 4 MiB pieces, each a trip through the thread pool and the event loop: the CPU of
streaming the file through the thread pool in 1 MiB and in 4 MiB pieces is printed.
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

from databank import DataBankClient

MIB = 1 << 20
KEY = "bench-key"
RATIO_TARGET = 0.8
RSS_TARGET_MIB = 150.0
PIECES_MIB = (1, 4)


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


class PathCosts(BaseModel):
    """CPU seconds behind the design choices, at one size: download paths and send pieces."""

    model_config = ConfigDict(frozen=True)

    size_mib: int
    client_download_cpu: float
    httpx_download_cpu: float
    piece_cpu: dict[int, float]


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
    _reset_hwm(os.getpid())  # a spawned child starts with its forking parent's high-water mark
    with DataBankClient(url, KEY) as client:
        start, cpu = time.perf_counter(), time.process_time()
        client.upload(Path(source))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Transfer(seconds=seconds, cpu_seconds=cpu, peak_rss_mib=_own_peak_mib())


def _client_download(url: str, file_id: str, target: str) -> Transfer:
    _reset_hwm(os.getpid())
    with DataBankClient(url, KEY) as client:
        start, cpu = time.perf_counter(), time.process_time()
        client.download_to(file_id, Path(target))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Transfer(seconds=seconds, cpu_seconds=cpu, peak_rss_mib=_own_peak_mib())


def _httpx_download(url: str, file_id: str, target: str) -> Transfer:
    """The same verifying download (write and sha256 every byte) on httpx's streamed body."""
    _reset_hwm(os.getpid())
    digest = hashlib.sha256()
    headers = {"X-API-Key": KEY, "Accept-Encoding": "identity"}
    with httpx.Client(trust_env=False) as http, Path(target).open("wb") as out:
        start, cpu = time.perf_counter(), time.process_time()
        with http.stream("GET", f"{url}/files/{file_id}", headers=headers) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                out.write(chunk)
                digest.update(chunk)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if digest.hexdigest() != file_id:
        raise RuntimeError("httpx download hashes to another id")
    return Transfer(seconds=seconds, cpu_seconds=cpu, peak_rss_mib=_own_peak_mib())


def _piece_cpu(path: Path, piece_mib: int) -> float:
    """CPU seconds to stream `path` through the thread pool in `piece_mib` pieces, as the
    server's `StreamingResponse` takes `iter_span` (the socket's share is left out)."""
    # Imported here: the spawned client processes import this module, and their peak RSS is
    # measured, so they must not load the server's stack.
    import anyio
    from starlette.concurrency import iterate_in_threadpool

    from databank.server.storage import iter_span

    size = path.stat().st_size

    async def drain() -> None:
        pieces = iter_span(path.open("rb"), 0, size, piece_mib * MIB)
        async for _ in iterate_in_threadpool(pieces):
            pass

    cpu = time.process_time()
    anyio.run(drain)
    return time.process_time() - cpu


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


def _measure(
    url: str, pid: int, work: Path, size_mib: int, rounds: int
) -> tuple[list[Row], PathCosts]:
    size = size_mib * MIB
    source = work / "source.bin"
    file_id = _make_file(source, size)
    target = work / "download.bin"
    best: dict[str, Transfer] = {}
    least_cpu: dict[str, float] = {}
    rss = {"up": 0.0, "down": 0.0}
    server_rss = {"up": 0.0, "down": 0.0}

    def keep(name: str, transfer: Transfer) -> None:
        if name not in best or transfer.seconds < best[name].seconds:
            best[name] = transfer
        least_cpu[name] = min(least_cpu.get(name, transfer.cpu_seconds), transfer.cpu_seconds)

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
        timed("down", "httpx_down", lambda: _in_child(_httpx_download, url, file_id, str(target)))
        target.unlink()
        _delete(url, file_id)
    costs = PathCosts(
        size_mib=size_mib,
        client_download_cpu=least_cpu["client_down"],
        httpx_download_cpu=least_cpu["httpx_down"],
        piece_cpu={
            piece: min(_piece_cpu(source, piece) for _ in range(rounds)) for piece in PIECES_MIB
        },
    )
    source.unlink()
    megabytes = size / 1e6
    rows = [
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
    return rows, costs


def _report(rows: list[Row], costs: list[PathCosts], hash_mbps: float) -> bool:
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
    for cost in costs:
        hash_cpu = cost.size_mib * MIB / 1e6 / hash_mbps
        pieces = ", ".join(
            f"{piece} MiB pieces {seconds:.2f}" for piece, seconds in cost.piece_cpu.items()
        )
        print(
            f"{cost.size_mib} MiB, CPU seconds: verifying download on http.client (the client) "
            f"{cost.client_download_cpu:.2f}, on httpx's streamed body "
            f"{cost.httpx_download_cpu:.2f}, sha256 alone {hash_cpu:.2f}; server streaming the "
            f"file through the thread pool: {pieces}"
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
            measured = [_measure(url, pid, work, size, args.rounds) for size in args.sizes]
        rows = [row for size_rows, _ in measured for row in size_rows]
        _report(rows, [costs for _, costs in measured], _sha256_mbps())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
