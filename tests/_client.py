"""HTTP test clients signed in as a given role (a real user, a real token)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from gis.access import SYSTEM
from gis.access.accounts import create_user
from gis.repository import Database
from gis.settings import Settings

PASSWORD = "correct-horse-battery-staple"
_names = itertools.count(1)


def add_user(db: Database, *, role: str = "admin", units: Sequence[str] = ()) -> str:
    """Create a user with :data:`PASSWORD`; return its name."""
    username = f"{role.replace('_', '-')}-{next(_names)}"
    create_user(
        db, username=username, role=role, units=list(units), password=PASSWORD, actor=SYSTEM
    )
    return username


def token_headers(client: TestClient, username: str) -> dict[str, str]:
    """Sign in through the API; return the Authorization header."""
    response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def sign_in(
    client: TestClient, db: Database, *, role: str = "admin", units: Sequence[str] = ()
) -> dict[str, str]:
    """Create a user of ``role`` bound to ``units`` and return its auth header."""
    return token_headers(client, add_user(db, role=role, units=units))


@contextmanager
def signed_in(
    db: Database,
    *,
    settings: Settings | None = None,
    role: str = "admin",
    units: Sequence[str] = (),
    app: FastAPI | None = None,
) -> Iterator[TestClient]:
    """Yield a client of a new app on ``db`` whose requests carry a ``role`` token."""
    app = app or create_app(
        settings or Settings(database_url=db.url, load_sample_city=False), db=db
    )
    with TestClient(app) as client:
        client.headers.update(sign_in(client, db, role=role, units=units))
        yield client
