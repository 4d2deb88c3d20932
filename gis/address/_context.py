"""What the parser knows about a place: division names, their tree, and road names.

The suffix rules in :mod:`gis.address._parse` find ``鲤城区`` and
``开元街道`` anywhere in China, but cannot tell that ``鲤城`` means
``鲤城区``, nor fill in ``泉州市`` above ``开元街道``. An
:class:`AdminContext` holds the divisions a deployment serves (one district
is a few hundred names) so the parser can, and the road names of its
standard addresses so it can split ``鲤城中山南路`` as district + road.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ADMIN_LEVELS",
    "PROVINCES",
    "AdminContext",
    "AdminLevel",
    "AdminUnit",
]

AdminLevel = Literal["province", "city", "district", "street", "community"]

#: Division levels of a standard address, top down (行政区划 + 街道 + 社区).
ADMIN_LEVELS: tuple[AdminLevel, ...] = ("province", "city", "district", "street", "community")

#: Suffixes that make a name a division of a level, longest first; stripping
#: one gives the short name people write (鲤城区 -> 鲤城).
LEVEL_SUFFIXES: dict[AdminLevel, tuple[str, ...]] = {
    "province": ("特别行政区", "自治区", "省", "市"),
    "city": ("自治州", "地区", "市", "盟"),
    "district": ("自治县", "新区", "区", "县", "市", "旗"),
    "street": ("街道办事处", "街道", "镇", "乡"),
    "community": ("社区居民委员会", "社区居委会", "村民委员会", "居委会", "村委会", "社区", "村"),
}

#: The 34 provincial-level divisions and their short names. Small and fixed,
#: so they are always known: 福建泉州... parses without any context.
PROVINCES: dict[str, str] = {
    "北京市": "北京", "天津市": "天津", "上海市": "上海", "重庆市": "重庆",
    "河北省": "河北", "山西省": "山西", "辽宁省": "辽宁", "吉林省": "吉林",
    "黑龙江省": "黑龙江", "江苏省": "江苏", "浙江省": "浙江", "安徽省": "安徽",
    "福建省": "福建", "江西省": "江西", "山东省": "山东", "河南省": "河南",
    "湖北省": "湖北", "湖南省": "湖南", "广东省": "广东", "海南省": "海南",
    "四川省": "四川", "贵州省": "贵州", "云南省": "云南", "陕西省": "陕西",
    "甘肃省": "甘肃", "青海省": "青海", "台湾省": "台湾",
    "内蒙古自治区": "内蒙古", "广西壮族自治区": "广西", "西藏自治区": "西藏",
    "宁夏回族自治区": "宁夏", "新疆维吾尔自治区": "新疆",
    "香港特别行政区": "香港", "澳门特别行政区": "澳门",
}  # fmt: skip

# Registry codes have one length per level (GB/T 2260 + 3 + 3 digits).
_LEVEL_BY_CODE_LENGTH: dict[int, AdminLevel] = {
    2: "province", 4: "city", 6: "district", 9: "street", 12: "community"
}  # fmt: skip
_LEVEL_ALIASES: dict[str, AdminLevel] = {"county": "district", "town": "street"}


@dataclass(frozen=True, slots=True)
class AdminUnit:
    """A named division and the unit it lies in.

    Parameters
    ----------
    level : {"province", "city", "district", "street", "community"}
        Its level.
    name : str
        Full name, as in a standard address (``开元街道``, not ``开元``).
    parent : AdminUnit, optional
        The division it lies in, when known.

    Examples
    --------
    >>> city = AdminUnit("city", "泉州市", AdminUnit("province", "福建省"))
    >>> street = AdminUnit("street", "开元街道", AdminUnit("district", "鲤城区", city))
    >>> street.short, street.lineage()
    ('开元', {'street': '开元街道', 'district': '鲤城区', 'city': '泉州市', 'province': '福建省'})
    """

    level: AdminLevel
    name: str
    parent: AdminUnit | None = None

    @property
    def short(self) -> str | None:
        """The name without its level suffix, or None if that leaves under two characters."""
        if self.level == "province" and self.name in PROVINCES:
            return PROVINCES[self.name]
        for suffix in LEVEL_SUFFIXES[self.level]:
            if self.name.endswith(suffix) and len(self.name) - len(suffix) >= 2:
                return self.name[: -len(suffix)]
        return None

    def lineage(self) -> dict[AdminLevel, str]:
        """Return ``{level: name}`` for this unit and every unit above it."""
        names: dict[AdminLevel, str] = {}
        unit: AdminUnit | None = self
        while unit is not None:
            names[unit.level] = unit.name
            unit = unit.parent
        return names


class AdminContext:
    """Known divisions (with their tree) and road names, for :func:`parse_address`.

    Parameters
    ----------
    units : iterable of AdminUnit
        Known divisions; their ancestors are known too.
    roads : iterable of str, optional
        Known road names (街路巷), e.g. every road of the standard addresses.

    Examples
    --------
    >>> context = AdminContext.from_names(
    ...     province="福建省", city="泉州市", district="鲤城区", streets=["开元街道"]
    ... )
    >>> [unit.name for unit in context.units]
    ['福建省', '泉州市', '鲤城区', '开元街道']
    >>> context.with_roads(["中山南路"]).roads
    frozenset({'中山南路'})
    """

    def __init__(self, units: Iterable[AdminUnit] = (), *, roads: Iterable[str] = ()) -> None:
        seen: dict[AdminUnit, None] = {}  # ordered set: ancestors first
        for unit in units:
            chain: list[AdminUnit] = []
            node: AdminUnit | None = unit
            while node is not None and node not in seen:
                chain.append(node)
                node = node.parent
            seen.update(dict.fromkeys(reversed(chain)))
        self.units: tuple[AdminUnit, ...] = tuple(seen)
        self.roads: frozenset[str] = frozenset(road for road in roads if road)
        self._full: dict[AdminLevel, dict[str, list[AdminUnit]]] = {lv: {} for lv in ADMIN_LEVELS}
        self._short: dict[AdminLevel, dict[str, list[AdminUnit]]] = {lv: {} for lv in ADMIN_LEVELS}
        for unit in self.units:
            self._full[unit.level].setdefault(unit.name, []).append(unit)
            if unit.short is not None:
                self._short[unit.level].setdefault(unit.short, []).append(unit)
        # Longest names first at each position, so 鲤城区 wins over a shorter name.
        self._lengths = {
            level: sorted(
                {len(n) for n in self._full[level]} | {len(n) for n in self._short[level]}
            )[::-1]
            for level in ADMIN_LEVELS
        }
        self._road_lengths = sorted({len(r) for r in self.roads}, reverse=True)

    def __repr__(self) -> str:
        return f"AdminContext({len(self.units)} units, {len(self.roads)} roads)"

    @classmethod
    def from_names(
        cls,
        *,
        province: str | None = None,
        city: str | None = None,
        district: str | None = None,
        streets: Iterable[str] = (),
        communities: Mapping[str, Iterable[str]] | None = None,
        roads: Iterable[str] = (),
    ) -> AdminContext:
        """Build the context of one district: its chain upwards, streets and communities.

        Parameters
        ----------
        province, city, district : str, optional
            Full names of the chain above the streets.
        streets : iterable of str
            Street (街道/乡镇) names in the district.
        communities : mapping of str to iterable of str, optional
            Community (社区/村) names by the name of their street.
        roads : iterable of str
            Known road names.

        Returns
        -------
        AdminContext
        """
        chain = _chain(province=province, city=city, district=district)
        parent = chain[-1] if chain else None
        by_street = {name: AdminUnit("street", name, parent) for name in streets}
        units = chain + list(by_street.values())
        for street, names in (communities or {}).items():
            above = by_street.setdefault(street, AdminUnit("street", street, parent))
            units.extend(AdminUnit("community", name, above) for name in names)
        return cls(units, roads=roads)

    @classmethod
    def from_divisions(
        cls,
        rows: Iterable[Mapping[str, Any]],
        *,
        province: str | None = None,
        city: str | None = None,
        roads: Iterable[str] = (),
    ) -> AdminContext:
        """Build a context from registry-style rows ``{code, name, parent_code[, level]}``.

        Parameters
        ----------
        rows : iterable of mapping
            Divisions, e.g. the properties of the county, street and
            community layers. ``level`` (``county`` counts as ``district``)
            is taken from the code length (6, 9, 12 digits) when missing.
        province, city : str, optional
            Names above the top rows, which registries of one district lack.
        roads : iterable of str
            Known road names.

        Returns
        -------
        AdminContext

        Examples
        --------
        >>> rows = [
        ...     {"code": "350502", "name": "鲤城区", "parent_code": None},
        ...     {"code": "350502004", "name": "开元街道", "parent_code": "350502"},
        ... ]
        >>> context = AdminContext.from_divisions(rows, province="福建省", city="泉州市")
        >>> context.units[-1].lineage()["city"]
        '泉州市'
        """
        chain = _chain(province=province, city=city, district=None)
        top = chain[-1] if chain else None
        pending = list(rows)
        # Parents before children: codes of higher levels are shorter.
        pending.sort(key=lambda row: len(str(row["code"])))
        by_code: dict[str, AdminUnit] = {}
        for row in pending:
            code = str(row["code"])
            raw = row.get("level")
            alias = _LEVEL_ALIASES.get(raw, raw) if raw else _LEVEL_BY_CODE_LENGTH.get(len(code))
            level = next((lv for lv in ADMIN_LEVELS if lv == alias), None)
            if level is None:
                raise ValueError(f"unknown level {raw!r} for division {code}")
            parent_code = row.get("parent_code")
            parent = by_code.get(str(parent_code)) if parent_code else None
            by_code[code] = AdminUnit(level, str(row["name"]), parent or top)
        return cls(list(by_code.values()) or ([top] if top else []), roads=roads)

    def with_roads(self, roads: Iterable[str]) -> AdminContext:
        """Return a copy that also knows ``roads``."""
        return AdminContext(self.units, roads=self.roads | set(roads))

    def units_named(self, level: AdminLevel, name: str) -> list[AdminUnit]:
        """Return the known units of ``level`` with full name ``name``."""
        return list(self._full[level].get(name, ()))

    def prefix(
        self, level: AdminLevel, text: str, pos: int, *, short: bool
    ) -> tuple[str, list[AdminUnit]] | None:
        """Return the longest known name (or short name) of ``level`` at ``text[pos:]``.

        Returns
        -------
        tuple of (str, list of AdminUnit) or None
            The text matched and every unit with that name.
        """
        table = self._short[level] if short else self._full[level]
        for length in self._lengths[level]:
            units = table.get(text[pos : pos + length])
            if units:
                return text[pos : pos + length], list(units)
        return None

    def road_at(self, text: str, pos: int) -> str | None:
        """Return the longest known road name starting at ``text[pos:]``, if any."""
        for length in self._road_lengths:
            if text[pos : pos + length] in self.roads:
                return text[pos : pos + length]
        return None

    def find_road(self, text: str) -> tuple[int, int] | None:
        """Return ``(start, end)`` of the longest known road inside ``text`` (rightmost on ties)."""
        best: tuple[int, int] | None = None
        for start in range(len(text)):
            road = self.road_at(text, start)
            if road and (best is None or len(road) >= best[1] - best[0]):
                best = (start, start + len(road))
        return best


def _chain(*, province: str | None, city: str | None, district: str | None) -> list[AdminUnit]:
    """Return the units of the given names, each the parent of the next."""
    chain: list[AdminUnit] = []
    levels: tuple[tuple[AdminLevel, str | None], ...] = (
        ("province", province), ("city", city), ("district", district)
    )  # fmt: skip
    for level, name in levels:
        if name:
            chain.append(AdminUnit(level, name, chain[-1] if chain else None))
    return chain
