"""One database for the CLI and the server: the data directory, `tongge init`, owner-only files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gis
from api.bootstrap import open_database
from gis.errors import NotInitializedError
from gis.repository import display_url
from gis.settings import Settings, default_data_dir, get_settings

runner = CliRunner()
CHECKOUT = Path(gis.__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the settings at a fresh data directory, from an unrelated current folder.

    The umask is the usual lax 022: owner-only modes must not depend on it.
    """
    data = tmp_path / "data"
    monkeypatch.setenv("TONGGE_DATA_DIR", str(data))
    monkeypatch.delenv("TONGGE_DATABASE_URL", raising=False)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    get_settings.cache_clear()
    previous = os.umask(0o022)
    try:
        yield data
    finally:
        os.umask(previous)
        get_settings.cache_clear()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_data_dir_is_the_checkouts_var_whatever_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TONGGE_DATA_DIR", raising=False)
    monkeypatch.delenv("TONGGE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert (CHECKOUT / "pyproject.toml").is_file()
    assert default_data_dir() == CHECKOUT / "var"
    settings = Settings()
    assert settings.data_dir == CHECKOUT / "var"
    assert settings.database_url == f"sqlite:///{CHECKOUT / 'var' / 'tongge.sqlite'}"


def test_data_dir_setting_and_database_url_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TONGGE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.delenv("TONGGE_DATABASE_URL", raising=False)
    assert Settings().database_url == f"sqlite:///{tmp_path / 'd' / 'tongge.sqlite'}"
    monkeypatch.setenv("TONGGE_DATABASE_URL", "postgresql+psycopg://u:pw@db/tongge")
    assert Settings().database_url == "postgresql+psycopg://u:pw@db/tongge"
    assert display_url(Settings().database_url) == "postgresql+psycopg://u:***@db/tongge"


def test_open_without_create_refuses_and_creates_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", load_sample_city=False)
    with pytest.raises(NotInitializedError, match="run `tongge init` first"):
        open_database(settings)
    assert not (tmp_path / "data").exists()


def test_init_creates_an_owner_only_database_that_every_command_then_uses(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli import app

    refused = runner.invoke(app, ["layers"])
    assert refused.exit_code == 2 and "run `tongge init` first" in refused.stderr
    assert not data_dir.exists()

    created = runner.invoke(app, ["init"])
    assert created.exit_code == 0, created.output
    database = data_dir / "tongge.sqlite"
    assert mode(data_dir) == 0o700
    assert mode(database) == 0o600
    assert f"database: sqlite:///{database}" in created.stderr
    assert "password:" in created.stderr  # the first administrator

    # From any other folder the commands name and open the same file.
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    listed = runner.invoke(app, ["users", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert "admin" in listed.stdout
    assert f"database: sqlite:///{database}" in listed.stderr
    assert list(other.iterdir()) == []
    assert mode(database) == 0o600

    again = runner.invoke(app, ["init"])  # idempotent: no second administrator
    assert again.exit_code == 0 and "password:" not in again.stderr


def test_init_tightens_an_existing_database_file(data_dir: Path) -> None:
    from api.cli import app

    data_dir.mkdir(mode=0o755)
    database = data_dir / "tongge.sqlite"
    database.touch(mode=0o644)
    database.chmod(0o644)
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert mode(database) == 0o600


def test_the_server_start_creates_the_database_too(data_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app()) as client:
        assert client.get("/health").status_code == 200
    assert mode(data_dir / "tongge.sqlite") == 0o600
    assert mode(data_dir) == 0o700


def test_a_postgis_database_without_the_schema_is_refused_too(tmp_path: Path) -> None:
    # A PostGIS URL has no file to look for: an empty schema is "not initialised".
    from sqlalchemy import create_engine, text

    from tests.conftest import POSTGRES_URL

    engine = create_engine(POSTGRES_URL)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS tongge_uninit CASCADE"))
            connection.execute(text("CREATE SCHEMA tongge_uninit"))
    except Exception as error:  # the same rule as the db fixture: required under CI
        from tests.conftest import _unavailable

        _unavailable(str(error).splitlines()[0])
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3Dtongge_uninit"
    try:
        with pytest.raises(NotInitializedError, match="run `tongge init` first"):
            open_database(Settings(database_url=url, data_dir=tmp_path))
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS tongge_uninit CASCADE"))
        engine.dispose()
