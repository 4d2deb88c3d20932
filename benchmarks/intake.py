"""Incident intake under load: throughput, p99, nothing lost or duplicated, a SIGKILL survived.

The real server (``uvicorn api.app:create_server_app``, one worker) runs on
loopback on the sample city, on SpatiaLite and on PostGIS, one after the
other. Clients post ``POST /api/v1/incidents`` with an ``Idempotency-Key``
as fast as the server answers, over ``--connections`` keep-alive
connections, for ``--seconds`` (default 60). A share of the posts
(``--retry-share``) is sent again with the same key and body, half of them
right after the answer (a client that did not trust it) and half after the
client dropped its connection without reading the answer (a time-out): the
same incident must come back and no second one be stored.

Then the crash test: the load runs again, the server is killed with
SIGKILL in the middle (``--kill-after`` seconds), restarted, and every
request that was in flight is retried with its key. At the end the
database is read directly: every acknowledged incident must be there
exactly once (``lost`` and ``duplicated`` 0), and no key may have two
incidents.

Prints one JSON object (progress goes to stderr). The target is 500
intakes/s sustained with 0 lost and 0 duplicated; when a run misses it,
``--profile`` also takes ``--profile-count`` incidents in through
:func:`gis.incidents.service.intake` in this process under cProfile (the
server's request threads are out of cProfile's reach) and prints the
in-process rate and where the time goes.

Bounded: loopback only, a fixed number of connections, a deadline for every
phase; it stops by itself.

Run: ``python benchmarks/intake.py [--seconds 60] [--connections 32]
[--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/tongge_bench_intake]
[--only sqlite|postgresql] [--profile]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port, logger, wait_for_port  # noqa: E402
from sqlalchemy import create_engine, make_url, text  # noqa: E402

from api.bootstrap import open_database  # noqa: E402
from boundaries import SAMPLE_CITY  # noqa: E402
from gis import units as unit_registry  # noqa: E402
from gis.access import SYSTEM  # noqa: E402
from gis.access.accounts import MAX_KEY_RATE, create_api_key  # noqa: E402
from gis.repository import Database  # noqa: E402
from gis.settings import Settings  # noqa: E402
from gis.units import import_manifest  # noqa: E402

_log = logger("intake-bench")
TARGET_PER_S = 500.0
PATHS = {"api": "/api/v1/incidents", "open311": "/open311/v2/requests.json"}
CATEGORIES = ("0101", "0102", "0201", "0202", "0301")


def main() -> None:
    """Run the load and the crash test on each database; print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="Steady load duration.")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--retry-share", type=float, default=0.1)
    parser.add_argument(
        "--kill-after", type=float, default=None, help="Seconds into the crash run (default: half)."
    )
    parser.add_argument("--crash-seconds", type=float, default=None, help="Default: --seconds.")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/tongge_bench_intake",
        help="A PostGIS database for the run (created, and emptied, by this script).",
    )
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes.")
    parser.add_argument(
        "--endpoint",
        choices=tuple(PATHS),
        default="api",
        help="POST /api/v1/incidents (JSON) or Open311's POST requests.json (form).",
    )
    parser.add_argument(
        "--profile", action="store_true", help="Profile service.intake in this process too."
    )
    parser.add_argument("--profile-count", type=int, default=300)
    args = parser.parse_args()
    if not 0 <= args.retry_share <= 1:
        sys.exit("--retry-share must be between 0 and 1")
    if args.seconds <= 0 or args.connections < 1:
        sys.exit("--seconds and --connections must be positive")
    work = Path(tempfile.mkdtemp(prefix="tongge-intake-"))
    urls = {
        "sqlite": f"sqlite:///{work / 'city.sqlite'}",
        "postgresql": args.postgres_url,
    }
    results: dict[str, Any] = {}
    for dialect, url in urls.items():
        if args.only and dialect != args.only:
            continue
        if dialect == "postgresql":
            _fresh_postgres(url)
        _log(f"{dialect}: loading the sample city's units (no places: intake needs none)")
        db = open_database(Settings(database_url=url, load_sample_city=False), create=True)
        import_manifest(db, manifest=SAMPLE_CITY / "manifest.json")
        key, points = _dispatcher_key(db), _points(db, 400)
        profile = _profile_intake(db, points, args.profile_count) if args.profile else None
        db.dispose()
        server = _Server(url, work / dialect, workers=args.workers)
        results[dialect] = _run_dialect(args, server, key, points, url)
        if profile is not None:
            results[dialect]["in_process"] = profile
        _log(f"{dialect}: {json.dumps(results[dialect])}")  # kept even if a later run fails
    steady = [r["steady"] for r in results.values()]
    meets = all(
        r["intakes_per_s"] >= TARGET_PER_S
        and r["lost"] == 0
        and r["duplicated"] == 0
        and r["incidents_without_key"] == 0
        for r in steady
    ) and all(r["crash"]["lost"] == 0 and r["crash"]["duplicated"] == 0 for r in results.values())
    print(
        json.dumps(
            {
                "benchmark": "intake",
                "seconds": args.seconds,
                "connections": args.connections,
                "retry_share": args.retry_share,
                "workers": args.workers,
                "endpoint": PATHS[args.endpoint],
                "target_intakes_per_s": TARGET_PER_S,
                "meets_target": meets,
                **results,
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            }
        )
    )


def _run_dialect(
    args: argparse.Namespace, server: _Server, key: str, points: np.ndarray, url: str
) -> dict[str, Any]:
    dialect = make_url(url).get_backend_name()
    server.start()
    try:
        _log(f"{dialect}: warming up")
        warm = _Load(server.port, key, points, connections=4, retry_share=0, endpoint=args.endpoint)
        asyncio.run(warm.run(3.0))
        _log(f"{dialect}: steady load for {args.seconds:g} s")
        load = _Load(
            server.port,
            key,
            points,
            connections=args.connections,
            retry_share=args.retry_share,
            endpoint=args.endpoint,
        )
        cpu = server.cpu_seconds()
        asyncio.run(load.run(args.seconds))
        cpu = server.cpu_seconds() - cpu
        steady = load.summary(args.seconds)
        # The server's own CPU per intake: comparable across runs on a busy machine.
        steady["server_cpu_ms_per_intake"] = round(
            1000 * cpu / max(1, len(load.acknowledged) + load.retries), 2
        )
        steady["load_average"] = os.getloadavg()[0]
    finally:
        server.stop()
    steady.update(_check(url, load.acknowledged))
    _log(f"{dialect}: {steady['intakes_per_s']:.0f} intakes/s, p99 {steady['p99_ms']} ms")
    crash_seconds = args.crash_seconds or args.seconds
    kill_after = args.kill_after if args.kill_after is not None else crash_seconds / 2
    _log(f"{dialect}: crash run ({crash_seconds:g} s, SIGKILL after {kill_after:g} s)")
    crash = _crash_run(args, server, key, points, url, crash_seconds, kill_after)
    return {"steady": steady, "crash": crash}


def _crash_run(
    args: argparse.Namespace,
    server: _Server,
    key: str,
    points: np.ndarray,
    url: str,
    seconds: float,
    kill_after: float,
) -> dict[str, Any]:
    load = _Load(
        server.port,
        key,
        points,
        connections=args.connections,
        retry_share=args.retry_share,
        endpoint=args.endpoint,
    )
    server.start()
    downtime: list[float] = []

    async def kill_and_restart() -> None:
        await asyncio.sleep(kill_after)
        server.kill()
        killed = time.monotonic()
        _log("server killed (SIGKILL); restarting")
        await asyncio.to_thread(server.start)
        downtime.append(time.monotonic() - killed)
        # The clients load the restarted server for the rest of the run.
        load.deadline += downtime[0]
        _log(f"server back after {downtime[0]:.1f} s")

    async def both() -> None:
        warm = _Load(server.port, key, points, connections=4, retry_share=0, endpoint=args.endpoint)
        await warm.run(3.0)
        await asyncio.gather(load.run(seconds, retry_failed=True), kill_and_restart())

    try:
        asyncio.run(both())
    finally:
        server.stop()
    summary = load.summary(seconds)
    summary["restart_s"] = round(downtime[0], 1) if downtime else None
    summary.update(_check(url, load.acknowledged))
    summary["in_flight_at_kill_retried"] = load.retried_after_error
    return summary


@dataclass
class _Load:
    """Closed-loop clients on raw keep-alive HTTP/1.1 connections (no client library overhead)."""

    port: int
    api_key: str
    points: np.ndarray
    connections: int
    retry_share: float
    endpoint: str = "api"
    acknowledged: dict[str, set[str]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    retries: int = 0
    replays_matching: int = 0
    replays_differing: int = 0
    retried_after_error: int = 0
    deadline: float = 0.0

    async def run(self, seconds: float, *, retry_failed: bool = False) -> None:
        """Post for ``seconds`` (then retry the requests left unanswered, bounded)."""
        self.deadline = time.monotonic() + seconds
        rng = random.Random(7)
        await asyncio.gather(
            *(
                self._client(random.Random(rng.random()), retry_failed)
                for _ in range(self.connections)
            )
        )

    async def _client(self, rng: random.Random, retry_failed: bool) -> None:
        connection: _Connection | None = None
        pending: tuple[str, bytes] | None = None  # a request whose answer never came
        while True:
            now = time.monotonic()
            if now > self.deadline + 120.0 or (now > self.deadline and pending is None):
                break
            if pending is None:
                key, body = str(uuid.uuid4()), self._body(rng)
            else:
                key, body = pending
            try:
                if connection is None:
                    connection = await _Connection.open(self.port)
                roll = rng.random()
                if pending is None and roll < self.retry_share / 2:
                    # A time-out: the request is sent, the answer never read.
                    await connection.send(self.path, self._headers(key), body, self.media)
                    connection.close()
                    connection = await _Connection.open(self.port)
                    self.retries += 1
                started = time.perf_counter()
                status, answer = await connection.request(
                    self.path, self._headers(key), body, self.media
                )
                self.latencies.append(time.perf_counter() - started)
                self._record(key, status, answer)
                if pending is not None:
                    self.retried_after_error += 1
                pending = None
                if self.retry_share / 2 <= roll < self.retry_share:
                    # A client that did not trust the answer sends it again.
                    status, answer = await connection.request(
                        self.path, self._headers(key), body, self.media
                    )
                    self.retries += 1
                    self._record(key, status, answer)
            except (OSError, asyncio.IncompleteReadError, ConnectionError, _BadAnswerError):
                self.errors += 1
                if connection is not None:
                    connection.close()
                connection = None
                if retry_failed:
                    pending = (key, body)  # the same key again once the server is back
                await asyncio.sleep(0.2)
        if connection is not None:
            connection.close()

    async def _send(self, connection: _Connection, key: str, body: bytes) -> tuple[int, bytes]:
        return await connection.request(self.path, self._headers(key), body, self.media)

    @property
    def path(self) -> str:
        return PATHS[self.endpoint]

    @property
    def media(self) -> str:
        if self.endpoint == "open311":
            return "application/x-www-form-urlencoded"
        return "application/json"

    def _record(self, key: str, status: int, answer: bytes) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status not in (200, 201):
            return
        data = json.loads(answer)
        # The incident's public id (Open311's service_request_id).
        public_id = str(
            data[0]["service_request_id"] if isinstance(data, list) else data["public_id"]
        )
        ids = self.acknowledged.setdefault(key, set())
        if ids:
            if public_id in ids:
                self.replays_matching += 1
            else:
                self.replays_differing += 1
        ids.add(public_id)

    def _headers(self, key: str) -> list[tuple[str, str]]:
        return [("X-API-Key", self.api_key), ("Idempotency-Key", key)]

    def _body(self, rng: random.Random) -> bytes:
        x, y = self.points[rng.randrange(len(self.points))]
        if self.endpoint == "open311":
            return urlencode(
                {
                    "service_code": rng.choice(CATEGORIES),
                    "lat": f"{y:.7f}",
                    "long": f"{x:.7f}",
                    "datum": "cgcs2000",
                    "description": f"load test {rng.random():.6f}",
                }
            ).encode()
        return json.dumps(
            {
                "channel": "12345",
                "category": rng.choice(CATEGORIES),
                "description": f"load test {rng.random():.6f}",
                "location": {"x": float(x), "y": float(y), "datum": "cgcs2000"},
                "event_time": "2026-11-01T09:00:00+08:00",
            }
        ).encode()

    def summary(self, seconds: float) -> dict[str, Any]:
        """Return throughput and latency (a created incident counts once)."""
        created = self.statuses.get(201, 0)
        latencies = np.array(self.latencies) * 1000.0
        percentile = (
            (lambda q: round(float(np.percentile(latencies, q)), 2))
            if len(latencies)
            else (lambda q: None)
        )
        return {
            "intakes_acknowledged": len(self.acknowledged),
            "intakes_per_s": round(len(self.acknowledged) / seconds, 1),
            "created_201": created,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "retries_same_key": self.retries,
            "replays_same_incident": self.replays_matching,
            "replays_other_incident": self.replays_differing,
            "connection_errors": self.errors,
            "p50_ms": percentile(50),
            "p99_ms": percentile(99),
            "max_ms": percentile(100),
        }


class _BadAnswerError(Exception):
    """The server's answer was cut or not HTTP."""


class _Connection:
    """One keep-alive HTTP/1.1 connection to the server on loopback."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout=10
        )
        return cls(reader, writer)

    async def send(
        self, path: str, headers: list[tuple[str, str]], body: bytes, media: str
    ) -> None:
        lines = [
            f"POST {path} HTTP/1.1",
            "Host: 127.0.0.1",
            f"Content-Type: {media}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers),
        ]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()

    async def request(
        self, path: str, headers: list[tuple[str, str]], body: bytes, media: str
    ) -> tuple[int, bytes]:
        await self.send(path, headers, body, media)
        return await asyncio.wait_for(self._answer(), timeout=30)

    async def _answer(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise _BadAnswerError(lines[0]) from None
        fields = (line.partition(":") for line in lines[1:])
        length = next((int(v) for n, _, v in fields if n.lower() == "content-length"), None)
        if length is None:
            raise _BadAnswerError("no Content-Length")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


class _Server:
    """The real server, one uvicorn process on a free loopback port."""

    def __init__(self, url: str, folder: Path, *, workers: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.folder = folder
        self.workers = workers
        self.port = free_port()
        self.secret = secrets.token_urlsafe(48)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_server_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        env = {
            **os.environ,
            "TONGGE_DATABASE_URL": self.url,
            "TONGGE_LOAD_SAMPLE_CITY": "false",
            "TONGGE_SECRET_KEY": self.secret,
        }
        # A session of its own: the crash kills the server's whole process
        # group (with --workers, uvicorn's supervisor and every worker).
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        wait_for_port(self.port, timeout=180.0)
        _ready(self.port)

    def cpu_seconds(self) -> float:
        """Return the CPU time (user + system) of the server and its worker processes."""
        assert self.process is not None
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(stat.parent.name), int(fields[1])
            if self.process.pid in (pid, ppid):
                total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None


def _check(url: str, acknowledged: dict[str, set[str]]) -> dict[str, int]:
    """Count acknowledged incidents missing from or stored twice in the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            keys = connection.execute(text("SELECT key, incident_id FROM incident_keys")).all()
            incidents = connection.execute(text("SELECT id, public_id FROM incidents")).all()
    finally:
        engine.dispose()
    public = {int(i): str(p) for i, p in incidents}
    stored: dict[str, list[str]] = {}
    for key, incident_id in keys:
        stored.setdefault(str(key), []).append(public.get(int(incident_id), "?"))
    lost = duplicated = 0
    for key, ids in acknowledged.items():
        found = stored.get(key, [])
        if not found or not ids <= set(found) or "?" in found:
            lost += 1
        if len(found) > 1 or len(ids) > 1:
            duplicated += 1
    keyed = {int(i) for _, i in keys}
    return {
        "lost": lost,
        "duplicated": duplicated,
        "incidents_stored": len(incidents),
        # Every load request carries a key: an incident without one was stored twice.
        "incidents_without_key": sum(1 for i in public if i not in keyed),
        "keys_stored_twice": sum(1 for ids in stored.values() if len(ids) > 1),
    }


def _fresh_postgres(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()
    engine = create_engine(target)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    finally:
        engine.dispose()


def _dispatcher_key(db: Database) -> str:
    # A 12345 hotline's key: the whole district.
    units = []
    for summary in unit_registry.list_layers(db):
        top = summary.levels[0].name
        frame, _ = unit_registry.units_page(db, layer=summary.name, level=top, limit=1000)
        units += [f"{summary.name}:{code}" for code in frame["code"]]
    _, token = create_api_key(
        db,
        name="benchmark 12345",
        role="dispatcher",
        units=units,
        rate_per_minute=MAX_KEY_RATE,
        actor=SYSTEM,
    )
    return token


def _points(db: Database, count: int) -> np.ndarray:
    # Points inside the grids of the sample city (located, not in the review queue).
    frame, _ = unit_registry.units_page(db, layer="governance", level="grid", limit=10_000)
    inside = frame.geometry.representative_point()
    rng = np.random.default_rng(17)
    chosen = rng.choice(len(inside), size=min(count, len(inside)), replace=False)
    return np.array([(p.x, p.y) for p in inside.iloc[chosen]])


def _ready(port: int, timeout: float = 180.0) -> None:
    # Answering and able to write (the database opened, migrations checked).
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on :{port} not ready")


def _profile_intake(db: Database, points: np.ndarray, count: int) -> dict[str, Any]:
    """Take ``count`` incidents in through the service in this process, under cProfile."""
    import cProfile
    import io
    import pstats

    from gis.access import SYSTEM as ACTOR
    from gis.incidents import IncidentDraft, IncidentLocation, service
    from gis.locate import LocateService
    from gis.revisions import RevisionClock

    locator = LocateService(db, clock=RevisionClock(db, refresh_seconds=1.0))
    when = datetime.now(UTC)
    rng = random.Random(3)

    def one(i: int) -> None:
        x, y = points[i % len(points)]
        draft = IncidentDraft(
            channel="12345",
            category=rng.choice(CATEGORIES),
            description=f"profile {i}",
            location=IncidentLocation(x=float(x), y=float(y), datum="cgcs2000"),
            address=None,
            event_time=when,
        )
        service.intake(db, ACTOR, draft, idempotency_key=f"profile-{i}", locator=locator)

    one(-1)  # indexes built outside the measurement
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for i in range(count):
        one(i)
    profiler.disable()
    elapsed = time.perf_counter() - started
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    stats.sort_stats("cumulative").print_stats(25)
    top = [line for line in text.getvalue().splitlines() if line.strip()][-26:]
    return {
        "intakes": count,
        "intakes_per_s": round(count / elapsed, 1),
        "ms_per_intake": round(1000 * elapsed / count, 2),
        "profile_cumulative_top": top,
    }


if __name__ == "__main__":
    main()
