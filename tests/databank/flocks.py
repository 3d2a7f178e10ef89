"""What the kernel says about `flock`s: the condition tests wait on instead of sleeping."""

from __future__ import annotations

from pathlib import Path


def flock_waiters(path: Path) -> int:
    """Requests blocked on an `flock` of `path`, from any thread or process (`/proc/locks`)."""
    if not path.exists():
        return 0
    inode = f":{path.stat().st_ino}"
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if " -> FLOCK " in line and line.split()[6].endswith(inode))
