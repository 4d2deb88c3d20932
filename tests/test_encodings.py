"""Chinese office data: GBK/GB18030 files, garbled text refused, Excel in and out, CSV BOM."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pyogrio
import pytest
from shapely import box
from typer.testing import CliRunner

from api.cli import app
from gis.errors import InputError
from gis.files import ReadLimits, open_source, read_table, write_csv, write_xlsx
from gis.io import read_frame, read_units
from gis.repository import Database
from gis.settings import get_settings
from gis.units import units_page

runner = CliRunner()

JINSHAN = "金山社区第1网格"
# 𠀀 (U+20000) has no GBK code: only GB18030's four-byte form holds it.
RARE = "𠀀村第2网格"
GARBLED = "½ðÉ½ÉçÇøµÚ1Íø¸ñ"  # JINSHAN's GBK bytes read as Latin-1
CODES = ["350502001001001", "350502001001002"]


def grids(names: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": CODES[: len(names)], "name": names},
        geometry=[
            box(118.50 + i * 0.01, 24.90, 118.51 + i * 0.01, 24.91) for i in range(len(names))
        ],
        crs=4490,
    )


def shapefile(folder: Path, names: list[str], encoding: str, *, cpg: str | None = None) -> Path:
    """Write a Shapefile in ``encoding``, without a .cpg (or with ``cpg`` as its content)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "grids.shp"
    pyogrio.write_dataframe(grids(names), path, encoding=encoding)
    (folder / "grids.cpg").unlink(missing_ok=True)
    if cpg is not None:
        (folder / "grids.cpg").write_text(cpg)
    dbf = (folder / "grids.dbf").read_bytes()
    assert dbf[29] == 0  # no language driver byte either: only the bytes can tell
    return path


def tongge(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'tongge.sqlite'}")
    db.migrate()
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()
    db.dispose()


# --- detection ---------------------------------------------------------------------------------


def test_gbk_shapefile_without_cpg_reads_its_names(tmp_path: Path) -> None:
    path = shapefile(tmp_path, [JINSHAN], "cp936")
    assert pyogrio.read_dataframe(path)["name"][0] == GARBLED  # what GDAL alone makes of it
    units = read_units(path)
    assert list(units["name"]) == [JINSHAN]
    assert units.attrs["encoding"].describe() == "GBK (detected)"


def test_gb18030_shapefile_keeps_four_byte_characters(tmp_path: Path) -> None:
    path = shapefile(tmp_path, [JINSHAN, RARE], "gb18030")
    units = read_units(path)
    assert list(units["name"]) == [JINSHAN, RARE]
    assert units.attrs["encoding"].label == "GB18030"


def test_zipped_gbk_shapefile_is_detected_too(tmp_path: Path) -> None:
    path = shapefile(tmp_path / "parts", [JINSHAN], "cp936")
    archive = tmp_path / "grids.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for part in path.parent.iterdir():
            out.write(part, f"grids/{part.name}")
    assert list(read_units(archive)["name"]) == [JINSHAN]


@pytest.mark.parametrize(
    ("encoding", "label"),
    [
        ("utf-8", "UTF-8"),
        ("utf-8-sig", "UTF-8 with BOM"),
        ("gbk", "GBK"),
        ("gb18030", "GB18030"),
        ("utf-16", "UTF-16LE"),  # Excel's "Unicode text"
    ],
)
def test_csv_encodings_are_detected(tmp_path: Path, encoding: str, label: str) -> None:
    names = [JINSHAN, RARE] if encoding != "gbk" else [JINSHAN, "社区"]
    path = tmp_path / "grids.csv"
    table = pd.DataFrame({"code": CODES, "name": names, "wkt": grids(names).geometry.to_wkt()})
    table.to_csv(path, index=False, encoding=encoding)
    frame = read_frame(path)
    assert list(frame["name"]) == names and list(frame.columns[:2]) == ["code", "name"]
    assert frame.attrs["encoding"].label == label


def test_undecodable_text_asks_for_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "big5.csv"
    path.write_bytes("code,name\n1,臺北市中正區\n".encode("big5") + b"2,\xff\xfe\n")
    with pytest.raises(InputError) as caught:
        read_table(open_source(path))
    assert "--encoding" in caught.value.message and caught.value.details["field"] == "encoding"
    table = read_table(open_source(path, encoding="big5"), encoding_errors="replace")
    assert table["name"][0] == "臺北市中正區"


def test_unknown_or_wrong_encoding_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(f"code,name\n1,{JINSHAN}\n".encode("gbk"))
    with pytest.raises(InputError, match="unknown encoding 'klingon'"):
        open_source(path, encoding="klingon")
    with pytest.raises(InputError) as caught:
        read_table(open_source(path, encoding="utf-8"))
    assert "gbk.csv: is not UTF-8 text (byte 0xBD" in caught.value.message
    assert "codec" not in caught.value.message


# --- mojibake ----------------------------------------------------------------------------------


def test_a_lying_cpg_is_refused_naming_the_column(tmp_path: Path) -> None:
    path = shapefile(tmp_path, [JINSHAN], "cp936", cpg="ISO-8859-1")
    with pytest.raises(InputError) as caught:
        read_units(path)
    error = caught.value
    assert error.rule == "garbled_text" and error.details["field"] == "name"
    assert "column 'name'" in error.message and "--encoding gbk" in error.message
    assert list(read_units(path, encoding="gbk")["name"]) == [JINSHAN]


def test_garbled_text_in_any_table_is_refused(tmp_path: Path) -> None:
    gbk = tmp_path / "pois.csv"
    gbk.write_bytes(f"key,name\np1,{JINSHAN}\n".encode("gbk"))
    with pytest.raises(InputError, match=r"column 'name' \(row 1\) holds garbled text"):
        read_table(open_source(gbk, encoding="latin-1"))
    # Text that was garbled before it was saved (UTF-8 read as Latin-1, then saved as UTF-8).
    twice = tmp_path / "twice.csv"
    twice.write_text(f"key,名称\np1,{JINSHAN.encode().decode('latin-1')}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"'名称'.*UTF-8 text"):
        read_table(open_source(twice))
    # Latin-1 names are data: only Chinese in disguise is refused.
    fine = tmp_path / "fine.csv"
    fine.write_text("key,name\np1,Müller Straße\np2,Ångström Café\n", encoding="utf-8")
    assert list(read_table(open_source(fine))["name"]) == ["Müller Straße", "Ångström Café"]


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_check_and_import_say_the_encoding(cli_db: Database, tmp_path: Path) -> None:
    path = shapefile(tmp_path, [JINSHAN, RARE], "gb18030")
    code, out, err = tongge("check", path, "--format", "json")
    assert code == 0, out + err
    warnings = json.loads(out)["warnings"]
    assert {"rule": "encoding", "message": "text read as GB18030 (detected)"}.items() <= warnings[
        0
    ].items()
    code, out, err = tongge(
        "define-layer", "demo", "grid", "--code-length", "grid=15", "--no-prefix-codes"
    )
    assert code == 0, out + err
    code, out, err = tongge(
        "import", path, "--layer", "demo", "--level", "grid", "--valid-from", "2026-01-01"
    )
    assert code == 0, out + err
    assert "GB18030 (detected)" in out
    stored, _ = units_page(cli_db, layer="demo", level="grid", limit=10)
    assert sorted(stored["name"]) == sorted([JINSHAN, RARE])


def test_cli_refuses_mojibake_and_takes_encoding(cli_db: Database, tmp_path: Path) -> None:
    path = shapefile(tmp_path, [JINSHAN], "cp936", cpg="ISO-8859-1")
    code, out, err = tongge("check", path)
    assert code == 2 and "garbled text" in err and "Traceback" not in out + err
    code, out, err = tongge("check", path, "--encoding", "gbk", "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["warnings"][0]["message"] == "text read as GBK (given)"
    code, _, err = tongge("check", path, "--encoding", "nope")
    assert code == 2 and "unknown encoding 'nope'" in err


def test_cli_places_import_of_a_gbk_csv(cli_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "pois.csv"
    table = pd.DataFrame(
        {
            "key": ["p1"],
            "name": ["鲤城区第一中学"],
            "category": ["学校"],
            "lon": [118.58],
            "lat": [24.91],
        }
    )
    table.to_csv(path, index=False, encoding="gbk")
    code, out, err = tongge("places", "import", "pois", path)
    assert code == 0, out + err
    assert "text read as GBK (detected)" in err
    with cli_db.reader() as repo:
        stored = repo.places.pois_table()
    assert list(stored["name"]) == ["鲤城区第一中学"] and list(stored["category"]) == ["学校"]
    code, _, err = tongge("places", "import", "pois", path, "--encoding", "latin-1")
    assert code == 2 and "garbled" in err


# --- Excel and BOM -----------------------------------------------------------------------------


def test_places_import_from_xlsx(cli_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "pois.xlsx"
    write_xlsx(
        pd.DataFrame(
            {
                "key": ["p1", "p2"],
                "name": ['=HYPERLINK("http://x")', "金山小学"],
                "category": ["学校", "学校"],
                "lon": [118.58, 118.59],
                "lat": [24.91, 24.92],
            }
        ),
        path,
    )
    code, out, err = tongge("places", "import", "pois", path)
    assert code == 0, out + err
    with cli_db.reader() as repo:
        stored = repo.places.pois_table().sort_values("key")
    assert list(stored["name"]) == ['=HYPERLINK("http://x")', "金山小学"]
    assert stored["lon"].round(6).tolist() == [118.58, 118.59]


def test_xlsx_reads_cached_formula_values_never_formulas(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["key", "persons"])
    sheet.append(["h1", "=1+2"])  # saved by openpyxl: a formula with no cached value
    path = tmp_path / "formulas.xlsx"
    book.save(path)
    # Excel would have stored the value it computed: add one, as Excel does.
    with zipfile.ZipFile(path) as source:
        members = {i.filename: source.read(i) for i in source.infolist()}
    members["xl/worksheets/sheet1.xml"] = members["xl/worksheets/sheet1.xml"].replace(
        b"<f>1+2</f><v />", b"<f>1+2</f><v>3</v>"
    )
    cached = tmp_path / "cached.xlsx"
    with zipfile.ZipFile(cached, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    assert read_table(open_source(cached), dtype=str)["persons"].tolist() == ["3"]
    assert read_table(open_source(path), dtype=str)["persons"].isna().all()


def test_xlsx_bomb_and_huge_sheet_are_refused_before_loading(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["lon", "lat"])
    sheet.append([118.5, 24.9])
    small = tmp_path / "small.xlsx"
    book.save(small)
    with zipfile.ZipFile(small) as source:
        members = {i.filename: source.read(i) for i in source.infolist()}
    sheet_xml = members["xl/worksheets/sheet1.xml"]

    def variant(name: str, xml: bytes) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for member, data in members.items():
                out.writestr(member, xml if member == "xl/worksheets/sheet1.xml" else data)
        return path

    bomb = variant(
        "bomb.xlsx", sheet_xml.replace(b"</worksheet>", b" " * 30_000_000 + b"</worksheet>")
    )
    assert bomb.stat().st_size < 100_000
    with pytest.raises(InputError) as caught:
        read_table(open_source(bomb), ReadLimits(max_bytes=10_000_000))
    assert caught.value.details["status"] == 413 and "decompressed" in caught.value.message
    tall = variant("tall.xlsx", sheet_xml.replace(b'ref="A1:B2"', b'ref="A1:B1048576"'))
    with pytest.raises(InputError, match="more than 1,000 rows") as caught:
        read_table(open_source(tall), ReadLimits(max_rows=1_000))
    # A dimension that understates the rows does not hide them from the count.
    rows = b"".join(b'<row r="%d"><c r="A%d"><v>1</v></c></row>' % (i, i) for i in range(3, 3000))
    lying = variant("lying.xlsx", sheet_xml.replace(b"</sheetData>", rows + b"</sheetData>"))
    with pytest.raises(InputError, match="more than 1,000 rows"):
        read_table(open_source(lying), ReadLimits(max_rows=1_000))
    entity = variant(
        "entity.xlsx",
        sheet_xml.replace(b"<worksheet", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><worksheet', 1),
    )
    with pytest.raises(InputError, match="DOCTYPE/ENTITY"):
        read_table(open_source(entity))
    fake = tmp_path / "fake.xlsx"
    fake.write_text("lon,lat\n1,2\n")
    with pytest.raises(InputError, match="cannot read it as an Excel workbook"):
        open_source(fake)


def test_csv_exports_start_with_a_bom_and_stay_formula_safe(
    cli_db: Database, tmp_path: Path
) -> None:
    text = write_csv(pd.DataFrame({"name": ["=1+1", JINSHAN]}))
    assert text is not None and text.startswith("\ufeffname\n'=1+1\n")
    appended = tmp_path / "chunks.csv"
    write_csv(pd.DataFrame({"a": [1]}), appended)
    write_csv(pd.DataFrame({"a": [2]}), appended, mode="a", header=False)
    assert appended.read_bytes() == b"\xef\xbb\xbfa\n1\n2\n"  # one mark, at the start
    path = shapefile(tmp_path / "in", [JINSHAN, RARE], "gb18030")
    assert tongge("define-layer", "demo", "grid", "--no-prefix-codes")[0] == 0
    code, out, err = tongge(
        "import", path, "--layer", "demo", "--level", "grid", "--valid-from", "2026-01-01"
    )
    assert code == 0, out + err
    csv_path = tmp_path / "grids.csv"
    assert tongge("export", "--layer", "demo", "--format", "csv", "-o", csv_path)[0] == 0
    data = csv_path.read_bytes()
    assert data[:3] == b"\xef\xbb\xbf"
    assert JINSHAN in data.decode("utf-8-sig") and RARE in data.decode("utf-8-sig")
    xlsx_path = tmp_path / "grids.xlsx"
    code, _, err = tongge("export", "--layer", "demo", "--format", "xlsx", "-o", xlsx_path)
    assert code == 0, err
    book = openpyxl.load_workbook(xlsx_path, read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    header = list(rows[0])
    assert {"code", "name", "wkt"} <= set(header)
    assert sorted(r[header.index("name")] for r in rows[1:]) == sorted([JINSHAN, RARE])
    back = read_units(xlsx_path, crs="EPSG:4490")  # and it reads back
    assert sorted(back["name"]) == sorted([JINSHAN, RARE])
