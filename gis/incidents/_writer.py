"""Group commit of intakes: one writer thread, one transaction per batch.

Request threads hand their located, ready-to-store incident to the
database's :class:`IntakeWriter` and wait. The writer takes everything queued
(up to ``max_batch``), stores it in one short write transaction — a few
multi-row statements instead of six round trips per incident — and only
after the commit answers each waiting request. So an acknowledged intake is
a committed one (a SIGKILL loses only requests not answered yet, which their
clients retry with the same key), and the write lock is taken once per
batch, not once per request (SQLite's writers no longer queue on the lock).

Idempotency stays exact. Inside the batch's transaction the writer looks
the keys up; a key stored before is a replay (same body) or a conflict
(another body); a key twice in one batch is stored once and the second
request answered as its replay. The unique index on ``(scope, key)``
remains the final arbiter between processes (several uvicorn workers, the
CLI): a key taken by another process meanwhile rolls the batch back, and it
is tried again, the keys looked up anew.
"""

from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from gis.errors import ConflictError
from gis.repository import Database, KeyTaken, Repository

__all__ = ["IdempotencyConflict", "IntakeJob", "IntakeWriter", "writer_for"]

#: How many times a batch is tried again when another process took one of its keys.
_KEY_RACE_ATTEMPTS = 5


class IdempotencyConflict(ConflictError):  # noqa: N818 (the contract's name)
    """An ``Idempotency-Key`` used again with a different request body (HTTP 409)."""

    title = "Idempotency key reused"


def _conflict() -> IdempotencyConflict:
    return IdempotencyConflict(
        "Idempotency-Key was used before with a different request body: use a new key "
        "for a new incident",
        field="Idempotency-Key",
    )


@dataclass
class IntakeJob:
    """One incident waiting to be stored, as the repository's ``create_many`` takes it.

    ``audit`` holds the audit entry's columns; its ``target`` is set once
    the incident has its id. The future resolves to ``(row, created)``.
    """

    values: dict[str, Any]
    units: list[tuple[str, str, str]]
    transitions: list[dict[str, Any]]
    audit: dict[str, Any]
    scope: str | None = None
    key: str | None = None
    body_hash: str | None = None
    future: Future[tuple[dict[str, Any], bool]] = field(default_factory=Future)

    def item(self) -> dict[str, Any]:
        """Return the job as ``IncidentStore.create_many`` takes it."""
        return {
            "values": self.values,
            "units": self.units,
            "transitions": self.transitions,
            "scope": self.scope,
            "key": self.key,
            "body_hash": self.body_hash,
        }


class IntakeWriter:
    """The group-commit writer of one database in this process.

    Parameters
    ----------
    db : Database
        Where incidents are stored.
    max_batch : int
        The most intakes stored in one transaction.
    max_wait : float
        Seconds the writer waits for more intakes once one is queued, unless
        the last batch held a single one (no concurrency: nothing to wait
        for). While a batch commits the next one gathers anyway.
    idle_seconds : float
        The writer thread ends after this long without work (started again
        by the next intake), so that a database no longer used is not kept.
    """

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 200,
        max_wait: float = 0.002,
        idle_seconds: float = 2.0,
    ) -> None:
        self._db = db
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.idle_seconds = idle_seconds
        self._queue: list[IntakeJob] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last_batch = 2  # gather from the start (the first requests come together)
        #: Batches committed and their sizes (for benchmarks; not a measurement in tests).
        self.batches = 0
        self.stored = 0

    def submit(self, job: IntakeJob) -> tuple[dict[str, Any], bool]:
        """Queue ``job`` and wait for its batch to commit; return ``(row, created)``.

        Raises whatever stopped the job's batch (the job tried alone, so that
        the error is its own), or :class:`IdempotencyConflict`.
        """
        return self.enqueue(job).result()

    def enqueue(self, job: IntakeJob) -> Future[tuple[dict[str, Any], bool]]:
        """Queue ``job``; return its future (resolved once its batch has committed)."""
        with self._ready:
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tongge-intake-writer", daemon=True
                )
                self._thread.start()
            self._ready.notify()
        return job.future

    def _run(self) -> None:
        while True:
            with self._ready:
                if not self._queue:
                    self._ready.wait(self.idle_seconds)
                if not self._queue:
                    self._thread = None  # the next submit starts a new writer
                    return
                # Let a batch gather for up to max_wait (a submit wakes the
                # wait early: wait again for the rest of the time) — when
                # intakes come together; a lone one (the CLI) is not delayed.
                deadline = time.monotonic() + self.max_wait
                while self._last_batch > 1 and len(self._queue) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._ready.wait(left)
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                self._last_batch = len(batch)
            self._flush(batch)

    def _flush(self, batch: list[IntakeJob]) -> None:
        try:
            outcomes = self._store(batch)
        except Exception as error:  # every waiting request must hear back
            if len(batch) == 1:
                batch[0].future.set_exception(error)
                return
            # One bad row (a value the database refuses) must fail its own
            # request only: the others are stored one by one.
            for job in batch:
                self._flush([job])
            return
        self.batches += 1
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                if outcome[1]:
                    self.stored += 1
                job.future.set_result(outcome)

    def _store(self, batch: list[IntakeJob]) -> list[tuple[dict[str, Any], bool] | Exception]:
        for attempt in range(_KEY_RACE_ATTEMPTS):
            try:
                with self._db.transaction() as repo:
                    return _store_batch(repo, batch)
            except KeyTaken:
                if attempt == _KEY_RACE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def _store_batch(
    repo: Repository, batch: list[IntakeJob]
) -> list[tuple[dict[str, Any], bool] | Exception]:
    """Store the batch's new incidents, answer its replays; one transaction (the caller's)."""
    pairs = [(job.scope or "", job.key) for job in batch if job.key is not None]
    taken = repo.incidents.keys_taken(pairs) if pairs else {}
    fresh: list[IntakeJob] = []
    # Per job: ("new", index in fresh) | ("stored", incident id, hash) | ("sibling", job index)
    plan: list[tuple[str, Any, Any]] = []
    first: dict[tuple[str, str], int] = {}
    for index, job in enumerate(batch):
        pair = None if job.key is None else (job.scope or "", job.key)
        if pair is not None and pair in taken:
            plan.append(("stored", taken[pair]["incident_id"], taken[pair]["body_hash"]))
        elif pair is not None and pair in first:
            plan.append(("sibling", first[pair], None))
        else:
            if pair is not None:
                first[pair] = index
            plan.append(("new", len(fresh), None))
            fresh.append(job)
    ids = repo.incidents.create_many([job.item() for job in fresh])
    repo.access.append_audits(
        [
            {**job.audit, "target": f"incident:{new_id}"}
            for job, new_id in zip(fresh, ids, strict=True)
        ]
    )
    stored = [entry[1] for entry in plan if entry[0] == "stored"]
    earlier = repo.incidents.get_many(stored) if stored else {}
    outcomes: list[tuple[dict[str, Any], bool] | Exception] = []
    for index, (kind, ref, body_hash) in enumerate(plan):
        job = batch[index]
        if kind == "new":
            new = fresh[ref]
            outcomes.append(({**new.values, "id": ids[ref]}, True))
        elif kind == "sibling":
            owner = batch[ref]
            if owner.body_hash != job.body_hash:
                outcomes.append(_conflict())
            else:
                outcomes.append(({**owner.values, "id": ids[plan[ref][1]]}, False))
        elif body_hash != job.body_hash:
            outcomes.append(_conflict())
        elif ref in earlier:
            outcomes.append((earlier[ref], False))
        else:  # pragma: no cover - a key and its incident commit together
            outcomes.append(RuntimeError("the incident of an idempotency key is missing"))
    return outcomes


_writers: weakref.WeakKeyDictionary[Database, IntakeWriter] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def writer_for(db: Database) -> IntakeWriter:
    """Return this process's writer of ``db`` (one per database, made on first use)."""
    with _writers_lock:
        found = _writers.get(db)
        if found is None:
            found = _writers[db] = IntakeWriter(db)
        return found
