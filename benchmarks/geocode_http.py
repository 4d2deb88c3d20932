"""HTTP locate throughput: tongge's ``POST /api/v1/geocode`` vs a plain FastAPI+STRtree endpoint.

Both run under the same uvicorn settings (one worker, uvloop/httptools when
installed) on loopback, one after the other in this run, loaded by ``wrk``
with 16 connections for a bounded time each. tongge answers every level of
every layer (7 levels) with distances, as a dispatcher's API key (checked,
rate-limited and cut to its jurisdiction on every request); the baseline
answers one level, unauthenticated.

Prints one JSON object: requests/s and latency percentiles of both, and the
ratio. Needs Debian's ``wrk``; progress goes to stderr.

Then tongge is loaded twice more, each time with other work running against
the same server (``under_load``, ``--load-seconds`` each): a 400,000-row CSV
batch geocoded again and again through ``POST /api/v1/geocode/batch``
(``during_batch``), and the grid level re-imported with the CLI, valid from
now, again and again, so that the server rebuilds its indexes
(``during_import``). ``background_jobs_done`` counts the batches and imports
finished in the window. Target: p99 at most 20 ms in both.

With ``--before PATH`` (a checkout of an earlier commit, e.g. ``git worktree
add /tmp/before <commit>``) that commit's server is loaded too, idle, in the
same run, on a database its own code made: ``before_after`` gives the ratio
of throughput and the latencies of both (is this version slower?).

Run: ``python benchmarks/geocode_http.py [--seconds 10] [--connections 16] [--batch-rows N]
[--before PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port, wait_for_port  # noqa: E402

from api.bootstrap import open_database  # noqa: E402
from boundaries import SAMPLE_CITY  # noqa: E402
from gis import units as unit_registry  # noqa: E402
from gis.access import SYSTEM  # noqa: E402
from gis.access.accounts import MAX_KEY_RATE, create_api_key  # noqa: E402
from gis.repository import Database  # noqa: E402
from gis.settings import Settings  # noqa: E402


def main() -> None:
    """Run both servers, load each, print the comparison as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-rows", type=int, default=400_000)
    parser.add_argument("--load-seconds", type=int, default=30)
    parser.add_argument(
        "--skip-load", action="store_true", help="Only the idle comparison (no batch or import)."
    )
    parser.add_argument(
        "--before", type=Path, help="A checkout of an earlier commit to load as well (idle)."
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="Seconds to wait after a server first answers (its start-up work in the "
        "background, e.g. preparing map tiles, would be measured otherwise).",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="tongge-http-"))
    url = f"sqlite:///{work / 'city.sqlite'}"
    _log("loading the sample city")
    db = open_database(Settings(database_url=url, load_sample_city=True), create=True)
    token = _dispatcher_key(db)
    db.dispose()
    secret = secrets.token_urlsafe(48)
    results = {}
    under_load: dict[str, dict] = {}
    servers = {
        "tongge": (
            ["api.app:create_server_app"],
            {
                "TONGGE_DATABASE_URL": url,
                "TONGGE_LOAD_SAMPLE_CITY": "false",
                "TONGGE_SECRET_KEY": secret,
            },
            "/api/v1/geocode",
        ),
        "fastapi_strtree": (
            ["benchmarks._strtree_app:create_app"],
            {"BASELINE_UNITS": str(SAMPLE_CITY / "governance" / "micro_grid.geojson")},
            "/geocode",
        ),
    }
    keys = {"tongge": token}
    if args.before is not None:
        before_url = f"sqlite:///{work / 'before.sqlite'}"
        _log(f"loading the sample city with the code of {args.before}")
        keys["tongge_before"] = _before_key(args.before, before_url)
        servers["tongge_before"] = (
            ["api.app:create_server_app"],
            {
                "TONGGE_DATABASE_URL": before_url,
                "TONGGE_LOAD_SAMPLE_CITY": "false",
                "TONGGE_SECRET_KEY": secret,
                "PYTHONPATH": str(args.before),
            },
            "/api/v1/geocode",
        )
    for name, (target, env, path) in servers.items():
        key = keys.get(name)
        (work / name).mkdir(exist_ok=True)
        script = _wrk_script(work / name, _points(200), api_key=key)
        port = free_port()
        _log(f"starting {name} on :{port}")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                *target,
                "--factory",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=args.before if name == "tongge_before" else ROOT,
            env={**os.environ, **env},
        )
        try:
            wait_for_port(port)
            endpoint = f"http://127.0.0.1:{port}{path}"
            _answering(endpoint, key)  # indexes built (in the background or on first use)
            time.sleep(args.settle)
            _load(endpoint, script, 2, args.connections, args.threads)  # warm-up
            _log(f"loading {name} for {args.seconds} s")
            results[name] = _load(endpoint, script, args.seconds, args.connections, args.threads)
            if name == "tongge" and not args.skip_load:
                base = f"http://127.0.0.1:{port}"
                for scenario, work_load in (
                    ("during_batch", _BatchLoad(base, token, work, args.batch_rows)),
                    ("during_import", _ImportLoad(url, secret, work)),
                ):
                    _log(f"loading tongge for {args.load_seconds} s {scenario.replace('_', ' ')}")
                    with work_load:
                        under_load[scenario] = {
                            **_load(
                                endpoint, script, args.load_seconds, args.connections, args.threads
                            ),
                            "background_jobs_done": work_load.done,
                        }
        finally:
            process.terminate()
            process.wait(timeout=30)
    ratio = results["tongge"]["requests_per_s"] / results["fastapi_strtree"]["requests_per_s"]
    print(
        json.dumps(
            {
                "benchmark": "geocode_http",
                "connections": args.connections,
                "seconds": args.seconds,
                "tongge": results["tongge"],
                "fastapi_strtree": results["fastapi_strtree"],
                "throughput_ratio": round(ratio, 2),
                "target_ratio": 2.0,
                "target_p99_ms": 10.0,
                "meets_target": ratio >= 2.0 and results["tongge"]["p99_ms"] <= 10.0,
                "under_load": under_load,
                "before_after": _before_after(results),
                "under_load_target_p99_ms": 20.0,
                "under_load_meets_target": all(
                    (r["p99_ms"] or 1e9) <= 20.0 for r in under_load.values()
                ),
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            }
        )
    )


class _BatchLoad:
    """Posts a large CSV to the batch endpoint again and again, in a thread."""

    def __init__(self, base: str, key: str, work: Path, rows: int) -> None:
        self.url = f"{base}/api/v1/geocode/batch?x=x&y=y"
        self.key = key
        points = _points(rows)
        self.body = "x,y\n" + "\n".join(f"{x:.7f},{y:.7f}" for x, y in points) + "\n"
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=600) as client:
            while not self._stop.is_set():
                response = client.post(
                    self.url,
                    headers={"X-API-Key": self.key},
                    files={"file": ("points.csv", self.body.encode(), "text/csv")},
                )
                if response.status_code != 200:
                    _log(f"batch answered {response.status_code}: {response.text[:200]}")
                    return
                self.done += 1

    def __enter__(self) -> _BatchLoad:
        self._thread.start()
        time.sleep(1.0)  # the first upload is being located
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(600)


class _ImportLoad:
    """Re-imports the grid level with the CLI (valid from now) again and again.

    Each import stores a new version of every grid (their names change), so
    the server rebuilds its indexes after each one.
    """

    def __init__(self, url: str, secret: str, work: Path) -> None:
        import geopandas as gpd

        grids = gpd.read_file(SAMPLE_CITY / "governance" / "grid.geojson")
        self.files = []
        for version in range(2):
            changed = grids.copy()
            changed["name"] = [f"{name}·{version}" for name in changed["name"]]
            path = work / f"grid_{version}.geojson"
            changed.to_file(path)
            self.files.append(path)
        self.env = {
            **os.environ,
            "TONGGE_DATABASE_URL": url,
            "TONGGE_LOAD_SAMPLE_CITY": "false",
            "TONGGE_SECRET_KEY": secret,
        }
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            source = self.files[self.done % 2]
            command = [sys.executable, "-c", "from api.cli import main; main()"]
            finished = subprocess.run(
                [*command, "import", str(source), "--layer", "governance", "--level", "grid"],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
            )
            if finished.returncode != 0:
                _log(f"import failed: {finished.stderr[-500:]}")
                return
            self.done += 1

    def __enter__(self) -> _ImportLoad:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(600)


def _points(count: int) -> np.ndarray:
    import geopandas as gpd

    micro = gpd.read_file(SAMPLE_CITY / "governance" / "micro_grid.geojson")
    rng = np.random.default_rng(1)
    chosen = micro.geometry.sample(count, random_state=1, replace=count > len(micro))
    chosen = chosen.representative_point()
    jitter = rng.normal(0, 1e-5, (count, 2))
    return np.column_stack([chosen.x, chosen.y]) + jitter


_BEFORE_SETUP = """
import sys
from api.bootstrap import open_database
from gis.access import SYSTEM
from gis.access.accounts import MAX_KEY_RATE, create_api_key
from gis.settings import Settings
try:
    from gis import units as registry
except ImportError:  # before the units package was named so
    from gis import registry
settings = Settings(database_url=sys.argv[1], load_sample_city=True)
try:
    db = open_database(settings, create=True)
except TypeError:  # before only `init` created databases
    db = open_database(settings)
units = []
for summary in registry.list_layers(db):
    frame, _ = registry.units_page(db, layer=summary.name, level=summary.levels[0].name, limit=1000)
    units += [f"{summary.name}:{code}" for code in frame["code"]]
_, token = create_api_key(
    db, name="benchmark dispatch", role="dispatcher", units=units,
    rate_per_minute=MAX_KEY_RATE, actor=SYSTEM,
)
print(token)
"""


def _before_key(checkout: Path, url: str) -> str:
    # The earlier commit's own code makes its database and the same key.
    done = subprocess.run(
        [sys.executable, "-c", _BEFORE_SETUP, url],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _before_after(results: dict[str, dict]) -> dict[str, float | None] | None:
    before, after = results.get("tongge_before"), results.get("tongge")
    if before is None or after is None or not before["requests_per_s"]:
        return None
    return {
        "requests_per_s_after_over_before": round(
            after["requests_per_s"] / before["requests_per_s"], 3
        ),
        "p50_ms_before": before.get("p50_ms"),
        "p50_ms_after": after.get("p50_ms"),
        "p99_ms_before": before.get("p99_ms"),
        "p99_ms_after": after.get("p99_ms"),
    }


def _dispatcher_key(db: Database) -> str:
    # A dispatch system's key: the whole county and every police station.
    units = []
    for summary in unit_registry.list_layers(db):
        top = summary.levels[0].name
        frame, _ = unit_registry.units_page(db, layer=summary.name, level=top, limit=1000)
        units += [f"{summary.name}:{code}" for code in frame["code"]]
    _, token = create_api_key(
        db,
        name="benchmark dispatch",
        role="dispatcher",
        units=units,
        rate_per_minute=MAX_KEY_RATE,
        actor=SYSTEM,
    )
    return token


def _wrk_script(folder: Path, points: np.ndarray, *, api_key: str | None) -> Path:
    bodies = ",".join(f'\'{{"x": {x:.7f}, "y": {y:.7f}}}\'' for x, y in points)
    path = folder / ("tongge.lua" if api_key else "baseline.lua")
    auth = f"wrk.headers['X-API-Key'] = '{api_key}'\n" if api_key else ""
    path.write_text(
        "wrk.method = 'POST'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
        + auth
        + f"local bodies = {{{bodies}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\n"
        "end\n"
    )
    return path


def _load(url: str, script: Path, seconds: int, connections: int, threads: int) -> dict:
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if found is None:
        sys.exit(f"wrk printed no throughput:\n{output}")
    rps = float(found.group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    latency = {
        m.group(1): _ms(m.group(2), m.group(3))
        for m in re.finditer(r"\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)", output)
    }
    return {
        "requests_per_s": rps,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _ms(value: str, unit: str) -> float:
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def _answering(endpoint: str, key: str | None, timeout: float = 300.0) -> None:
    import httpx

    headers = {"X-API-Key": key} if key else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = httpx.post(
                endpoint, json={"x": 118.58, "y": 24.91}, headers=headers, timeout=60
            )
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{endpoint} did not answer 200 within {timeout:.0f} s")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
