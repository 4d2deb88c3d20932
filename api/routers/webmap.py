"""Settings of the web map: which basemap to draw and where the label glyphs are."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.schemas.webmap import Basemap, MapConfig
from api.web import GLYPH_FONTS
from gis.settings import Settings

router = APIRouter(prefix="/api/v1/map", tags=["tiles"])


@router.get("/config", summary="Web map settings 地图配置", response_model=MapConfig)
def map_config(request: Request) -> MapConfig:
    """Return the basemap (null: the city's own places, offline) and the label fonts.

    An operator sets an external basemap with ``TONGGE_BASEMAP_URL``,
    ``TONGGE_BASEMAP_DATUM`` and ``TONGGE_BASEMAP_ATTRIBUTION`` (see
    ``docs/basemap.md``). Its templates may carry an access key (Tianditu's
    ``tk``): they are given to signed-in users only, whose browsers send the
    key to the tile server anyway.
    """
    settings: Settings = request.app.state.settings
    basemap = None
    if settings.basemap_url:
        basemap = Basemap(
            tiles=settings.basemap_url.split(),
            datum=settings.basemap_datum,
            attribution=settings.basemap_attribution,
            tile_size=settings.basemap_tile_size,
            max_zoom=settings.basemap_max_zoom,
        )
    return MapConfig(basemap=basemap, glyphs="/glyphs/{fontstack}/{range}.pbf", fonts=GLYPH_FONTS)
