"""Operations that keep a layer a valid nested coverage: noding and cascading to children.

Every boundary change goes through these (imports now, edits later): a
level is noded so that neighbours share bit-identical edges
(:func:`node_level`), and the level below follows the new edges or the
change is refused (:func:`cascade_children`).
"""

from gis.coverage._cascade import CascadeMode, CascadeResult, cascade_children, next_code
from gis.coverage._noding import NodingFix, node_level, unnoded_codes

__all__ = [
    "CascadeMode",
    "CascadeResult",
    "NodingFix",
    "cascade_children",
    "next_code",
    "node_level",
    "unnoded_codes",
]
