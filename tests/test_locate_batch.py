"""Batch locating of ordinary office files: GBK CSV, TSV, Excel, GeoParquet, addresses, names."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import numpy as np
import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.bootstrap import open_database
from api.cli import app
from boundaries import SAMPLE_CITY
from gis import datum
from gis.files import write_xlsx
from gis.locate import LocateService
from gis.repository import Database
from gis.settings import Settings, get_settings
from tests._client import signed_in

runner = CliRunner()
GOVERNANCE = SAMPLE_CITY / "governance"
BATCH = "/api/v1/geocode/batch"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, sample_city_file: Path) -> Iterator[Database]:
    path = tmp_path_factory.mktemp("batch-city") / "city.sqlite"
    shutil.copyfile(sample_city_file, path)  # the sample city, loaded once per run
    db = open_database(Settings(database_url=f"sqlite:///{path}", load_sample_city=False))
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def client(city: Database) -> Iterator[TestClient]:
    settings = Settings(
        database_url=city.url,
        load_sample_city=False,
        index_refresh_seconds=0,
        max_file_decompressed_bytes=5_000_000,
    )
    with signed_in(city, settings=settings) as test_client:
        yield test_client


@pytest.fixture
def cli(city: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TONGGE_DATABASE_URL", city.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    """Twelve incidents at the representative points of micro-grids, with what they expect."""
    micro = gpd.read_file(GOVERNANCE / "micro_grid.geojson").iloc[::97].head(12)
    grids = gpd.read_file(GOVERNANCE / "grid.geojson").set_index("code")["name"]
    points = micro.geometry.representative_point()
    return pd.DataFrame(
        {
            "事件": [f"第{i}号 占道经营" for i in range(len(micro))],
            "lon": points.x.to_numpy(),
            "lat": points.y.to_numpy(),
            "micro": micro["code"].to_numpy(),
            "grid_name": grids.loc[micro["parent_code"]].to_numpy(),
        }
    )


def tongge(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def post(client: TestClient, name: str, content: bytes, **params: str) -> httpx.Response:
    return client.post(BATCH, params=params, files={"file": (name, content)})


def upload(events: pd.DataFrame) -> pd.DataFrame:
    return events[["事件", "lon", "lat"]]


def read_csv(content: bytes) -> pd.DataFrame:
    assert content[:3] == b"\xef\xbb\xbf"  # for Excel on Chinese Windows
    return pd.read_csv(io.BytesIO(content), dtype=str, encoding="utf-8-sig")


def assert_located(result: pd.DataFrame, events: pd.DataFrame) -> None:
    assert list(result["status"]) == ["ok"] * len(events)
    assert list(result["governance_micro_grid"].astype(str)) == list(events["micro"])


# --- encodings and delimiters ------------------------------------------------------------------


def test_gbk_csv_is_located_and_the_encoding_said(client: TestClient, events: pd.DataFrame) -> None:
    data = upload(events).to_csv(index=False).encode("gbk")
    response = post(client, "events.csv", data)
    assert response.status_code == 200, response.text
    assert response.headers["x-tongge-encoding"] == "GBK (detected)"
    result = read_csv(response.content)
    assert list(result["事件"]) == list(events["事件"])
    assert_located(result, events)


def test_wrong_encoding_is_a_clear_400_without_server_paths(
    client: TestClient, events: pd.DataFrame
) -> None:
    data = upload(events).to_csv(index=False).encode("gbk")
    response = post(client, "事件.csv", data, encoding="utf-8")
    assert response.status_code == 400
    problem = response.json()
    assert problem["detail"].startswith("事件.csv: is not UTF-8 text")
    assert "/tmp" not in response.text and "tongge-batch" not in response.text
    garbled = post(client, "events.csv", data, encoding="latin-1")
    assert garbled.status_code == 400
    assert "column names hold garbled text" in garbled.json()["detail"]
    named = upload(events).rename(columns={"事件": "event"}).to_csv(index=False).encode("gbk")
    garbled = post(client, "events.csv", named, encoding="latin-1")
    assert garbled.status_code == 400
    assert "column 'event' (row 1) holds garbled" in garbled.json()["detail"]
    unknown = post(client, "events.csv", data, encoding="klingon")
    assert unknown.status_code == 400 and "klingon" in unknown.json()["detail"]


@pytest.mark.parametrize(
    ("name", "sep", "encoding"),
    [
        ("events.tsv", "\t", "utf-8"),
        ("events.csv", ";", "gbk"),
        ("e.txt", "|", "utf-8"),
        ("unicode.txt", "\t", "utf-16"),  # Excel's "Unicode text" (Unicode 文本)
    ],
)
def test_tsv_semicolon_pipe_and_unicode_text(
    client: TestClient, events: pd.DataFrame, name: str, sep: str, encoding: str
) -> None:
    data = upload(events).to_csv(index=False, sep=sep).encode(encoding)
    response = post(client, name, data)
    assert response.status_code == 200, response.text
    result = read_csv(response.content)
    assert list(result["事件"]) == list(events["事件"])
    assert_located(result, events)


def test_cli_geocodes_gbk_semicolon_csv(cli: None, events: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "events.csv"
    source.write_bytes(upload(events).to_csv(index=False, sep=";").encode("gb18030"))
    code, out, err = tongge("geocode", source, "-o", tmp_path / "out.csv")
    assert code == 0, out + err
    assert "text read as GBK (detected)" in err
    assert_located(read_csv((tmp_path / "out.csv").read_bytes()), events)
    tsv = tmp_path / "events.tsv"
    upload(events).to_csv(tsv, index=False, sep="\t")
    code, out, err = tongge("geocode", tsv, "-o", tmp_path / "tsv.csv", "--encoding", "utf-8")
    assert code == 0, out + err
    assert "text read as UTF-8 (given)" in err


# --- coordinate columns ------------------------------------------------------------------------


def test_coordinate_columns_keep_their_names_and_values(
    client: TestClient, events: pd.DataFrame
) -> None:
    gcj_lon, gcj_lat = datum.wgs84_to_gcj02(events["lon"].to_numpy(), events["lat"].to_numpy())
    table = pd.DataFrame({"id": range(len(events)), "lng": gcj_lon, "lat": gcj_lat})
    response = post(client, "gcj.csv", table.to_csv(index=False).encode(), crs="gcj02")
    assert response.status_code == 200, response.text
    result = pd.read_csv(io.BytesIO(response.content), encoding="utf-8-sig")
    assert list(result.columns[:3]) == ["id", "lng", "lat"]
    np.testing.assert_allclose(result["lng"], gcj_lon)
    np.testing.assert_allclose(result["lat"], gcj_lat)  # the input's own lat, unchanged
    np.testing.assert_allclose(result["lon"], events["lon"], atol=1e-7)  # ours: CGCS2000
    np.testing.assert_allclose(result["tongge_lat"], events["lat"], atol=1e-7)
    assert (np.abs(result["tongge_lat"] - result["lat"]) > 1e-4).all()
    assert list(result["governance_micro_grid"].astype(str)) == list(events["micro"])
    chinese = pd.DataFrame({"经度": events["lon"], "纬度": events["lat"]})
    response = post(client, "cn.csv", chinese.to_csv(index=False).encode())
    assert response.status_code == 200, response.text
    result = read_csv(response.content)
    assert list(result.columns[:2]) == ["经度", "纬度"]
    assert_located(result, events)
    nothing = post(client, "none.csv", b"a,b\n1,2\n")
    assert nothing.status_code == 400
    assert "lon/lat" in nothing.json()["detail"]


def test_geopandas_geoparquet_is_located_in_its_crs(
    client: TestClient, cli: None, events: pd.DataFrame, tmp_path: Path
) -> None:
    points = gpd.GeoDataFrame(
        {"事件": events["事件"]},
        geometry=gpd.points_from_xy(events["lon"], events["lat"]),
        crs=4490,
    ).to_crs(3857)  # metres: must be converted, not taken for degrees
    path = tmp_path / "events.parquet"
    points.to_parquet(path)
    response = post(client, "events.parquet", path.read_bytes())
    assert response.status_code == 200, response.text
    back = gpd.read_parquet(io.BytesIO(response.content))
    assert back.crs.to_epsg() == 3857 and back.geometry.geom_equals(points.geometry).all()
    assert_located(back, events)
    code, out, err = tongge("geocode", path, "-o", tmp_path / "out.xlsx")
    assert code == 0, out + err
    table = pd.read_excel(tmp_path / "out.xlsx", dtype=str)
    assert_located(table, events)
    assert table["geometry"].str.startswith("POINT (").all()  # WKT in a table


# --- Excel -------------------------------------------------------------------------------------


def test_xlsx_batch_round_trip(
    client: TestClient, cli: None, events: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "events.xlsx"
    table = upload(events).copy()
    table.loc[0, "事件"] = '=HYPERLINK("http://evil")'
    write_xlsx(table, path)
    response = post(client, "events.xlsx", path.read_bytes(), names="true")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    first = {h: c for h, c in zip(header, sheet[2], strict=True)}
    assert first["事件"].value == '=HYPERLINK("http://evil")' and first["事件"].data_type == "s"
    result = pd.read_excel(io.BytesIO(response.content), dtype=str)
    assert_located(result, events)
    assert list(result["governance_grid_name"]) == list(events["grid_name"])
    # The CLI writes Excel from a CSV too.
    source = tmp_path / "events.csv"
    upload(events).to_csv(source, index=False)
    code, out, err = tongge("geocode", source, "-o", tmp_path / "out.xlsx", "--names")
    assert code == 0, out + err
    result = pd.read_excel(tmp_path / "out.xlsx", dtype=str)
    assert_located(result, events)
    assert list(result["governance_grid_name"]) == list(events["grid_name"])


def test_xlsx_bomb_is_a_clean_413(client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "small.xlsx"
    write_xlsx(pd.DataFrame({"lon": [118.5], "lat": [24.9]}), path)
    bomb = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("xl/worksheets/"):
                data = data.replace(b"</worksheet>", b" " * 20_000_000 + b"</worksheet>")
            out.writestr(info.filename, data)
    assert len(bomb.getvalue()) < 100_000
    response = post(client, "bomb.xlsx", bomb.getvalue())
    assert response.status_code == 413, response.text
    assert response.json()["detail"].startswith("bomb.xlsx: too large")
    assert "/tmp" not in response.text
    assert client.get("/health").status_code == 200


# --- addresses and names -----------------------------------------------------------------------


def test_address_column_is_located_like_single_addresses(
    client: TestClient, cli: None, city: Database, tmp_path: Path
) -> None:
    with city.reader() as repo:
        stored = repo.places.addresses()
    texts = [*stored["address"].iloc[::2000].head(5), "火星市不存在路999号"]
    service = LocateService(city, refresh_seconds=0)
    expected = [service.locate_address(t).to_dict() for t in texts]
    table = pd.DataFrame({"编号": range(len(texts)), "地址": texts})
    response = post(
        client, "addresses.csv", table.to_csv(index=False).encode(), address="地址", names="true"
    )
    assert response.status_code == 200, response.text
    result = read_csv(response.content)
    assert list(result["status"]) == [a["status"] for a in expected]
    assert result["status"].iloc[-1] == "unmatched" and result["status"].iloc[0] == "ok"
    for row, answer in zip(result.itertuples(), expected, strict=True):
        if answer["status"] == "unmatched":
            assert pd.isna(row.governance_micro_grid) and pd.isna(row.address_match)
            continue
        units = {u["level"]: u for u in answer["layers"]["governance"]["units"]}
        assert row.governance_micro_grid == units["micro_grid"]["code"]
        assert row.governance_grid_name == units["grid"]["name"]
        assert row.address_match == answer["address"]["matched"]
    source = tmp_path / "addresses.csv"
    table.to_csv(source, index=False, encoding="gbk")
    code, out, err = tongge(
        "geocode", source, "-o", tmp_path / "located.csv", "--address-column", "地址"
    )
    assert code == 0, out + err
    located = read_csv((tmp_path / "located.csv").read_bytes())
    assert list(located["status"]) == list(result["status"])
    assert list(located["地址"]) == texts
    code, _, err = tongge("geocode", source, "-o", tmp_path / "x.csv", "--address-column", "住址")
    assert code == 2 and "no address column '住址'" in err
