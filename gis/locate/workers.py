"""Batch geocoding in worker processes, so the serving process keeps answering.

A 400,000-row batch is seconds of pandas, numpy and file writing, much of
it holding the interpreter lock: in a thread of the server it pushed the
single-point locate p99 from ~10 ms to ~450 ms. Each worker process opens
the database itself, keeps its own indexes (following boundary changes like
the server's) and runs at a lower CPU priority, so that on a small machine
dispatchers' requests come first.

Examples
--------
>>> pool = BatchPool(database_url="sqlite:///example.sqlite", workers=1)
>>> pool.workers
1
>>> pool.close()  # no process was started: they start with the first job
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gis.files import ReadLimits
from gis.locate import LocateService, Visible
from gis.repository import Database
from gis.times import TimeLike

if TYPE_CHECKING:
    from gis.locate.batch import BatchResult

__all__ = ["BatchJob", "BatchPool"]


@dataclass(frozen=True)
class BatchJob:
    """One file to geocode, with everything the worker needs (picklable)."""

    source: Path
    target: Path
    x: str | None
    y: str | None
    crs: str
    at: TimeLike
    visible: Visible | None  # a caller's jurisdiction (picklable); None: everything
    label: str | None
    limits: ReadLimits | None
    encoding: str | None = None
    address: str | None = None
    names: bool = False


class BatchPool:
    """A pool of ``workers`` processes geocoding files; started on first use.

    Parameters
    ----------
    database_url : str
        The registry the workers open (the server's).
    workers : int
        Processes (jobs run at once).
    spatialite_library : str
        The SpatiaLite module for SQLite URLs.
    refresh_seconds : float
        How often workers look for boundary changes.
    niceness : int
        Added to the workers' CPU niceness (0: none).
    """

    def __init__(
        self,
        *,
        database_url: str,
        workers: int,
        spatialite_library: str = "mod_spatialite",
        refresh_seconds: float = 1.0,
        niceness: int = 10,
    ) -> None:
        self.workers = workers
        self._args = (database_url, spatialite_library, refresh_seconds, niceness)
        self._executor: ProcessPoolExecutor | None = None

    def submit(self, job: BatchJob) -> Future[BatchResult]:
        """Start ``job`` in a worker; the future gives what it did (rows written…)."""
        if self._executor is None:
            # spawn: a clean interpreter, not a fork of a threaded server.
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=self._args,
            )
        return self._executor.submit(_run, job)

    def close(self) -> None:
        """Stop the workers (running jobs are cancelled with the process)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


_service: LocateService | None = None


def _start_worker(url: str, library: str, refresh_seconds: float, niceness: int) -> None:
    global _service
    if niceness:
        os.nice(niceness)
    _service = LocateService(
        Database(url, spatialite_library=library), refresh_seconds=refresh_seconds
    )


def _run(job: BatchJob) -> BatchResult:
    from gis.locate.batch import geocode_file

    assert _service is not None, "the worker was not started"
    return geocode_file(
        _service,
        job.source,
        job.target,
        x=job.x,
        y=job.y,
        crs=job.crs,
        at=job.at,
        visible=job.visible,
        label=job.label,
        limits=job.limits,
        encoding=job.encoding,
        address=job.address,
        names=job.names,
    )
