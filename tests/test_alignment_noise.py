"""Noise study: the sample police layer drawn again, with a shaky hand or on the wrong basemap.

The police layer (stations and beats) is moved by a smooth random
displacement field — a sum of a few low-frequency sinusoids with random
phases — applied to every vertex with ``shapely.transform``, so vertices
shared by two beats (or a beat and its station) move identically and the
layer stays a valid nested coverage. At 0.5, 1, 3 and 8 m rms the same-grid
check must still find exactly the five seeded misalignments and list the
rest as boundary noise; a copy drawn on a GCJ-02 basemap must be reported as
a datum offset within 5 m of the true shift, not as hundreds of violations.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pytest
import shapely

from boundaries import SAMPLE_CITY, sample_city_listing
from gis import datum
from gis.alignment import NO_NOISE, AlignmentReport, check_alignment, propose_alignment
from gis.validate import convert_to_datum, validate_units

LAT0 = 24.9
M_PER_DEG_LON = 111_320.0 * np.cos(np.radians(LAT0))
M_PER_DEG_LAT = 110_574.0


def smooth_field(rms_m: float, seed: int, *, waves: int = 4) -> Callable[[np.ndarray], np.ndarray]:
    """Return a smooth displacement of lon/lat vertices, vector rms ``rms_m`` metres."""
    rng = np.random.default_rng(seed)
    wavelengths = rng.uniform(400.0, 2_500.0, waves)
    angles = rng.uniform(0.0, 2 * np.pi, waves)
    k = (2 * np.pi / wavelengths)[:, None] * np.column_stack([np.cos(angles), np.sin(angles)])
    phases = rng.uniform(0.0, 2 * np.pi, (waves, 2))
    # Each component is a sum of `waves` unit sinusoids: variance waves / 2.
    amplitude = rms_m / np.sqrt(waves)

    def move(xy: np.ndarray) -> np.ndarray:
        x = (xy[:, 0] - 118.6) * M_PER_DEG_LON
        y = (xy[:, 1] - LAT0) * M_PER_DEG_LAT
        phase = x[:, None] * k[:, 0] + y[:, None] * k[:, 1]
        dx = amplitude * np.sin(phase + phases[:, 0]).sum(axis=1)
        dy = amplitude * np.sin(phase + phases[:, 1]).sum(axis=1)
        return np.column_stack([xy[:, 0] + dx / M_PER_DEG_LON, xy[:, 1] + dy / M_PER_DEG_LAT])

    return move


@pytest.fixture(scope="module")
def city() -> dict[str, gpd.GeoDataFrame]:
    files = {
        "county": "governance/county",
        "communities": "governance/community",
        "grids": "governance/grid",
        "micro": "governance/micro_grid",
        "stations": "police/station",
        "beats": "police/beat",
    }
    return {k: gpd.read_file(SAMPLE_CITY / f"{v}.geojson") for k, v in files.items()}


def seeded() -> set[tuple[str, str]]:
    """(kind, first code) of every violation the five seeded misalignments make."""
    listed = sample_city_listing("police/misalignments.json")
    expected: set[tuple[str, str]] = set()
    for entry in listed:
        if entry["kind"] == "grid_split_across_beats":
            expected.add((entry["kind"], entry["grid"]))
            expected |= {("beat_not_union_of_grids", beat) for beat in entry["beats"]}
        elif entry["kind"] == "beat_crosses_community":
            expected.add((entry["kind"], entry["beat"]))
        else:
            expected.add((entry["kind"], entry["community"]))
            expected.add(("beat_crosses_community", entry["beat"]))
    return expected


def moved(frame: gpd.GeoDataFrame, move: Callable[[np.ndarray], np.ndarray]) -> gpd.GeoDataFrame:
    return frame.set_geometry(
        gpd.GeoSeries(shapely.transform(frame.geometry.values, move), crs=frame.crs)
    )


def check(city: dict[str, gpd.GeoDataFrame], beats, stations, **options) -> AlignmentReport:
    return check_alignment(
        city["grids"],
        beats,
        a_parents=city["communities"],
        b_parents=stations,
        weights=city["micro"],
        **options,
    )


@pytest.mark.parametrize("seed", [7, 2026])
@pytest.mark.parametrize("rms_m", [0.5, 1.0, 3.0, 8.0])
def test_noisy_police_layer_finds_the_seeded_misalignments_exactly(
    city: dict[str, gpd.GeoDataFrame], rms_m: float, seed: int
) -> None:
    move = smooth_field(rms_m, seed)
    beats, stations = moved(city["beats"], move), moved(city["stations"], move)
    # Topology kept: the moved layer is still a valid nested coverage.
    assert shapely.coverage_is_valid(np.asarray(beats.geometry.values))
    assert validate_units(beats, parents=stations).ok

    report = check(city, beats, stations)
    assert {(v.kind, v.codes[0]) for v in report.violations} == seeded()
    assert report.datum_offset is None
    # The noise is listed per pair, thin or light: few households (none in a
    # grid with no residents, NaN share) and a small part of the grid.
    assert len(report.noise) > 20
    tolerance = report.noise_tolerance
    for noise in report.noise:
        thin = noise.width_m < tolerance.width_m
        share = noise.household_share
        few = share is None or np.isnan(share) or share < tolerance.household_share
        assert thin or (few and noise.area_share < tolerance.area_share), noise
    body = json.loads(json.dumps(report.to_dict()))
    assert body["noise_summary"]["count"] == len(report.noise)
    # Without noise handling the same layer drowns in violations (the 207 of 349).
    strict = check(city, beats, stations, noise=NO_NOISE)
    assert len(strict.violations) > 3 * len(report.violations)


def test_noisy_layer_proposal_moves_only_the_seeded_grids_and_snaps_the_rest(
    city: dict[str, gpd.GeoDataFrame],
) -> None:
    move = smooth_field(3.0, 11)
    beats, stations = moved(city["beats"], move), moved(city["stations"], move)
    proposal = propose_alignment(
        city["grids"],
        beats,
        a_parents=city["communities"],
        b_parents=stations,
        weights=city["micro"],
    )
    listed = sample_city_listing("police/misalignments.json")
    assert {m.a_code for m in proposal.moves} == {e.get("grid") or e["grids"][0] for e in listed}
    assert proposal.aligned, proposal.report.to_dict()["violations"]
    assert len(proposal.snapped) > 20  # noisy beats snapped onto the grid edges
    assert not proposal.report.noise  # and nothing noisy is left


def test_gcj02_copy_is_a_datum_offset_not_hundreds_of_violations(
    city: dict[str, gpd.GeoDataFrame],
) -> None:
    def shifted(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        geoms = convert_to_datum(np.asarray(frame.geometry.values, dtype=object), "gcj02")
        return frame.set_geometry(gpd.GeoSeries(geoms, crs=frame.crs))

    beats, stations = shifted(city["beats"]), shifted(city["stations"])
    report = check(city, beats, stations)
    offset = report.datum_offset
    assert offset is not None and offset.datum == "gcj02"
    # The true shift at the centre of the layer, measured independently.
    lon, lat = offset.lon, offset.lat
    gx, gy = datum.wgs84_to_gcj02([lon], [lat])
    true = np.array([(gx[0] - lon) * M_PER_DEG_LON, (gy[0] - lat) * M_PER_DEG_LAT])
    assert np.hypot(*(np.array(offset.offset_m) - true)) < 5.0
    assert 250 < offset.distance_m < 700
    # Converted back, only the real misalignments are left.
    assert {(v.kind, v.codes[0]) for v in report.violations} == seeded()
    assert not report.aligned and "gcj02" in report.to_dict()["datum_offset"]["message"]
    # The proposal works in CGCS2000: the converted layer, fixed.
    proposal = propose_alignment(
        city["grids"],
        beats,
        a_parents=city["communities"],
        b_parents=stations,
        weights=city["micro"],
    )
    assert proposal.aligned and proposal.datum_offset is not None
    assert proposal.datum_offset.converted and len(proposal.moves) == 5
    # Naively, the shift makes every grid a violation.
    naive = check(city, beats, stations, detect_datum=False)
    assert len(naive.violations) > 300

    # tongge check against the parent (beats in a shifted county): rule datum_offset.
    county = city["county"]
    stations_report = validate_units(stations, parents=county)
    assert "datum_offset" in stations_report.rules()
    assert validate_units(city["stations"], parents=county).rules().isdisjoint({"datum_offset"})
    # A few units of the parent (a partial file), offset or not, are no datum mix-up.
    one = stations.iloc[[0]]
    assert "datum_offset" not in validate_units(one, parents=county).rules()


def test_bd09_copy_is_recognised_as_bd09(city: dict[str, gpd.GeoDataFrame]) -> None:
    geoms = convert_to_datum(np.asarray(city["beats"].geometry.values, dtype=object), "bd09")
    beats = city["beats"].set_geometry(gpd.GeoSeries(geoms, crs=city["beats"].crs))
    report = check_alignment(city["grids"], beats)
    assert report.datum_offset is not None and report.datum_offset.datum == "bd09"
    assert 900 < report.datum_offset.distance_m < 1_500
