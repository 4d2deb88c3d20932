"""Synthetic data say so: every sample-city file, the layers it loads, the API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from shapely import box

from api.app import create_app
from boundaries import SAMPLE_CITY, sample_city_listing, sample_city_manifest
from gis.errors import InputError
from gis.repository import Database
from gis.settings import Settings
from gis.units import import_history, import_manifest, import_units, list_layers
from tests._client import signed_in
from tests.fixtures_governance import frame

# The stage-1 extracts are real (outline, statistical names and codes); all else is generated.
REAL = {"source/outline.geojson", "source/divisions.csv"}


def provenance_of(path: Path) -> tuple[object, object]:
    """Return (synthetic, source) as the file states them, in the form that suits its type."""
    if path.suffix == ".parquet":
        metadata = pq.read_schema(path).metadata or {}
        flag = metadata.get(b"synthetic")
        source = metadata.get(b"source")
        return (None if flag is None else json.loads(flag), source and source.decode("utf-8"))
    if path.suffix == ".csv":
        sidecar = path.with_name(path.name + "-metadata.json")
        data = json.loads(sidecar.read_text("utf-8"))
        assert data["url"] == path.name
        return data.get("synthetic"), data.get("source")
    data = json.loads(path.read_text("utf-8"))
    return data.get("synthetic"), data.get("source")


def test_every_sample_city_file_says_whether_it_is_synthetic() -> None:
    files = sorted(
        p
        for p in SAMPLE_CITY.rglob("*")
        if p.is_file() and not p.name.endswith("-metadata.json")  # sidecars, checked with CSVs
    )
    assert len(files) >= 17
    for path in files:
        relative = path.relative_to(SAMPLE_CITY).as_posix()
        synthetic, source = provenance_of(path)
        assert synthetic is (relative not in REAL), relative
        assert isinstance(source, str) and "README" in source, relative
    manifest = sample_city_manifest()
    assert manifest["synthetic"] is True and "示例数据" in manifest["source"]


def test_listings_keep_their_records_under_items() -> None:
    assert len(sample_city_listing("police/misalignments.json")) == 5
    cut = sample_city_listing("places/cut_buildings.json")
    assert cut and all(item["key"].startswith("B") for item in cut)


def write_manifest(folder: Path, *, synthetic: object = True) -> Path:
    units = frame({"900001": box(118.50, 24.90, 118.51, 24.91)}, parent=None)
    units.drop(columns=["attributes"]).to_file(folder / "area.geojson", driver="GeoJSON")
    manifest = {
        "name": "test",
        "synthetic": synthetic,
        "source": "made up for a test",
        "valid_from": "2026-01-01",
        "layers": [
            {
                "name": "sample",
                "title": "示例",
                "levels": [{"name": "area", "file": "area.geojson"}],
            }
        ],
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_a_synthetic_manifest_marks_its_layers_until_real_units_replace_them(
    db: Database, tmp_path: Path
) -> None:
    import_manifest(db, manifest=write_manifest(tmp_path))
    layer = next(s for s in list_layers(db) if s.name == "sample")
    assert layer.synthetic is True and layer.source == "made up for a test"
    # The import history still counts units only.
    [entry] = import_history(db, layer="sample")
    assert entry["counts"] == {"created": 1, "updated": 0, "retired": 0, "unchanged": 0}
    # Real data replacing every synthetic unit: the layer is no longer marked.
    import_units(
        db,
        units=frame({"900002": box(118.50, 24.90, 118.51, 24.91)}, parent=None),
        layer="sample",
        level="area",
        source="real.geojson",
        valid_from="2026-03-01",
    )
    now = next(s for s in list_layers(db) if s.name == "sample")
    assert now.synthetic is False and now.source is None
    # ... but asked about a time the synthetic units were valid, it still is.
    then = next(s for s in list_layers(db, at="2026-02-01") if s.name == "sample")
    assert then.synthetic is True


def test_a_manifest_with_a_bad_synthetic_member_is_refused(db: Database, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="synthetic"):
        import_manifest(db, manifest=write_manifest(tmp_path, synthetic="yes"))


def test_layers_api_and_cli_say_synthetic(db: Database, tmp_path: Path, monkeypatch) -> None:
    import_manifest(db, manifest=write_manifest(tmp_path))
    app = create_app(Settings(database_url=db.url, load_sample_city=False), db=db)
    with signed_in(db, app=app) as client:
        assert isinstance(client, TestClient)
        [layer] = [lv for lv in client.get("/api/v1/layers").json() if lv["name"] == "sample"]
    assert layer["synthetic"] is True and layer["source"] == "made up for a test"

    from typer.testing import CliRunner

    from api.cli import app as cli
    from gis.settings import get_settings

    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        shown = CliRunner().invoke(cli, ["layers", "--format", "json"])
        text = CliRunner().invoke(cli, ["layers"])
    finally:
        get_settings.cache_clear()
    assert shown.exit_code == 0, shown.output
    [entry] = [e for e in json.loads(shown.stdout) if e["name"] == "sample"]
    assert entry["synthetic"] is True and entry["source"] == "made up for a test"
    assert text.exit_code == 0 and "synthetic sample data" in text.stdout
