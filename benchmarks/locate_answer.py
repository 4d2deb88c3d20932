"""Cost of typed locate answers: building, cutting to a jurisdiction, ``to_dict()``, JSON.

On the two-grid city of the access tests (7 levels in 2 layers, like the
sample city), per answer, in CPU microseconds (``time.process_time``, the
best of ``--repeat`` runs, so that other work on a small machine counts
less): the whole single-point path as the fast path runs it
(``locate(viewer=…)`` → ``to_dict()`` → ``orjson.dumps``) for an
administrator and for a street's dispatcher, and its parts — ``to_dict()``
of a ready answer, ``redacted()`` of a ready answer, and ``orjson.dumps`` of
the ready dict (the standard tool's share). Ratios: typed ``to_dict()`` and
redaction against the JSON encoding of the same answer.

Reference (this machine, loaded): before the typed answers the dispatcher
path took ~56–62 µs and the administrator's ~53–57 µs; with them ~74–85 µs
and ~64–66 µs (the point-in-area test and the immutable answers).

Run: ``python benchmarks/locate_answer.py [--points 2000] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gis.access import JurisdictionResolver, Principal, Role  # noqa: E402
from gis.locate import LocateService  # noqa: E402
from gis.repository import Database  # noqa: E402
from gis.revisions import RevisionClock  # noqa: E402
from tests.fixtures_access import load_two_grids  # noqa: E402


def main() -> None:
    """Time each part per answer and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tongge-answer-bench-"))
    db = Database(f"sqlite:///{folder / 'bench.sqlite'}")
    db.migrate()
    load_two_grids(db, folder)
    clock = RevisionClock(db, refresh_seconds=3600)
    locator = LocateService(db, clock=clock)
    street = Principal(
        kind="api_key", name="bench", role=Role.DISPATCHER, units=("governance:350502001",)
    )
    jurisdiction = JurisdictionResolver(db, clock=clock).jurisdiction(street)
    points = [
        (118.501 + 0.0004 * (i % 120), 24.926 + 0.0002 * (i % 110)) for i in range(args.points)
    ]
    ready = [locator.locate(x, y) for x, y in points]
    dicts = [answer.to_dict() for answer in ready]

    def per_answer(work: Callable[[], object]) -> float:
        work()  # warm-up
        best = float("inf")
        for _ in range(args.repeat):
            start = time.process_time()
            work()
            best = min(best, time.process_time() - start)
        return round(best / len(points) * 1e6, 2)

    admin = per_answer(lambda: [orjson.dumps(locator.locate(x, y).to_dict()) for x, y in points])
    dispatcher = per_answer(
        lambda: [
            orjson.dumps(locator.locate(x, y, viewer=jurisdiction).to_dict()) for x, y in points
        ]
    )
    to_dict = per_answer(lambda: [answer.to_dict() for answer in ready])
    redacted = per_answer(lambda: [answer.redacted(jurisdiction) for answer in ready])
    dumps = per_answer(lambda: [orjson.dumps(body) for body in dicts])
    print(
        json.dumps(
            {
                "points": len(points),
                "admin_path_us": admin,
                "dispatcher_path_us": dispatcher,
                "to_dict_us": to_dict,
                "redacted_us": redacted,
                "orjson_dumps_us": dumps,
                "to_dict_vs_orjson": round(to_dict / dumps, 2),
                "redacted_vs_orjson": round(redacted / dumps, 2),
            }
        )
    )
    db.dispose()


if __name__ == "__main__":
    main()
