"""Helpers shared by the benchmark scripts: progress logging and best-of timing."""

from __future__ import annotations

import cProfile
import io
import pstats
import socket
import sys
import time
from collections.abc import Callable
from typing import Any


def logger(name: str) -> Callable[[str], None]:
    """Return a function printing ``[name] message`` to stderr (stdout is for JSON).

    Parameters
    ----------
    name : str
        The prefix, e.g. ``"validate-bench"``.

    Returns
    -------
    callable
        ``log(message)``.
    """

    def log(message: str) -> None:
        print(f"[{name}] {message}", file=sys.stderr, flush=True)

    return log


def best_of(func: Callable[[], Any], repeat: int, *, warmup: bool = True) -> tuple[float, Any]:
    """Time ``func`` and return the best wall time and the last result.

    Parameters
    ----------
    func : callable
        Called without arguments.
    repeat : int
        Number of timed runs.
    warmup : bool, default True
        Run once untimed first.

    Returns
    -------
    seconds : float
        The fastest run.
    result : object
        What the last run returned.
    """
    result = func() if warmup else None
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def profile_summary(func: Callable[[], Any], lines: int = 25) -> str:
    """Profile one call of ``func`` and return the top of the cumulative-time table.

    Parameters
    ----------
    func : callable
        Called once without arguments.
    lines : int, default 25
        Number of rows to keep (sorted by cumulative and by own time).

    Returns
    -------
    str
        The formatted pstats tables.
    """
    profiler = cProfile.Profile()
    profiler.enable()
    func()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def free_port() -> int:
    """Return a TCP port free on the loopback interface now (for a server started next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 120.0) -> None:
    """Wait until a server accepts connections on ``127.0.0.1:port``.

    Raises
    ------
    RuntimeError
        When nothing listens there within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on :{port} did not start")
