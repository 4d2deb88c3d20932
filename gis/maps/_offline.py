"""Folium maps that open with no internet: Leaflet inlined, no CDN, no tile server.

folium's default template loads Leaflet, jQuery, Bootstrap and Font Awesome
from five CDNs, and a basemap from OpenStreetMap: on a government intranet
the map is blank. These maps carry Leaflet itself (copied from the pinned npm
package by ``web/build.mjs`` into ``gis/maps/assets``) inside the HTML file,
images as data URIs, and draw the units themselves on a plain background.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import folium
from branca.element import Element

__all__ = ["offline_map"]

ASSETS = Path(__file__).parent / "assets"


def offline_map(**options: Any) -> folium.Map:
    """Return a folium Map with no external resources (``tiles`` is always None).

    Examples
    --------
    >>> html = offline_map(location=(24.91, 118.58), zoom_start=12).get_root().render()
    >>> any(tag in html for tag in ('<script src="http', 'rel="stylesheet" href="http'))
    False
    """
    options["tiles"] = None
    m = folium.Map(**options)
    # Only Leaflet itself: the plugins of the default template (jQuery,
    # Bootstrap, awesome-markers, Font Awesome) are not used by these maps.
    m.default_js = []
    m.default_css = []
    # The root is a branca Figure, which has a header.
    header = m.get_root().header  # type: ignore[attr-defined]
    style, script = _leaflet()
    header.add_child(Element(f"<style>{style}</style>"), name="leaflet_css", index=0)
    header.add_child(Element(f"<script>{script}</script>"), name="leaflet_js", index=1)
    header.add_child(
        Element("<style>.folium-map, .leaflet-container {background: #f4f1ea;}</style>"),
        name="tongge_background",
    )
    return m


@lru_cache(maxsize=1)
def _leaflet() -> tuple[str, str]:
    css = (ASSETS / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        image = ASSETS / "images" / match.group(1)
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    css = re.sub(r"url\(images/([\w.-]+\.png)\)", inline, css)
    script = (ASSETS / "leaflet.js").read_text(encoding="utf-8")
    # A closing script tag inside the inlined code would end the element early.
    return css, script.replace("</script", "<\\/script")
