"""GCJ-02 / BD-09 conversions against published reference points, and round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gis import datum

# (function, input lon/lat, published output lon/lat): values from the unit tests of
# widely used open-source converters (hutool CoordinateUtilTest, gcoord, geoToolbox).
REFERENCES = [
    (datum.wgs84_to_gcj02, (116.404, 39.915), (116.41024449916938, 39.91640428150164)),
    (datum.wgs84_to_gcj02, (116.0, 40.0), (116.006141221789, 40.001213650174)),
    (datum.gcj02_to_bd09, (116.404, 39.915), (116.41036949371029, 39.92133699351022)),
    (datum.gcj02_to_bd09, (123.0, 45.0), (123.00636499, 45.00636899)),
    (datum.wgs84_to_bd09, (116.404, 39.915), (116.41662724378733, 39.922699552216216)),
]


@pytest.mark.parametrize(("convert", "given_point", "expected"), REFERENCES)
def test_published_reference_points(convert, given_point, expected) -> None:
    lon, lat = convert([given_point[0]], [given_point[1]])
    assert lon[0] == pytest.approx(expected[0], abs=1e-7)  # 1e-7° ≈ 1 cm
    assert lat[0] == pytest.approx(expected[1], abs=1e-7)


def test_gcoord_inverse_reference() -> None:
    # gcoord's GCJ02 -> WGS84 for (123, 45), to 5 decimals.
    lon, lat = datum.gcj02_to_wgs84([123.0], [45.0])
    assert lon[0] == pytest.approx(122.99395597, abs=1e-5)
    assert lat[0] == pytest.approx(44.99804071, abs=1e-5)


def _metres(dlon: np.ndarray, dlat: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return np.hypot(dlon * 111_320 * np.cos(np.radians(lat)), dlat * 110_574)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=74.0, max_value=134.0),
    st.floats(min_value=18.0, max_value=53.0),
)
def test_round_trips_are_below_half_a_millimetre(lon: float, lat: float) -> None:
    for forward, inverse in (
        (datum.wgs84_to_gcj02, datum.gcj02_to_wgs84),
        (datum.wgs84_to_bd09, datum.bd09_to_wgs84),
    ):
        shifted = forward([lon], [lat])
        back_lon, back_lat = inverse(*shifted)
        assert _metres(back_lon - lon, back_lat - lat, np.array([lat]))[0] < 5e-4


def test_shifts_have_the_documented_size_in_quanzhou() -> None:
    lon, lat = np.array([118.58]), np.array([24.91])
    gcj = datum.wgs84_to_gcj02(lon, lat)
    bd = datum.wgs84_to_bd09(lon, lat)
    assert 270 < _metres(gcj[0] - lon, gcj[1] - lat, lat)[0] < 620
    assert 950 < _metres(bd[0] - lon, bd[1] - lat, lat)[0] < 1400


def test_outside_china_is_untouched_and_nan_passes_through() -> None:
    lon, lat = datum.gcj02_to_wgs84([2.35, np.nan], [48.85, 24.9])
    assert lon[0] == 2.35 and lat[0] == 48.85
    assert np.isnan(lon[1])
