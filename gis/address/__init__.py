"""Parse and match Chinese standard addresses (一标三实 标准地址), without a database.

Every household and unit hangs on a standard address, the address on a
building, the building on a grid. Addresses reported by residents, hotline
operators and grid workers are written loosely; this package reads them
into components and finds the standard address they mean.

- :func:`parse_address` splits text into 行政区划 + 街路巷 + 门牌号 + 楼栋号 +
  单元号 + 楼层 + 户号 (:class:`ParsedAddress`), optionally with an
  :class:`AdminContext` of known divisions and roads;
- :class:`AddressIndex` ranks standard addresses for a query
  (:class:`Match`), and says when the best one is ``certain``.

Examples
--------
>>> licheng = AdminContext.from_divisions(
...     [{"code": "350502", "name": "鲤城区"},
...      {"code": "350502001", "name": "开元街道", "parent_code": "350502"}],
...     province="福建省", city="泉州市")
>>> index = AddressIndex.from_records(
...     [
...         {"key": "b1", "address": "福建省泉州市鲤城区开元街道中山南路88号3幢"},
...         {"key": "b2", "address": "福建省泉州市鲤城区开元街道中山南路90号1幢"},
...     ],
...     context=licheng,
... )
>>> best = index.match("鲤城中山南路88号三号楼2单元302室")[0]
>>> best.key, best.score, best.certain, best.below
('b1', 1.0, True, ('unit', 'floor', 'room'))
"""

from gis.address._context import (
    ADMIN_LEVELS,
    PROVINCES,
    AdminContext,
    AdminLevel,
    AdminUnit,
)
from gis.address._match import CERTAIN_MARGIN, CERTAIN_SCORE, AddressIndex, Match
from gis.address._parse import COMPONENTS, ParsedAddress, parse_address
from gis.address._text import clean_text

__all__ = [
    "ADMIN_LEVELS",
    "CERTAIN_MARGIN",
    "CERTAIN_SCORE",
    "COMPONENTS",
    "PROVINCES",
    "AddressIndex",
    "AdminContext",
    "AdminLevel",
    "AdminUnit",
    "Match",
    "ParsedAddress",
    "clean_text",
    "parse_address",
]
