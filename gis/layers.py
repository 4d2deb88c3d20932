"""Layer and level definitions: which levels a layer has and how its codes look.

A *layer* is one hierarchy over the ground (综治 governance grids, 警务 police
beats, 城管 urban-management grids, or one a user defines). Its *levels* are
ordered from the top down; every unit of a level below the top has a parent in
the level above.

Examples
--------
>>> GOVERNANCE.parent_level("grid").name
'community'
>>> [level.name for level in POLICE.levels]
['station', 'beat']
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BUILTIN_LAYERS",
    "GOVERNANCE",
    "POLICE",
    "TOWNSHIP",
    "URBAN",
    "LayerSpec",
    "LevelSpec",
    "level_spec_for",
]


@dataclass(frozen=True)
class LevelSpec:
    """One level of a layer.

    Attributes
    ----------
    name : str
        Machine name (``grid``).
    title : str
        Label shown to people (``网格``).
    code_lengths : tuple of int, optional
        Allowed code lengths; ``None`` accepts any length.
    """

    name: str
    title: str = ""
    code_lengths: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LayerSpec:
    """A layer: ordered levels plus its code rule.

    Attributes
    ----------
    name, title : str
        Machine name and label.
    levels : tuple of LevelSpec
        From the top level down.
    digits_only : bool
        Codes must be decimal digits (the Chinese administrative scheme).
    child_code_extends_parent : bool
        A child's code must start with its parent's code and be longer.
    """

    name: str
    title: str = ""
    levels: tuple[LevelSpec, ...] = field(default_factory=tuple)
    digits_only: bool = False
    child_code_extends_parent: bool = True

    def level(self, name: str) -> LevelSpec:
        """Return the level called ``name`` (KeyError if the layer has none)."""
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(name)

    def rank(self, name: str) -> int:
        """Return the 0-based depth of a level (0 = top)."""
        return [level.name for level in self.levels].index(name)

    def parent_level(self, name: str) -> LevelSpec | None:
        """Return the level above ``name``, or ``None`` for the top level."""
        rank = self.rank(name)
        return self.levels[rank - 1] if rank > 0 else None

    def child_level(self, name: str) -> LevelSpec | None:
        """Return the level below ``name``, or ``None`` for the lowest level."""
        rank = self.rank(name)
        return self.levels[rank + 1] if rank + 1 < len(self.levels) else None


GOVERNANCE = LayerSpec(
    name="governance",
    title="综治网格 governance grids",
    levels=(
        LevelSpec("county", "区县 county/district", (6,)),
        LevelSpec("street", "街道/乡镇 street/town", (9,)),
        LevelSpec("community", "社区/村 community/village", (12,)),
        # 15 digits (DB11/T 2157-2023); 14 is the legacy CJ/T 213-2005 form.
        LevelSpec("grid", "网格 grid", (15, 14)),
        LevelSpec("micro_grid", "微网格 micro-grid", None),
    ),
    digits_only=True,
)
POLICE = LayerSpec(
    name="police",
    title="警务网格 police beats",
    levels=(LevelSpec("station", "派出所 police station"), LevelSpec("beat", "警务责任区 beat")),
)
TOWNSHIP = LayerSpec(
    name="township",
    title="乡镇工作片 township work areas",
    levels=(
        LevelSpec("street", "街道/乡镇 street/town", (9,)),
        # Groups of whole communities/villages of one street or town, led by a
        # 片长 cadre: the third layer of "same grid" (三员协同).
        LevelSpec("work_area", "工作片 work area", None),
    ),
    digits_only=True,
)
URBAN = LayerSpec(
    name="urban",
    title="城管单元网格 urban-management grids",
    levels=(
        LevelSpec("county", "区县 county/district", (6,)),
        LevelSpec("street", "街道 street", (9,)),
        LevelSpec("community", "社区 community", (12,)),
        LevelSpec("unit_grid", "万米单元网格 unit grid", (14, 15, 16)),
    ),
    digits_only=True,
)
BUILTIN_LAYERS: dict[str, LayerSpec] = {
    spec.name: spec for spec in (GOVERNANCE, POLICE, TOWNSHIP, URBAN)
}


def level_spec_for(level: str | None) -> tuple[LayerSpec | None, LevelSpec | None]:
    """Find a built-in layer and level by level name alone (for ``tongge check``).

    Returns ``(None, None)`` when no built-in layer has the level.
    """
    if level is None:
        return None, None
    for spec in BUILTIN_LAYERS.values():
        for candidate in spec.levels:
            if candidate.name == level:
                return spec, candidate
    return None, None
