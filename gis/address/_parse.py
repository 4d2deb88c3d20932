"""Parse a Chinese address into standard-address components (一标三实 标准地址).

A standard address reads top down: 行政区划 (province, city, district,
street, community) + 街路巷 (road) + 门牌号 (door number) + 楼栋号 (building)
+ 单元号 (unit) + 楼层 (floor) + 户号 (room). The parser follows that order:

1. divisions, each level optional: a known name from the
   :class:`AdminContext` (full, or short when unambiguous), one of the 34
   provinces, or a name ending in the level's suffix (区, 街道, 社区...);
2. the road: a known road name, else the text up to the last road suffix
   (路, 街, 巷, 弄, 里, 道, 大道, 胡同...) before the first number;
3. numbered components, each recognised by its marker (号, 幢/栋/座/号楼,
   单元, 层/楼, 室/户) in any order, plus the dash form ``3-2-302``
   (building-unit-room) and a bare trailing number;
4. the floor from a 3-4 digit room number when none is given (0302 is on 3层).

Whatever is left (estate names, landmarks, notes) is kept in ``unparsed``.
Typos are not corrected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gis.address._context import ADMIN_LEVELS, PROVINCES, AdminContext, AdminLevel, AdminUnit
from gis.address._text import clean_text

__all__ = ["COMPONENTS", "ParsedAddress", "parse_address"]

#: Component names in standard-address order, top down.
COMPONENTS: Final = (*ADMIN_LEVELS, "road", "number", "building", "unit", "floor", "room")

#: Endings of a road name (街路巷), multi-character first.
ROAD_SUFFIXES: Final = ("大道", "大街", "大路", "胡同", "路", "街", "巷", "弄", "里", "道")

_LEVEL_STARTS = ("省", "市", "区", "县", "旗", "镇", "乡", "村", "社区", "街道", "居委会", "州")
# Text that can only continue a name: a division or road name cannot end right before it.
_CONTINUES_NAME = (*ROAD_SUFFIXES, "号")

_EMPTY_CONTEXT = AdminContext()

# Division names found by suffix alone: characters a name of that level never
# holds, so the match cannot run across a lower level (开元街道金山社区).
_NOT_IN_NAME = r"\d#\-号路巷弄"
_SUFFIX_RULES: dict[AdminLevel, re.Pattern[str]] = {
    "city": re.compile(rf"([^{_NOT_IN_NAME}省市区县镇乡村街]{{2,6}}?)(自治州|地区|市|盟)"),
    "district": re.compile(rf"([^{_NOT_IN_NAME}省市区县镇乡村街]{{2,7}}?)(自治县|区|县|旗|市)"),
    "street": re.compile(rf"([^{_NOT_IN_NAME}省市区县镇乡村]{{2,8}}?)(街道办事处|街道|镇|乡)"),
    "community": re.compile(
        rf"([^{_NOT_IN_NAME}省市区县镇乡]{{2,8}}?)"
        r"(社区居民委员会|社区居委会|村民委员会|居委会|村委会|社区|村)"
    ),
}
# Places ending in 区 that are not districts.
_NOT_DISTRICTS = ("小区", "园区", "校区", "景区", "片区", "厂区", "社区", "住宅区", "生活区")
# Official suffixes of communities are shortened in standard addresses.
_COMMUNITY_SUFFIXES = {"社区居民委员会": "社区", "社区居委会": "社区", "居委会": "社区"}
_COMMUNITY_SUFFIXES |= {"村民委员会": "村", "村委会": "村"}

# Where the numbered part begins: a digit, 附 + digit, or a lettered building/unit.
_NUMBERED_START = re.compile(
    r"(?:附|负|地下|-)?\d|[A-Z](?:座|栋|幢|#|号楼|单元|楼)|[甲乙丙丁戊己庚辛壬癸](?:座|栋|幢|号楼)"
)
_LANE = re.compile(r"\d+(?:弄|支巷|巷|胡同)")

_BUILDING_ID = r"[A-Z]?\d+[A-Z]?(?:-\d+)?|[A-Z]|[甲乙丙丁戊己庚辛壬癸]"
_TRIPLE = re.compile(r"([A-Z]?\d+[A-Z]?)-(\d+)-(\d+)([A-Z]?)(?:室|户|房)?$")
_NUMBER = re.compile(r"(附)?(\d+)([A-Z])?(?:-(\d+))?号院?(?!楼|栋|幢|座|单元|房)")
_BUILDING = re.compile(rf"({_BUILDING_ID})(?:号楼|号栋|号幢|号座|#楼|#|幢|栋|座)|([A-Z])楼")
_UNIT = re.compile(r"(\d+|[A-Z])号?单元")
_FLOOR = re.compile(r"(-|负|地下)?(\d+)[层楼]")
_ROOM = re.compile(r"([A-Z]?)(\d+)([A-Z]?)(?:室|户|号房|房)")
_BARE = re.compile(r"()(\d+)([A-Z]?)$")  # groups as _ROOM's: prefix, digits, letter


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """The components of a standard address, each in canonical form or None.

    Canonical forms: divisions and road as written in full (``鲤城区``,
    ``开元街道``, ``中山南路``); ``number`` ``123号``, ``123-1号``,
    ``附123号``; ``building`` ``3幢`` or ``A幢`` (号楼, 栋 and 座 are all 幢);
    ``unit`` ``2单元``; ``floor`` ``3层`` (``-1层`` underground); ``room``
    ``302室`` (leading zeros dropped). ``unparsed`` keeps the leftover text.

    Examples
    --------
    >>> address = parse_address("鲤城区开元街道中山南路123号三号楼二单元0302")
    >>> address.district, address.street, address.road, address.number
    ('鲤城区', '开元街道', '中山南路', '123号')
    >>> address.building, address.unit, address.floor, address.room
    ('3幢', '2单元', '3层', '302室')
    >>> address.normalised
    '鲤城区开元街道中山南路123号3幢2单元3层302室'
    """

    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    community: str | None = None
    road: str | None = None
    number: str | None = None
    building: str | None = None
    unit: str | None = None
    floor: str | None = None
    room: str | None = None
    unparsed: tuple[str, ...] = ()

    @property
    def normalised(self) -> str:
        """The canonical string: the components in order, without ``unparsed`` text."""
        return "".join(self.components().values())

    def components(self) -> dict[str, str]:
        """Return ``{name: value}`` of the components present, in standard-address order."""
        return {name: value for name in COMPONENTS if (value := getattr(self, name)) is not None}

    @property
    def number_parts(self) -> tuple[bool, int, str, int] | None:
        """``(attached, main, letter, sub)`` of ``number`` (附12A-3号 is ``(True, 12, 'A', 3)``)."""
        if self.number is None:
            return None
        match = _NUMBER.fullmatch(self.number)
        if match is None:  # pragma: no cover - numbers are built by the parser
            return None
        attached, main, letter, sub = match.groups()
        return attached is not None, int(main), letter or "", int(sub or 0)


def parse_address(text: str, *, context: AdminContext | None = None) -> ParsedAddress:
    """Split an address into standard-address components.

    Parameters
    ----------
    text : str
        An address as typed: full-width digits, Chinese numerals, spaces and
        punctuation are fine; the province, city and district may be missing.
    context : AdminContext, optional
        Known divisions and roads. With it the parser reads short names
        (``鲤城`` for ``鲤城区``, when only one known unit has that short
        name), fills the levels above a known division, and prefers known
        road names.

    Returns
    -------
    ParsedAddress

    Examples
    --------
    >>> parse_address("福建省泉州市鲤城区中山南路123-1号A座1502室").components()
    ... # doctest: +NORMALIZE_WHITESPACE
    {'province': '福建省', 'city': '泉州市', 'district': '鲤城区', 'road': '中山南路',
     'number': '123-1号', 'building': 'A幢', 'floor': '15层', 'room': '1502室'}

    A context fills in the levels above a street it knows, and reads short names:

    >>> from gis.address import AdminContext
    >>> context = AdminContext.from_divisions(
    ...     [{"code": "350502", "name": "鲤城区"},
    ...      {"code": "350502001", "name": "开元街道", "parent_code": "350502"}],
    ...     province="福建省", city="泉州市")
    >>> parse_address("开元街道中山南路123号", context=context).normalised
    '福建省泉州市鲤城区开元街道中山南路123号'
    >>> parse_address("泉州鲤城中山南路123号", context=context).district
    '鲤城区'
    """
    context = context or _EMPTY_CONTEXT
    text = clean_text(text)
    values: dict[str, str] = {}
    unparsed: list[str] = []
    pos, known = _parse_divisions(text, context, values)
    _fill_from_context(known, values)
    rest = text[pos:]
    pos = _parse_road(rest, context, values, unparsed)
    _parse_numbered(rest[pos:], values, unparsed)
    return ParsedAddress(**values, unparsed=tuple(unparsed))


# ----------------------------------------------------------------- divisions


def _parse_divisions(
    text: str, context: AdminContext, values: dict[str, str]
) -> tuple[int, dict[AdminLevel, list[AdminUnit]]]:
    """Read division names from the start of ``text``; return the end and the units recognised."""
    pos = 0
    known: dict[AdminLevel, list[AdminUnit]] = {}
    for level in ADMIN_LEVELS:
        hit = _division_at(level, text, pos, context, values)
        if hit is not None:
            name, pos, units = hit
            values[level] = name
            if units:
                known[level] = units
    return pos, known


def _division_at(
    level: AdminLevel, text: str, pos: int, context: AdminContext, values: dict[str, str]
) -> tuple[str, int, list[AdminUnit]] | None:
    """Return ``(full name, end, known units)`` of a ``level`` division at ``pos``, or None."""
    hit = context.prefix(level, text, pos, short=False)
    if hit is not None:
        return hit[1][0].name, pos + len(hit[0]), _consistent(hit[1], values)
    if level == "province":
        return _province_at(text, pos)
    hit = context.prefix(level, text, pos, short=True)
    if hit is not None:
        units = _consistent(hit[1], values)
        end = pos + len(hit[0])
        # A short name is a guess: take it only when one known unit fits, the
        # text goes on with a new component (not 开元路, not 金山大厦), and no
        # known road starts here (开元寺前路 stays a road if the index knows it).
        if (
            len(units) == 1
            and not text.startswith((*_CONTINUES_NAME, *_LEVEL_STARTS), end)
            and context.road_at(text, pos) is None
            and _place_follows(text, end, context)
        ):
            return units[0].name, end, units
    return _suffix_rule_at(level, text, pos, context)


def _province_at(text: str, pos: int) -> tuple[str, int, list[AdminUnit]] | None:
    for full in PROVINCES:
        if text.startswith(full, pos):
            return full, pos + len(full), []
    for full, short in PROVINCES.items():
        end = pos + len(short)
        if text.startswith(short, pos) and not text.startswith(
            (*_CONTINUES_NAME, *_LEVEL_STARTS), end
        ):
            return full, end, []
    return None


def _suffix_rule_at(
    level: AdminLevel, text: str, pos: int, context: AdminContext
) -> tuple[str, int, list[AdminUnit]] | None:
    """Read a name ending in the level's suffix, guarded against names of other things."""
    rule = _SUFFIX_RULES.get(level)
    match = rule.match(text, pos) if rule else None
    if match is None:
        return None
    name, suffix = match.groups()
    full, end = name + _COMMUNITY_SUFFIXES.get(suffix, suffix), match.end()
    if text.startswith(_CONTINUES_NAME, end) or context.road_at(text, pos) is not None:
        return None  # 新市路, 镇海路: the suffix is inside a road name
    if level == "district" and full.endswith(_NOT_DISTRICTS):
        return None
    # "X市" alone is too often an estate or shop (国际城市花园); take it only
    # when a district, street or road follows.
    if suffix == "市" and not _place_follows(text, end, context):
        return None
    return full, end, []


def _place_follows(text: str, pos: int, context: AdminContext) -> bool:
    """Tell whether a division, a road or a number starts at ``pos``."""
    if _NUMBERED_START.match(text, pos) or context.road_at(text, pos) is not None:
        return True
    for level in ("city", "district", "street", "community"):
        if _SUFFIX_RULES[level].match(text, pos) or any(
            context.prefix(level, text, pos, short=short) for short in (False, True)
        ):
            return True
    numbered = _NUMBERED_START.search(text, pos)
    head = text[pos : numbered.start() if numbered else len(text)]
    return any(suffix in head[1:] for suffix in ROAD_SUFFIXES)


def _consistent(units: list[AdminUnit], values: dict[str, str]) -> list[AdminUnit]:
    """Return the units whose known ancestors agree with the divisions already read."""
    return [
        unit
        for unit in units
        if all(values.get(level, name) == name for level, name in unit.lineage().items())
    ]


def _fill_from_context(known: dict[AdminLevel, list[AdminUnit]], values: dict[str, str]) -> None:
    """Fill missing levels above the lowest known division, where its candidates agree."""
    for level in reversed(ADMIN_LEVELS):
        units = known.get(level)
        if not units:
            continue
        lineages = [unit.lineage() for unit in units]
        for above in ADMIN_LEVELS[: ADMIN_LEVELS.index(level)]:
            names = {lineage.get(above) for lineage in lineages}
            name = names.pop()
            if above not in values and not names and name is not None:
                values[above] = name
        return


# ---------------------------------------------------------------------- road


def _parse_road(
    rest: str, context: AdminContext, values: dict[str, str], unparsed: list[str]
) -> int:
    """Find the road before the numbered part of ``rest``; return where that part starts."""
    numbered = _NUMBERED_START.search(rest)
    head_end = numbered.start() if numbered else len(rest)
    head = rest[:head_end]
    span = context.find_road(head) if context.roads else None
    if span is None:
        # The last suffix, so 百里山路 is one road, not 百里 + 山路.
        ends = [
            i + len(s) for i in range(1, len(head)) for s in ROAD_SUFFIXES if head.startswith(s, i)
        ]
        span = (0, max(ends)) if ends else None
    if span is None:
        _keep(unparsed, head)
        return head_end
    start, end = span
    road = head[start:end]
    _keep(unparsed, head[:start])
    _keep(unparsed, head[end:])
    if end == head_end and (lane := _LANE.match(rest, end)):
        # 愚园路1088弄 is one 街路巷: the 弄 (lane) has its own door numbers.
        road += lane.group()
        head_end = lane.end()
    values["road"] = road
    return head_end


# ------------------------------------------------------------------ numbered


def _parse_numbered(text: str, values: dict[str, str], unparsed: list[str]) -> None:
    """Read number, building, unit, floor and room, in any order; keep the rest."""
    pos = 0
    skipped = ""
    room_digits = ""
    while pos < len(text):
        hit = _component_at(text, pos, values)
        if hit is None:
            skipped += text[pos]
            pos += 1
            continue
        _keep(unparsed, skipped)
        skipped = ""
        pos, found, digits = hit
        values.update(found)
        room_digits = digits or room_digits
    _keep(unparsed, skipped)
    # The floor is read from the room number as written: 0302 and 302 are on 3层.
    if "room" in values and "floor" not in values and 3 <= len(room_digits) <= 4:
        floor = int(room_digits[:-2])
        if floor > 0:
            values["floor"] = f"{floor}层"


# A reader turns a match into components, and the room's digits as written.
_Reader = Callable[["re.Match[str]"], tuple[dict[str, str], str]]


def _read_triple(match: re.Match[str]) -> tuple[dict[str, str], str]:
    building, unit, digits, letter = match.groups()
    found = {"building": f"{_strip_zeros(building)}幢", "unit": f"{int(unit)}单元"}
    return found | {"room": f"{int(digits)}{letter}室"}, digits


def _read_number(match: re.Match[str]) -> tuple[dict[str, str], str]:
    attached, main, letter, sub = match.groups()
    number = f"{'附' if attached else ''}{int(main)}{letter or ''}"
    return {"number": f"{number}-{int(sub)}号" if sub else f"{number}号"}, ""


def _read_building(match: re.Match[str]) -> tuple[dict[str, str], str]:
    return {"building": f"{_strip_zeros(match.group(1) or match.group(2))}幢"}, ""


def _read_unit(match: re.Match[str]) -> tuple[dict[str, str], str]:
    return {"unit": f"{_strip_zeros(match.group(1))}单元"}, ""


def _read_floor(match: re.Match[str]) -> tuple[dict[str, str], str]:
    underground, level = match.groups()
    return {"floor": f"{'-' if underground else ''}{int(level)}层"}, ""


def _read_room(match: re.Match[str]) -> tuple[dict[str, str], str]:
    prefix, digits, letter = match.groups()
    return {"room": f"{prefix}{int(digits)}{letter}室"}, digits


# (components it sets, pattern, reader), tried in this order at each position.
_RULES: Final[tuple[tuple[tuple[str, ...], re.Pattern[str], _Reader], ...]] = (
    (("building", "unit", "room"), _TRIPLE, _read_triple),
    (("number",), _NUMBER, _read_number),
    (("building",), _BUILDING, _read_building),
    (("unit",), _UNIT, _read_unit),
    (("floor",), _FLOOR, _read_floor),
    (("room",), _ROOM, _read_room),
)
_BELOW_NUMBER = ("building", "unit", "floor", "room")


def _component_at(
    text: str, pos: int, values: dict[str, str]
) -> tuple[int, dict[str, str], str] | None:
    """Return ``(end, components, room digits)`` of a component at ``pos``, or None."""
    for sets, pattern, read in _RULES:
        if any(name in values for name in sets):
            continue
        match = pattern.match(text, pos)
        if match is not None:
            return match.end(), *read(match)
    match = _BARE.match(text, pos)
    if match is None:
        return None
    # A bare trailing number: the door number right after a road
    # (中山南路88), else the room (3幢2单元0302).
    if "number" not in values and not any(name in values for name in _BELOW_NUMBER):
        return match.end(), {"number": f"{int(match.group(2))}{match.group(3)}号"}, ""
    if "room" not in values:
        return match.end(), *_read_room(match)
    return None


def _strip_zeros(identifier: str) -> str:
    """Drop leading zeros of each digit run (03 -> 3, A01 -> A1), keeping a lone 0."""
    return re.sub(r"\d+", lambda m: str(int(m.group())), identifier)


def _keep(unparsed: list[str], text: str) -> None:
    if text:
        unparsed.append(text)
