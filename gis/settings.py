"""Configuration from the environment (prefix ``TONGGE_``), read on demand."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Service settings; every field can be set as ``TONGGE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TONGGE_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{Path('var/tongge.sqlite').absolute()}",
        description="SQLAlchemy URL: sqlite:///path (SpatiaLite) or postgresql+psycopg://...",
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
    page_size_limit: int = Field(default=1000, description="Largest page the API returns.")
    index_refresh_seconds: float = Field(
        default=1.0, description="How often the locate indexes look for boundary changes."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process settings (read from the environment once)."""
    return Settings()
