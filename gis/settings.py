"""Configuration from the environment (prefix ``TONGGE_``), read on demand."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis.errors import InputError

__all__ = ["BASEMAP_DATUMS", "Settings", "basemap_origins", "default_data_dir", "get_settings"]

#: Datums an external basemap can be in (CGCS2000 and WGS84 agree to centimetres).
BASEMAP_DATUMS = ("cgcs2000", "wgs84", "gcj02", "bd09")
# WMTS KVP/REST placeholders, as Tianditu's and GeoServer's templates spell them.
_WMTS_PLACEHOLDERS = {"tilematrix": "{z}", "tilecol": "{x}", "tilerow": "{y}"}

#: The database file's name in the data directory.
DATABASE_FILE = "tongge.sqlite"


def default_data_dir() -> Path:
    """Return where tongge keeps its database, secret key and logs by default.

    In a source checkout (``pyproject.toml`` of tongge next to the ``gis``
    package) that is the checkout's ``var/``, whatever the current folder,
    so that ``tongge`` and ``scripts/dev.sh serve`` use one database;
    installed elsewhere, ``$XDG_DATA_HOME/tongge`` (``~/.local/share/tongge``).
    """
    root = Path(__file__).resolve().parent.parent
    project = root / "pyproject.toml"
    if project.is_file() and 'name = "tongge"' in project.read_text(encoding="utf-8"):
        return root / "var"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tongge"


class Settings(BaseSettings):
    """Service settings; every field can be set as ``TONGGE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TONGGE_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder of the database (tongge.sqlite), the secret key and logs: the "
        "checkout's var/ in a source checkout, else $XDG_DATA_HOME/tongge.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL: sqlite:///path (SpatiaLite) or postgresql+psycopg://...; "
        "default: sqlite:///DATA_DIR/tongge.sqlite.",
    )
    load_sample_city: bool = Field(
        default=True,
        description="Create and load the bundled sample city when the database is empty.",
    )
    spatialite_library: str = Field(
        default="mod_spatialite",
        description="SpatiaLite extension to load into SQLite connections.",
    )
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, description="Upload size limit.")
    max_file_rows: int = Field(
        default=2_000_000, ge=1, description="Most rows (features) read from one file."
    )
    max_file_columns: int = Field(
        default=200, ge=1, description="Most columns (fields) read from one file."
    )
    max_file_decompressed_bytes: int = Field(
        default=1024**3,
        ge=1024,
        description="Most bytes one file may expand to once decompressed and decoded.",
    )
    page_size_limit: int = Field(default=1000, description="Largest page the API returns.")
    open311_public_read: bool = Field(
        default=False,
        description="Open311 GET requests answer without an api_key too, with the status, "
        "category and unit only (never descriptions, contacts or places).",
    )
    index_refresh_seconds: float = Field(
        default=1.0, description="How often the locate indexes look for boundary changes."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key signing access tokens (32+ characters); required to serve the API.",
    )
    token_ttl_seconds: int = Field(
        default=8 * 3600, ge=60, le=7 * 24 * 3600, description="Access token lifetime."
    )
    rate_limit_per_minute: int = Field(
        default=1200, ge=1, description="Requests per minute per signed-in user."
    )
    login_rate_per_minute: int = Field(
        default=10, ge=1, description="Sign-in attempts per minute per client and user name."
    )
    login_client_rate_per_minute: int = Field(
        default=30,
        ge=1,
        description="Failed sign-in attempts per minute per client, whatever the names.",
    )
    password_checks_concurrent: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        ge=1,
        description="Password hash checks at once (~64 MiB each); more get 503. Default: CPUs, ≤4.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            "Addresses or networks of reverse proxies whose X-Forwarded-For/-Proto `tongge "
            "serve` believes; empty (the default): the peer address is the client."
        ),
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Size limit of a request body, POST /api/v1/geocode included (not uploads).",
    )
    batch_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Batch geocoding jobs run at once (off the event loop); more get 429.",
    )
    cli_niceness: int = Field(
        default=5,
        ge=0,
        le=19,
        description="CPU niceness long CLI jobs (import, geocode) add to themselves, so a "
        "server on the same machine keeps answering first (0: none).",
    )
    batch_processes: bool = Field(
        default=True,
        description="Run batch geocoding in worker processes (at a lower CPU priority) "
        "rather than threads of the server, so it cannot slow single locates.",
    )
    incident_taxonomy: str = Field(
        default="",
        description="JSON or YAML file of the incident categories (two levels, with deadlines); "
        "empty: the built-in taxonomy modelled on common 12345 hotline categories.",
    )
    incident_duplicate_radius_m: float = Field(
        default=100.0,
        gt=0,
        le=5000,
        description="Incidents of the same category within this distance (m) are suggested "
        "as duplicates.",
    )
    incident_duplicate_window_hours: float = Field(
        default=72.0,
        gt=0,
        le=24 * 90,
        description="... and within this many hours of each other's event time.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS off when empty).",
    )
    basemap_url: str = Field(
        default="",
        description="External raster basemap under the web map: an XYZ tile template with "
        "{z}/{x}/{y} (WMTS {TileMatrix}/{TileCol}/{TileRow} accepted), or several separated by "
        "spaces, drawn bottom to top (Tianditu: vec_w then cva_w). Empty (the default): the "
        "city's own streets, buildings and POIs, with no network at all. See docs/basemap.md.",
    )
    basemap_datum: Literal["cgcs2000", "wgs84", "gcj02", "bd09"] = Field(
        default="cgcs2000",
        description="Datum of the basemap's tiles: the grids are drawn shifted into it "
        "(Amap/Tencent: gcj02; Tianditu and OSM: cgcs2000/wgs84).",
    )
    basemap_attribution: str = Field(
        default="", max_length=300, description="Attribution shown on the map for the basemap."
    )
    basemap_tile_size: int = Field(
        default=256, ge=64, le=1024, description="Pixel size of the basemap's tiles."
    )
    basemap_max_zoom: int = Field(
        default=18, ge=1, le=22, description="Highest zoom the basemap has tiles for."
    )

    @field_validator("basemap_url")
    @classmethod
    def _basemap_templates(cls, value: str) -> str:
        # Checked at start-up, so that a typo shows in the log, not as a grey map.
        templates = []
        for template in value.split():
            parts = urlsplit(template)
            if parts.scheme not in ("http", "https") or not parts.netloc or "{" in parts.netloc:
                raise ValueError("each template must be an http(s) URL with a fixed host")
            template = re.sub(
                r"\{(tilematrix|tilecol|tilerow)\}",
                lambda m: _WMTS_PLACEHOLDERS[m.group(1).lower()],
                template,
                flags=re.IGNORECASE,
            )
            if not all(key in template for key in ("{z}", "{x}", "{y}")):
                raise ValueError("each template needs {z}, {x} and {y} (or WMTS placeholders)")
            templates.append(template)
        return " ".join(templates)

    @model_validator(mode="after")
    def _database_in_data_dir(self) -> Settings:
        # The data directory is absolute, so that every folder means the same database.
        self.data_dir = self.data_dir.expanduser().absolute()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / DATABASE_FILE}"
        return self


def basemap_origins(settings: Settings) -> list[str]:
    """Return the origins (``scheme://host[:port]``) the basemap's tiles come from.

    Examples
    --------
    >>> basemap_origins(Settings(basemap_url="https://t0.example.cn/vec_w/{z}/{x}/{y}.png"))
    ['https://t0.example.cn']
    """
    origins: list[str] = []
    for template in settings.basemap_url.split():
        parts = urlsplit(template)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in origins:
            origins.append(origin)
    return origins


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process settings (read from the environment once).

    Raises
    ------
    InputError
        When a ``TONGGE_`` variable has a value that cannot be used, naming
        the variable and the problem (never the value: it may be a secret).
    """
    try:
        return Settings()
    except ValidationError as error:
        problems = [
            f"TONGGE_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        ]
        raise InputError("; ".join(problems), field="settings") from None
