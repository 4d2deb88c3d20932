"""The incident taxonomy: two levels (class 大类, subclass 小类), each with a deadline.

Modelled on the categories common to 12345 hotlines and urban-management
(数字城管) systems: a two-digit class code (``"01"`` 市容环境) and a four-digit
subclass code that starts with it (``"0101"`` 占道经营). Every subclass has a
deadline in hours (限期处理) counted from receipt. Incidents are filed under a
subclass; a class code alone is not a category.

A deployment sets its own taxonomy in a JSON or YAML file named by
``TONGGE_INCIDENT_TAXONOMY``::

    {"classes": [{"code": "01", "name_zh": "市容环境", "name_en": "City appearance"}],
     "categories": [{"code": "0101", "name_zh": "占道经营", "name_en": "Street vending",
                     "deadline_hours": 48, "description": "..."}]}

Examples
--------
>>> taxonomy = default_taxonomy()
>>> taxonomy.get("0202").name_zh, taxonomy.get("0202").deadline_hours
('井盖缺失', 4)
>>> taxonomy.get("0202").class_code
'02'
>>> taxonomy.get("9999")
Traceback (most recent call last):
...
gis.errors.InputError: unknown category '9999': use a subclass code such as 0101
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from gis.errors import InputError

__all__ = ["Category", "IncidentClass", "Taxonomy", "default_taxonomy", "load_taxonomy"]

_CLASS_CODE = re.compile(r"^[0-9A-Za-z]{2}$")
_CATEGORY_CODE = re.compile(r"^[0-9A-Za-z]{4,8}$")
MAX_DEADLINE_HOURS = 24 * 365


@dataclass(frozen=True)
class IncidentClass:
    """A top-level class of incidents (大类)."""

    code: str
    name_zh: str
    name_en: str

    def to_dict(self) -> dict[str, str]:
        """Return the JSON form."""
        return {"code": self.code, "name_zh": self.name_zh, "name_en": self.name_en}


@dataclass(frozen=True)
class Category:
    """A category incidents are filed under (小类), with its deadline (限期)."""

    code: str
    class_code: str
    name_zh: str
    name_en: str
    deadline_hours: int
    description: str = ""

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form."""
        return {
            "code": self.code,
            "class_code": self.class_code,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "deadline_hours": self.deadline_hours,
            "description": self.description,
        }


@dataclass(frozen=True)
class Taxonomy:
    """Classes and their categories; ``get`` finds a category by code."""

    classes: tuple[IncidentClass, ...]
    categories: tuple[Category, ...]
    _by_code: dict[str, Category] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        class_codes = [c.code for c in self.classes]
        if len(set(class_codes)) != len(class_codes):
            raise InputError("taxonomy: class codes must be unique", field="taxonomy")
        codes = [c.code for c in self.categories]
        if len(set(codes)) != len(codes):
            raise InputError("taxonomy: category codes must be unique", field="taxonomy")
        for category in self.categories:
            if category.class_code not in class_codes:
                raise InputError(
                    f"taxonomy: category {category.code!r} names unknown class "
                    f"{category.class_code!r}",
                    field="taxonomy",
                )
            if not category.code.startswith(category.class_code):
                raise InputError(
                    f"taxonomy: category {category.code!r} must start with its class code "
                    f"{category.class_code!r}",
                    field="taxonomy",
                )
            if not 1 <= category.deadline_hours <= MAX_DEADLINE_HOURS:
                raise InputError(
                    f"taxonomy: category {category.code!r}: deadline_hours must be 1 to "
                    f"{MAX_DEADLINE_HOURS}",
                    field="taxonomy",
                )
        object.__setattr__(self, "_by_code", {c.code: c for c in self.categories})

    def get(self, code: str) -> Category:
        """Return the category ``code`` (InputError naming ``category`` when unknown)."""
        found = self._by_code.get(code) if isinstance(code, str) else None
        if found is None:
            shown = code if isinstance(code, str) and len(code) <= 40 else "…"
            raise InputError(
                f"unknown category {shown!r}: use a subclass code such as "
                f"{self.categories[0].code}",
                field="category",
            )
        return found

    def get_class(self, code: str) -> IncidentClass:
        """Return the class ``code`` (InputError when unknown)."""
        for item in self.classes:
            if item.code == code:
                return item
        raise InputError(f"unknown category class {code!r}", field="class")

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form (the file format :func:`load_taxonomy` reads)."""
        return {
            "classes": [c.to_dict() for c in self.classes],
            "categories": [c.to_dict() for c in self.categories],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Taxonomy:
        """Build from the JSON form (InputError naming what is wrong)."""
        if not isinstance(data, dict):
            raise InputError("taxonomy: expected an object with classes and categories")
        try:
            classes = tuple(
                IncidentClass(
                    code=_code(item["code"], _CLASS_CODE, "class"),
                    name_zh=str(item["name_zh"]),
                    name_en=str(item.get("name_en", "")),
                )
                for item in data["classes"]
            )
            categories = tuple(
                Category(
                    code=_code(item["code"], _CATEGORY_CODE, "category"),
                    class_code=str(item.get("class_code") or str(item["code"])[:2]),
                    name_zh=str(item["name_zh"]),
                    name_en=str(item.get("name_en", "")),
                    deadline_hours=int(item["deadline_hours"]),
                    description=str(item.get("description", "")),
                )
                for item in data["categories"]
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(
                f"taxonomy: missing or malformed entry ({error})", field="taxonomy"
            ) from None
        if not categories:
            raise InputError("taxonomy: no categories", field="taxonomy")
        return cls(classes=classes, categories=categories)


def _code(value: object, pattern: re.Pattern[str], what: str) -> str:
    text = str(value)
    if not pattern.match(text):
        raise InputError(f"taxonomy: {what} code {text!r} is malformed", field="taxonomy")
    return text


_CLASSES = (
    ("01", "市容环境", "City appearance"),
    ("02", "公共设施", "Public facilities"),
    ("03", "社会治安", "Public order"),
    ("04", "安全隐患", "Safety hazards"),
    ("05", "民生服务", "Livelihood services"),
    ("06", "生态环境", "Environment"),
)
_CATEGORIES = (
    ("0101", "占道经营", "Street vending on the road", 48),
    ("0102", "乱堆乱放", "Clutter in public space", 48),
    ("0103", "垃圾清运", "Uncollected rubbish", 24),
    ("0104", "违规广告", "Illegal advertising", 72),
    ("0201", "道路破损", "Damaged road or pavement", 72),
    ("0202", "井盖缺失", "Missing or broken manhole cover", 4),
    ("0203", "路灯故障", "Street light out", 72),
    ("0204", "供水排水", "Water supply or drainage fault", 24),
    ("0301", "矛盾纠纷", "Neighbourhood dispute", 72),
    ("0302", "治安隐患", "Public-order hazard", 24),
    ("0303", "噪音扰民", "Noise nuisance", 24),
    ("0401", "消防隐患", "Fire hazard", 24),
    ("0402", "危房险情", "Dangerous building", 24),
    ("0403", "燃气隐患", "Gas hazard", 4),
    ("0501", "困难帮扶", "Hardship assistance", 120),
    ("0502", "物业纠纷", "Property-management dispute", 120),
    ("0601", "环境污染", "Pollution", 48),
    ("0602", "违章建筑", "Unauthorised construction", 120),
)


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    """Return the default taxonomy (common 12345 hotline categories)."""
    return Taxonomy(
        classes=tuple(IncidentClass(code, zh, en) for code, zh, en in _CLASSES),
        categories=tuple(
            Category(code=code, class_code=code[:2], name_zh=zh, name_en=en, deadline_hours=hours)
            for code, zh, en, hours in _CATEGORIES
        ),
    )


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Return the taxonomy of a JSON or YAML file (the default when ``path`` is None).

    Raises
    ------
    InputError
        The file cannot be read or is not a valid taxonomy.
    """
    if path is None or str(path) == "":
        return default_taxonomy()
    return _load_file(str(Path(path).expanduser().absolute()))


@lru_cache(maxsize=8)
def _load_file(path: str) -> Taxonomy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"taxonomy file {path!r} cannot be read: {error.__class__.__name__}",
            field="incident_taxonomy",
        ) from None
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML is a dependency
            raise InputError("YAML taxonomies need PyYAML", field="incident_taxonomy") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise InputError(
                f"taxonomy file {path!r} is not YAML: {error}", field="incident_taxonomy"
            ) from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(
                f"taxonomy file {path!r} is not JSON: {error}", field="incident_taxonomy"
            ) from None
    return Taxonomy.from_dict(data)
