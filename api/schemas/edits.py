"""Request and response schemas of the edit operations and change sets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ChangeSetDetail", "ChangeSetEntry", "ChangeSetPage", "EditAnswer", "EditRequest"]


class EditRequest(BaseModel):
    """A planner's edit: the operation, the units, the drawing (GeoJSON, CGCS2000)."""

    model_config = ConfigDict(extra="forbid")

    op: Literal["transfer", "reshape", "split", "merge", "carve", "retire", "auto_split"] = Field(
        description="transfer 划转, reshape 改界, split 拆分, merge 合并, carve 专属网格, "
        "retire 撤销, auto_split 自动均衡拆分"
    )
    level: str = Field(min_length=1, max_length=64, examples=["grid"])
    units: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Unit codes: split/retire one, reshape two, merge two or more.",
    )
    geometry: dict[str, Any] | None = Field(
        default=None,
        description="GeoJSON geometry in CGCS2000 lon/lat: a Polygon (transfer, carve) or a "
        "LineString (reshape, split).",
    )
    to: str | list[str] | None = Field(
        default=None, description="Receiving unit (transfer) or neighbours (retire)."
    )
    parts: int | None = Field(default=None, ge=2, le=100, description="auto_split: how many.")
    cascade: Literal["new", "merge"] | None = Field(
        default="new", description="How children cut by a new edge follow (null: refuse)."
    )
    valid_from: str | None = Field(
        default=None, max_length=40, description="Effective date/time (default now)."
    )
    reason: str | None = Field(default=None, max_length=2000)
    dry_run: bool = Field(default=False, description="Preview only: nothing is written.")
    draft: bool = Field(
        default=False,
        description="Store as a draft change set: nothing is applied; "
        "`POST …/changesets/{id}/apply` applies it later if nothing under it changed.",
    )
    force: bool = Field(default=False, description="Accept an edge that cuts a building.")
    name: str | None = Field(
        default=None, max_length=200, description="carve: the new unit's name."
    )
    poi: str | None = Field(
        default=None, max_length=200, description="carve: the POI (key or name)."
    )
    snap_m: float = Field(default=2.0, ge=0, le=50, description="Snapping tolerance in metres.")


class EditAnswer(BaseModel):
    """What an edit did (or would do): codes, impact, geometry before/after."""

    model_config = ConfigDict(extra="allow")

    changeset: int | None = Field(description="The stored change set, null for a preview.")
    applied: bool
    created: list[str]
    changed: list[str]
    retired: list[str]
    impact: dict[str, Any] = Field(
        description="buildings, households, persons, pois, moves, workload, alignment."
    )
    geometry: dict[str, Any] = Field(description="FeatureCollection of units before/after.")
    problems: list[dict[str, Any]] = Field(default_factory=list)


class ChangeSetEntry(BaseModel):
    """One stored change set."""

    model_config = ConfigDict(extra="allow")

    id: int
    layer: str
    level: str
    op: str
    author: str
    reason: str | None = None
    created_at: str
    valid_from: str
    import_id: int | None = None
    reverts: int | None = None
    status: Literal["applied", "draft", "reverted", "discarded"] = Field(
        default="applied", description="applied, draft (not applied yet), reverted, discarded."
    )
    summary: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)


class ChangeSetPage(BaseModel):
    """A page of change sets, newest first."""

    total: int
    changesets: list[ChangeSetEntry]


class ChangeSetDetail(ChangeSetEntry):
    """One change set with every unit before and after."""

    reverted_by: int | None = None
    geometry: dict[str, Any] = Field(description="FeatureCollection of units before/after.")
