"""What the web map needs to know before it draws: basemap and label fonts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Basemap(BaseModel):
    """An external raster basemap configured by the operator (``TONGGE_BASEMAP_*``)."""

    tiles: list[str] = Field(
        description="XYZ tile templates ({z}/{x}/{y}), drawn bottom to top.",
        examples=[["https://tiles.example.cn/{z}/{x}/{y}.png"]],
    )
    datum: Literal["cgcs2000", "wgs84", "gcj02", "bd09"] = Field(
        description="Datum of the basemap: the page asks for the overlay tiles in it and "
        "converts what you click or draw back to CGCS2000 before sending it."
    )
    attribution: str = Field(description="Shown on the map; may be empty.")
    tile_size: int = Field(description="Tile size in pixels.", examples=[256])
    max_zoom: int = Field(description="Highest zoom with basemap tiles.", examples=[18])


class MapConfig(BaseModel):
    """Settings of the web map."""

    basemap: Basemap | None = Field(
        description="The external basemap, or null: the city's own streets, buildings and "
        "POIs are the basemap (offline, the default)."
    )
    glyphs: str = Field(
        description="Label glyphs (SDF PBF ranges) on this server; CJK is drawn from the "
        "browser's own fonts.",
        examples=["/glyphs/{fontstack}/{range}.pbf"],
    )
    fonts: list[str] = Field(description="Font stacks the glyphs exist for.")
