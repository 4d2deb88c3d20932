"""The API served for real on a free loopback port, and headless Chromium, for HTTP tests.

The browser and client-library tests need a real server (uvicorn in a thread,
the real application) rather than the in-process test client, and a browser
that cannot reach any host but that server.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from api.app import create_app
from gis.repository import Database
from gis.settings import Settings

CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    """Return a TCP port free on the loopback interface now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(db: Database, *, ready: bool = True, **settings: Any) -> Iterator[str]:
    """Run the API on ``db`` with ``settings`` on a free loopback port; yield its URL.

    With ``ready`` the URL is yielded once ``/health/ready`` answers 200 (the
    locate indexes are built in the background) and the tiles are warm, as
    the start-up thread leaves them.
    """
    port = free_port()
    app = create_app(Settings(database_url=db.url, load_sample_city=False, **settings), db=db)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "the server did not start"
        url = f"http://127.0.0.1:{port}"
        if ready:
            for _ in range(600):
                if httpx.get(f"{url}/health/ready", timeout=60).status_code == 200:
                    break
                time.sleep(0.1)
            app.state.tiles.warm()
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def offline_chromium() -> Iterator[Browser]:
    """Launch Debian's headless Chromium able to resolve only the loopback server."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            # Offline: every host name but the loopback server fails to resolve.
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        try:
            yield chromium
        finally:
            chromium.close()
