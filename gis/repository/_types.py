"""Plain data returned by the repository."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class LevelSummary:
    """A level with the number of units valid now."""

    name: str
    title: str
    rank: int
    code_lengths: tuple[int, ...] | None
    unit_count: int = 0


@dataclass(frozen=True)
class LayerSummary:
    """A layer with its levels.

    ``synthetic`` is true when some of the layer's units valid at the time
    asked came from an import marked synthetic (the bundled sample city);
    ``source`` is that import's note on where the data come from.
    """

    name: str
    title: str
    levels: tuple[LevelSummary, ...]
    synthetic: bool = False
    source: str | None = None


@dataclass
class ImportSummary:
    """What an import changed."""

    layer: str
    level: str
    valid_from: datetime
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    import_id: int | None = None

    def counts(self) -> dict[str, int]:
        """Return the number of units per outcome."""
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "retired": len(self.retired),
            "unchanged": len(self.unchanged),
        }
