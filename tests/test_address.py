"""Standard addresses (一标三实): parsing loose text into components, and matching.

Parsing is checked form by form against every component, and by a property
test that writes generated components in the many ways people type them.
Matching runs on a small hand-made table of 泉州 鲤城区 addresses.
"""

from __future__ import annotations

import doctest
import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import gis.address
from boundaries import sample_city_context
from gis.address import (
    PROVINCES,
    AddressIndex,
    AdminContext,
    AdminUnit,
    ParsedAddress,
    _context,
    _match,
    _parse,
    _text,
    clean_text,
    parse_address,
)
from gis.address._text import chinese_numeral_to_digits

CONTEXT = sample_city_context()
TOP = {"province": "福建省", "city": "泉州市", "district": "鲤城区"}


@pytest.mark.parametrize("module", [gis.address, _context, _match, _parse, _text])
def test_docstring_examples_run(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


# ------------------------------------------------------------------- text


def test_chinese_numerals() -> None:
    cases = {"一": "1", "十": "10", "十五": "15", "二十": "20", "三十二": "32"}
    cases |= {"一百": "100", "一百零五": "105", "两": "2", "三〇二": "302", "零三零二": "0302"}
    assert {n: chinese_numeral_to_digits(n) for n in cases} == cases
    with pytest.raises(ValueError, match="not a Chinese numeral"):
        chinese_numeral_to_digits("三楼")


def test_clean_text_keeps_numerals_inside_names() -> None:
    # 八一路 and 五星社区 are names; 三号楼 and 二单元 are numbers.
    assert clean_text("五星社区八一路 三号楼　二单元") == "五星社区八一路3号楼2单元"
    assert clean_text("中山南路１２３号（近钟楼）") == "中山南路123号近钟楼"
    assert clean_text("3—2—302") == "3-2-302"


# ------------------------------------------------------------------ parsing

# (text, expected components); no context.
PARSE_CASES: list[tuple[str, dict[str, str]]] = [
    (
        "福建省泉州市鲤城区开元街道中山南路123号",
        TOP | {"street": "开元街道", "road": "中山南路", "number": "123号"},
    ),
    (
        "鲤城区开元街道中山南路123号",
        {"district": "鲤城区", "street": "开元街道", "road": "中山南路", "number": "123号"},
    ),
    ("中山南路123号", {"road": "中山南路", "number": "123号"}),
    ("中山南路123-1号", {"road": "中山南路", "number": "123-1号"}),
    ("中山南路123号之一", {"road": "中山南路", "number": "123-1号"}),
    ("中山南路附123号", {"road": "中山南路", "number": "附123号"}),
    ("中山南路88", {"road": "中山南路", "number": "88号"}),
    ("中山南路一百二十三号", {"road": "中山南路", "number": "123号"}),
    (
        "中山南路88号3号楼",
        {"road": "中山南路", "number": "88号", "building": "3幢"},
    ),
    ("中山南路88号三号楼", {"road": "中山南路", "number": "88号", "building": "3幢"}),
    ("中山南路88号3幢", {"road": "中山南路", "number": "88号", "building": "3幢"}),
    ("中山南路88号3栋", {"road": "中山南路", "number": "88号", "building": "3幢"}),
    ("中山南路88号3#楼", {"road": "中山南路", "number": "88号", "building": "3幢"}),
    ("中山南路88号b座", {"road": "中山南路", "number": "88号", "building": "B幢"}),
    (
        "中山南路88号3幢2单元302室",
        {
            "road": "中山南路",
            "number": "88号",
            "building": "3幢",
            "unit": "2单元",
            "floor": "3层",
            "room": "302室",
        },
    ),
    (
        "中山南路88号3幢二单元0302",
        {
            "road": "中山南路",
            "number": "88号",
            "building": "3幢",
            "unit": "2单元",
            "floor": "3层",
            "room": "302室",
        },
    ),
    (
        "中山南路 ８８ 号 十二 栋 2 单元 第十五层 1502 室",
        {
            "road": "中山南路",
            "number": "88号",
            "building": "12幢",
            "unit": "2单元",
            "floor": "15层",
            "room": "1502室",
        },
    ),
    (
        "中山南路88号3幢5楼",
        {"road": "中山南路", "number": "88号", "building": "3幢", "floor": "5层"},
    ),
    (
        "中山南路88号3幢地下一层",
        {"road": "中山南路", "number": "88号", "building": "3幢", "floor": "-1层"},
    ),
    (
        "中山南路88号3-2-302",
        {
            "road": "中山南路",
            "number": "88号",
            "building": "3幢",
            "unit": "2单元",
            "floor": "3层",
            "room": "302室",
        },
    ),
    (
        "中山南路88号A座1203",
        {
            "road": "中山南路",
            "number": "88号",
            "building": "A幢",
            "floor": "12层",
            "room": "1203室",
        },
    ),
    (
        "福建泉州市鲤城区中山南路88号",
        TOP | {"road": "中山南路", "number": "88号"},
    ),
    (
        "江南街道亭店社区18号",
        {"street": "江南街道", "community": "亭店社区", "number": "18号"},
    ),
    (
        "鲤中街道西街社区西街12号",
        {"street": "鲤中街道", "community": "西街社区", "road": "西街", "number": "12号"},
    ),
    ("百里山路12号", {"road": "百里山路", "number": "12号"}),
    ("新华街12号", {"road": "新华街", "number": "12号"}),
    ("江南大街12号", {"road": "江南大街", "number": "12号"}),
    ("新市路12号", {"road": "新市路", "number": "12号"}),
    (
        "上海市静安区愚园路1088弄5号",
        {"province": "上海市", "district": "静安区", "road": "愚园路1088弄", "number": "5号"},
    ),
    (
        "北京市朝阳区建国路88号院3号楼",
        {"province": "北京市", "district": "朝阳区", "road": "建国路", "number": "88号"}
        | {"building": "3幢"},
    ),
    (
        "福建省福州市鼓楼区东街街道东街12号",
        {"province": "福建省", "city": "福州市", "district": "鼓楼区", "street": "东街街道"}
        | {"road": "东街", "number": "12号"},
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES, ids=[c[0] for c in PARSE_CASES])
def test_parse_components(text: str, expected: dict[str, str]) -> None:
    parsed = parse_address(text)
    assert parsed.components() == expected
    assert parsed.unparsed == ()


# (text, expected components) with the sample city's context.
CONTEXT_CASES: list[tuple[str, dict[str, str]]] = [
    (
        "开元街道中山南路123号",
        TOP | {"street": "开元街道", "road": "中山南路", "number": "123号"},
    ),
    ("泉州鲤城中山南路123号", TOP | {"road": "中山南路", "number": "123号"}),
    ("鲤城中山南路123号", TOP | {"road": "中山南路", "number": "123号"}),
    (
        "泉州市中山南路123号",
        {"province": "福建省", "city": "泉州市", "road": "中山南路"} | {"number": "123号"},
    ),
    (
        "金山社区中山南路88号",
        TOP | {"street": "海滨街道", "community": "金山社区", "road": "中山南路", "number": "88号"},
    ),
    (
        "亭店18号",
        TOP | {"street": "江南街道", "community": "亭店社区", "number": "18号"},
    ),
    # A short name followed by a road suffix is the road: 开元路, not 开元街道 + 路.
    ("开元路12号", {"road": "开元路", "number": "12号"}),
    # A district the context does not know stays as written, and fills nothing.
    (
        "丰泽区东海街道刺桐路5号",
        {"district": "丰泽区", "street": "东海街道", "road": "刺桐路"} | {"number": "5号"},
    ),
]


@pytest.mark.parametrize(("text", "expected"), CONTEXT_CASES, ids=[c[0] for c in CONTEXT_CASES])
def test_parse_with_context(text: str, expected: dict[str, str]) -> None:
    parsed = parse_address(text, context=CONTEXT)
    assert parsed.components() == expected
    assert parsed.unparsed == ()


def test_parse_keeps_leftovers() -> None:
    parsed = parse_address("中山南路88号阳光花园3幢(近钟楼)")
    assert parsed.components() == {"road": "中山南路", "number": "88号", "building": "3幢"}
    assert parsed.unparsed == ("阳光花园", "近钟楼")
    assert parse_address("国际城市花园3幢").components() == {"building": "3幢"}
    assert parse_address("阳光花园").unparsed == ("阳光花园",)
    assert parse_address("") == ParsedAddress()


def test_short_names_must_be_unambiguous() -> None:
    # Two streets shortened to 金山: the short name alone is not enough.
    context = AdminContext(
        [
            AdminUnit("street", "金山街道", AdminUnit("district", "甲区")),
            AdminUnit("street", "金山镇", AdminUnit("district", "乙县")),
        ]
    )
    assert parse_address("金山中山南路1号", context=context).road == "金山中山南路"
    # ... but a district that is given picks one.
    parsed = parse_address("甲区金山中山南路1号", context=context)
    assert (parsed.street, parsed.road) == ("金山街道", "中山南路")


def test_short_name_needs_a_component_after_it() -> None:
    # 金山 is short for 金山社区, but 金山大厦 is a building's name, not the community.
    parsed = parse_address("金山大厦12号", context=CONTEXT)
    assert (parsed.community, parsed.number, parsed.unparsed) == (None, "12号", ("金山大厦",))
    assert parse_address("东门中山路12号", context=CONTEXT).community == "东门社区"


def test_known_roads_decide_between_short_name_and_road() -> None:
    text = "开元寺前路12号"
    # Without known roads the short name 开元 (开元街道) is read ...
    assert parse_address(text, context=CONTEXT).street == "开元街道"
    # ... but a road the index knows wins.
    parsed = parse_address(text, context=CONTEXT.with_roads(["开元寺前路"]))
    assert (parsed.street, parsed.road) == (None, "开元寺前路")
    # Known roads also split an unknown prefix off the road.
    parsed = parse_address("老城中山南路5号", context=AdminContext(roads=["中山南路"]))
    assert (parsed.road, parsed.unparsed) == ("中山南路", ("老城",))


def test_context_from_divisions() -> None:
    rows: list[dict[str, Any]] = [
        {"code": "350502", "name": "鲤城区", "parent_code": None, "level": "county"},
        {"code": "350502004", "name": "开元街道", "parent_code": "350502"},
        {"code": "350502004011", "name": "开元社区", "parent_code": "350502004"},
    ]
    context = AdminContext.from_divisions(rows, province="福建省", city="泉州市")
    assert context.units_named("community", "开元社区")[0].lineage() == TOP | {
        "street": "开元街道",
        "community": "开元社区",
    }
    with pytest.raises(ValueError, match="unknown level"):
        AdminContext.from_divisions([{"code": "35", "name": "x", "level": "planet"}])
    assert len([u for u in CONTEXT.units if u.level == "community"]) == 81


ROUND_TRIP = [text for text, _ in PARSE_CASES] + [text for text, _ in CONTEXT_CASES]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_normalised_round_trip(text: str) -> None:
    parsed = parse_address(text, context=CONTEXT)
    again = parse_address(parsed.normalised, context=CONTEXT)
    assert again.components() == parsed.components()
    assert again.normalised == parsed.normalised
    assert parse_address(parsed.normalised).components() == parsed.components()


# ------------------------------------------------------------ property test

# Road names from characters that are no division suffix, road suffix,
# number marker or numeral, so the expected split is unambiguous.
ROAD_CHARS = "中南北东西新华人民解放建设和平胜利光明文化温陵刺桐秀丰泽滨金龙梅峰"
ROAD_ENDS = ["路", "街", "巷", "大道", "大街", "里"]
ADMIN_CHOICES = {
    "province": ["福建省", "广东省", "浙江省"],
    "city": ["泉州市", "厦门市", "杭州市"],
    "district": ["鲤城区", "丰泽区", "思明区", "西湖区"],
    "street": ["开元街道", "海滨街道", "东海街道", "罗山镇"],
    "community": ["金山社区", "东门社区", "亭店村"],
}
CN_DIGITS = "〇一二三四五六七八九"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _chinese(n: int) -> str:
    """Write 1-999 the way it is spoken (十二, 一百零五)."""
    hundreds, tens, ones = n // 100, n // 10 % 10, n % 10
    text = f"{CN_DIGITS[hundreds]}百" if hundreds else ""
    if tens:
        text += f"{CN_DIGITS[tens]}十" if (hundreds or tens > 1) else "十"
    elif hundreds and ones:
        text += "零"
    return text + (CN_DIGITS[ones] if ones else "")


def _numeral(draw: st.DrawFn, n: int, *, digit_by_digit: bool = False) -> str:
    style = draw(st.sampled_from(["ascii", "full", "chinese"]))
    if style == "chinese":
        # Room numbers are read digit by digit (三〇二), others by place value.
        return "".join(CN_DIGITS[int(d)] for d in str(n)) if digit_by_digit else _chinese(n)
    return str(n).translate(FULL_WIDTH) if style == "full" else str(n)


@st.composite
def written_addresses(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """Draw components and one way of writing them; return (text, expected components)."""
    parts: list[str] = []
    expected: dict[str, str] = {}
    for level, names in ADMIN_CHOICES.items():
        if draw(st.booleans()):
            expected[level] = draw(st.sampled_from(names))
            parts.append(expected[level])
    road = draw(st.text(ROAD_CHARS, min_size=1, max_size=4)) + draw(st.sampled_from(ROAD_ENDS))
    if not parts:
        # At the very start 广西/山东... would be read as a province.
        assume(not road.startswith(tuple(PROVINCES.values())))
    parts.append(road)
    expected["road"] = road

    zhi = None  # where 123号之1 was written
    if draw(st.booleans()):
        main = draw(st.integers(1, 999))
        sub = draw(st.none() | st.integers(1, 9))
        attached = draw(st.booleans()) and sub is None
        if sub is None:
            parts.append(f"{'附' if attached else ''}{_numeral(draw, main)}号")
        elif draw(st.booleans()):
            parts.append(f"{main}-{sub}号")  # nobody writes 一百-1号
        else:
            parts.append(f"{_numeral(draw, main)}号之{_numeral(draw, sub)}")
            zhi = len(parts) - 1
        expected["number"] = f"{'附' if attached else ''}{main}{f'-{sub}' if sub else ''}号"
    if draw(st.booleans()):
        building = draw(st.integers(1, 40))
        if draw(st.booleans()):
            marker = draw(st.sampled_from(["号楼", "幢", "栋", "座", "#"]))
            parts.append(f"{_numeral(draw, building)}{marker}")
            expected["building"] = f"{building}幢"
        else:
            letter = draw(st.sampled_from("ABCD"))
            parts.append(f"{letter.lower() if draw(st.booleans()) else letter}座")
            expected["building"] = f"{letter}幢"
    if draw(st.booleans()):
        unit = draw(st.integers(1, 9))
        parts.append(f"{_numeral(draw, unit)}单元")
        expected["unit"] = f"{unit}单元"
    floor = draw(st.integers(1, 30))
    if draw(st.booleans()):
        parts.append(f"{draw(st.sampled_from(['', '第']))}{_numeral(draw, floor)}")
        parts[-1] += draw(st.sampled_from(["层", "楼"]))
        expected["floor"] = f"{floor}层"
    if draw(st.booleans()):
        room = floor * 100 + draw(st.integers(1, 8))
        # A bare number is only a room once something below the road precedes it.
        bare_ok = any(k in expected for k in ("number", "building", "unit", "floor"))
        style = draw(st.sampled_from(["室", "户", "zero", "bare"] if bare_ok else ["室", "户"]))
        if style == "zero":
            parts.append(f"{room:04d}")
        elif style == "bare":
            parts.append(str(room))
        else:
            parts.append(f"{_numeral(draw, room, digit_by_digit=True)}{style}")
        expected["room"] = f"{room}室"
        expected.setdefault("floor", f"{floor}层")
    if zhi is not None and zhi != len(parts) - 1:
        # 1号之1 + 1单元 reads 1号之11单元 once spaces go: ambiguous, so the
        # 之 form is only drawn last.
        parts[zhi] = expected["number"]
    separator = draw(st.sampled_from(["", " ", "\u3000", ","]))
    return separator.join(parts), expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(written_addresses())
def test_parse_recovers_generated_components(case: tuple[str, dict[str, str]]) -> None:
    text, expected = case
    parsed = parse_address(text)
    assert parsed.components() == expected, text
    assert parsed.unparsed == (), text
    assert parse_address(parsed.normalised).components() == expected


# ------------------------------------------------------------------ matching

STANDARD = [
    ("b88-1", "福建省泉州市鲤城区开元街道中山南路88号1幢"),
    ("b88-3", "福建省泉州市鲤城区开元街道中山南路88号3幢"),
    ("n60", "福建省泉州市鲤城区开元街道中山南路60号"),
    ("n90", "福建省泉州市鲤城区开元街道中山南路90号"),
    ("n94", "福建省泉州市鲤城区开元街道中山南路94号"),
    ("n120", "福建省泉州市鲤城区开元街道中山南路120号"),
    ("w12", "福建省泉州市鲤城区鲤中街道温陵路12号"),
    ("h502", "福建省泉州市鲤城区海滨街道新华北路7号2幢1单元502室"),
    ("fz5", "福建省泉州市丰泽区东海街道中山路5号"),
    ("lc5", "福建省泉州市鲤城区海滨街道中山路5号"),
    ("v18", "福建省泉州市鲤城区江南街道亭店社区18号"),
    ("none", "福建省泉州市鲤城区阳光花园"),
]


@pytest.fixture(scope="module")
def index() -> AddressIndex:
    records = [{"id": key, "text": text} for key, text in STANDARD]
    return AddressIndex.from_records(records, key="id", address="text", context=CONTEXT)


def test_index_contents(index: AddressIndex) -> None:
    assert len(index) == len(STANDARD) - 1
    assert index.unindexed == ("none",)
    assert index.roads == ["中山南路", "中山路", "亭店社区", "新华北路", "温陵路"]


def test_exact_match_is_certain(index: AddressIndex) -> None:
    best, *rest = index.match("福建省泉州市鲤城区开元街道中山南路88号3幢")
    assert (best.key, best.score, best.certain) == ("b88-3", 1.0, True)
    assert best.matched == (
        "province",
        "city",
        "district",
        "street",
        "road",
        "number",
        "building",
    )
    assert best.mismatched == best.missing == best.below == ()
    assert best.address == "福建省泉州市鲤城区开元街道中山南路88号3幢"
    assert best.standard.building == "3幢"
    assert all(not m.certain and m.score < best.score for m in rest)
    assert best.to_dict()["components"]["road"] == "中山南路"


@pytest.mark.parametrize(
    "text",
    [
        "中山南路88号3幢",
        "鲤城中山南路88号三号楼",
        "开元街道中山南路88号3栋",
        "泉州市鲤城区中山南路８８号 3#楼",
    ],
)
def test_missing_prefixes_still_certain(index: AddressIndex, text: str) -> None:
    best = index.match(text)[0]
    assert (best.key, best.score, best.certain) == ("b88-3", 1.0, True)


def test_unit_floor_room_below_the_building(index: AddressIndex) -> None:
    best, second, *_ = index.match("中山南路88号3幢2单元302室")
    assert (best.key, best.certain) == ("b88-3", True)
    assert best.score >= 0.9
    assert best.below == ("unit", "floor", "room")
    assert (second.key, second.mismatched) == ("b88-1", ("building",))


def test_household_address_compared_to_the_room(index: AddressIndex) -> None:
    best = index.match("新华北路7号2栋1单元0502")[0]
    assert (best.key, best.score, best.certain) == ("h502", 1.0, True)
    wrong = index.match("新华北路7号2栋1单元602室")[0]
    assert wrong.key == "h502"
    assert set(wrong.mismatched) == {"floor", "room"}
    assert not wrong.certain
    # Given only to the building, the household address is a fair but uncertain guess.
    partial = index.match("新华北路7号2幢")[0]
    assert partial.missing == ("unit", "floor", "room")
    assert 0.8 < partial.score < 0.9
    assert not partial.certain


def test_wrong_number_gives_nearest_numbers(index: AddressIndex) -> None:
    found = index.match("中山南路92号", limit=10)
    assert [m.key for m in found] == ["n90", "n94", "b88-1", "n120", "n60"]
    assert all(m.score < 0.8 and not m.certain for m in found)
    assert all("number" in m.mismatched for m in found)
    scores = [m.score for m in found]
    assert scores == sorted(scores, reverse=True)
    # One candidate per door number: 88号 is offered once, not once per building.
    assert sum(m.standard.number == "88号" for m in found) == 1


def test_limit(index: AddressIndex) -> None:
    assert [m.key for m in index.match("中山南路92号", limit=2)] == ["n90", "n94"]
    with pytest.raises(ValueError, match="limit"):
        index.match("中山南路92号", limit=0)


@pytest.mark.parametrize("text", ["温陵北路12号", "中山北路88号", "阳光花园3幢", "", "88号"])
def test_nothing_similar_gives_nothing(index: AddressIndex, text: str) -> None:
    assert index.match(text) == []


def test_similar_road_is_only_a_suggestion(index: AddressIndex) -> None:
    best = index.match("新华北街7号2幢1单元502室")[0]
    assert best.key == "h502"
    assert "road" in best.mismatched
    assert best.score <= 0.8
    assert not best.certain


def test_same_road_in_two_districts_is_ambiguous(index: AddressIndex) -> None:
    found = index.match("中山路5号")
    assert {m.key for m in found[:2]} == {"fz5", "lc5"}
    assert found[0].score == found[1].score == 1.0
    assert not any(m.certain for m in found)
    # limit=1 does not hide the tie: certainty is decided over all candidates.
    assert not index.match("中山路5号", limit=1)[0].certain
    best, second = index.match("丰泽区中山路5号")[:2]
    assert (best.key, best.certain, second.key) == ("fz5", True, "lc5")
    assert second.mismatched == ("district",)


def test_door_number_alone_among_buildings_is_not_certain(index: AddressIndex) -> None:
    found = index.match("中山南路88号")
    assert [m.key for m in found[:2]] == ["b88-1", "b88-3"]
    assert found[0].score == found[1].score == 0.9
    assert found[0].missing == ("building",)
    assert not found[0].certain
    assert index.match("中山南路88号5幢")[0].certain is False


def test_village_address_hangs_on_the_community(index: AddressIndex) -> None:
    best = index.match("江南街道亭店社区18号")[0]
    assert (best.key, best.certain) == ("v18", True)
    assert index.match("亭店18号")[0].key == "v18"


def test_road_without_number_is_weak(index: AddressIndex) -> None:
    found = index.match("温陵路")
    assert [(m.key, m.score, m.missing) for m in found] == [("w12", 0.5, ("number",))]
    assert not found[0].certain


@pytest.mark.slow
def test_thirty_thousand_addresses_are_fast() -> None:
    rng = random.Random(7)
    roads: set[str] = set()
    while len(roads) < 300:
        roads.add("".join(rng.sample(ROAD_CHARS, rng.randint(2, 4))) + rng.choice(ROAD_ENDS))
    streets = [unit.name for unit in CONTEXT.units if unit.level == "street"]
    records = [
        {
            "key": f"{road}-{number}-{building}",
            "address": f"鲤城区{street}{road}{number}号{building}幢",
        }
        for road, street in zip(sorted(roads), rng.choices(streets, k=len(roads)), strict=True)
        for number in range(1, 50, 2)
        for building in range(1, 5)
    ]
    assert len(records) == 30_000
    index = AddressIndex.from_records(records, context=CONTEXT)
    queries = rng.sample(records, 300)
    started = time.perf_counter()
    for record in queries:
        best = index.match(f"{record['address']}2单元302室")[0]
        assert (best.key, best.certain) == (record["key"], True)
    # About 0.5 ms a query; a linear scan of 30k records would be ~100x slower.
    assert (time.perf_counter() - started) / len(queries) < 0.01
