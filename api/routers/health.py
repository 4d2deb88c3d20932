"""Liveness (``/health``) and readiness (``/health/ready``)."""

from __future__ import annotations

import logging
import math
import threading
import time

from fastapi import APIRouter, Depends, Request

from api.deps import get_db
from api.schemas.common import Health, Ready
from gis import __version__
from gis.errors import UnavailableError
from gis.repository import Database

router = APIRouter(tags=["health"])
_log = logging.getLogger("tongge.api")
_PROBE_SECONDS = 1.0


class Readiness:
    """The last write probe's answer, reused for a second (the endpoint is public).

    One probe at a time: callers arriving during a probe wait for its answer
    instead of writing again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked = -math.inf
        self._problem: UnavailableError | None = None

    def check(self, db: Database) -> None:
        """Raise UnavailableError (``not ready: …``) when the database refuses a write."""
        with self._lock:
            if time.monotonic() - self._checked >= _PROBE_SECONDS:
                try:
                    db.check_writable()
                    self._problem = None
                except UnavailableError as error:
                    # The driver's words go to the log only: they may name hosts and users.
                    _log.warning("not ready: %s (%s)", error.message, error.details["cause"])
                    self._problem = error
                self._checked = time.monotonic()
            problem = self._problem
        if problem is not None:
            raise UnavailableError(f"not ready: {problem.message}", retry_after=5)


@router.get("/health", summary="Liveness 存活检查")
def health(db: Database = Depends(get_db)) -> Health:
    """Return ``ok`` when the process answers (cheap: no database round trip)."""
    return Health(version=__version__, database=db.dialect)


@router.get(
    "/health/ready",
    summary="Readiness 就绪检查",
    responses={503: {"description": "Not ready: the database cannot be written"}},
)
def ready(request: Request, db: Database = Depends(get_db)) -> Ready:
    """Return ``ready`` when the database accepts a write (a probe that is rolled back).

    `boundaries_revision` tells a map when its tiles show a boundary change:
    once it differs from the value read before the change.
    """
    readiness: Readiness = request.app.state.readiness
    readiness.check(db)
    locator = getattr(request.app.state, "locator", None)
    revision = locator.cache.serving_revision() if locator is not None else None
    return Ready(version=__version__, database=db.dialect, boundaries_revision=revision)
