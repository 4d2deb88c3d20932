"""Jurisdiction: which units a caller may see, and answers cut down to them.

A caller bound to ``governance:G`` sees G and every unit below it in the
governance layer, nothing else: not its siblings, not its parent, not other
layers. Anything outside answers exactly like something that does not
exist, so that existence does not leak. Jurisdictions are resolved on the
current boundaries; an older version of a unit is visible when its code is.

Examples
--------
Community ``C`` has grids ``A`` and ``B``; grid ``A`` has micro-grid ``A1``::

    C ── A ── A1
     └── B

>>> tree = {"governance": [("C", None), ("A", "C"), ("B", "C"), ("A1", "A")]}
>>> scope = Scope.resolve(units=("governance:A",), trees=tree)
>>> sorted(scope.codes("governance")), scope.sees("governance", "B")
(['A', 'A1'], False)
>>> Scope.resolve(units=("governance:C",), trees=tree).whole  # C is everything
frozenset({'governance'})
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gis.access.principal import Principal
from gis.errors import NotFoundError
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.times import parse_time

__all__ = ["Scope", "ScopeResolver", "redact_locate_answer"]

Tree = list[tuple[str, str | None]]


@dataclass(frozen=True)
class Scope:
    """The units one caller may see, per layer (everything when unrestricted)."""

    unrestricted: bool
    visible: Mapping[str, frozenset[str]] = field(default_factory=dict)
    whole: frozenset[str] = frozenset()  # layers seen entirely

    @classmethod
    def everything(cls) -> Scope:
        """Return the scope of an administrator."""
        return cls(unrestricted=True)

    @classmethod
    def resolve(cls, *, units: Iterable[str], trees: Mapping[str, Tree]) -> Scope:
        """Close ``layer:code`` references downwards over each layer's parent links."""
        roots: dict[str, set[str]] = {}
        for ref in units:
            layer, _, code = ref.partition(":")
            roots.setdefault(layer, set()).add(code)
        visible = {}
        whole = set()
        for layer, codes in roots.items():
            children: dict[str, list[str]] = {}
            known = set()
            for code, parent in trees.get(layer, []):
                known.add(code)
                if parent is not None:
                    children.setdefault(parent, []).append(code)
            seen = {c for c in codes if c in known}
            stack = list(seen)
            while stack:
                for child in children.get(stack.pop(), []):
                    if child not in seen:
                        seen.add(child)
                        stack.append(child)
            visible[layer] = frozenset(seen)
            if seen == known:
                whole.add(layer)
        return cls(unrestricted=False, visible=visible, whole=frozenset(whole))

    def codes(self, layer: str) -> frozenset[str] | None:
        """Return the visible codes of a layer; None means all of them."""
        if self.unrestricted:
            return None
        return self.visible.get(layer, frozenset())

    def sees(self, layer: str, code: str | None) -> bool:
        """Whether unit ``code`` of ``layer`` is inside the jurisdiction."""
        if self.unrestricted:
            return True
        return code is not None and code in self.visible.get(layer, ())

    def sees_code(self, code: str, *, layer: str | None = None) -> bool:
        """Whether ``code`` is visible in ``layer`` (any layer when None): no database access.

        Checked *before* anything is loaded, so that a hidden unit costs the
        same time as a missing one (no timing oracle).
        """
        if self.unrestricted:
            return True
        layers = [layer] if layer is not None else list(self.visible)
        return any(code in self.visible.get(name, ()) for name in layers)

    def require(self, layer: str, code: str, *, message: str | None = None) -> None:
        """Raise the same NotFoundError a missing unit raises, unless visible."""
        if not self.sees(layer, code):
            raise NotFoundError(message or f"no unit {code!r} in layer {layer!r}", field="code")


class ScopeResolver:
    """Resolves callers' scopes, cached until the boundaries change.

    Parameters
    ----------
    db : Database
        The registry.
    clock : RevisionClock
        The shared change counters (boundaries, and the version window).
    """

    def __init__(self, db: Database, *, clock: RevisionClock) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self._revision: tuple[int, datetime | None] | None = None
        self._trees: dict[str, Tree] = {}
        self._scopes: dict[tuple[str, ...], Scope] = {}

    def scope(self, principal: Principal) -> Scope:
        """Return the scope of ``principal``."""
        if principal.unrestricted:
            return _EVERYTHING
        with self._lock:
            self._refresh_revision()
            key = tuple(sorted(principal.units))
            found = self._scopes.get(key)
            if found is None:
                for layer in {ref.partition(":")[0] for ref in key}:
                    if layer not in self._trees:
                        self._trees[layer] = self._tree(layer)
                found = Scope.resolve(units=key, trees=self._trees)
                if len(self._scopes) > 10_000:
                    self._scopes.clear()
                self._scopes[key] = found
            return found

    def _refresh_revision(self) -> None:
        revision = self._clock.current().current_boundaries
        if revision != self._revision:
            self._revision = revision
            self._trees.clear()
            self._scopes.clear()

    def _tree(self, layer: str) -> Tree:
        with self._db.reader() as repo:
            return repo.unit_tree(layer=layer, at=parse_time(None))


_EVERYTHING = Scope.everything()


def redact_locate_answer(answer: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """Cut a locate answer down to the caller's jurisdiction (in place; returned).

    A unit outside it keeps its level but loses code, name and distances
    (status ``restricted``); candidates, nearest units, responsible staff and
    address candidates outside it are dropped; an address matched wholly
    outside it answers exactly like an address that was not found.
    """
    if scope.unrestricted or scope.whole.issuperset(answer.get("layers", ())):
        return answer
    any_visible = False
    for layer, body in answer.get("layers", {}).items():
        for unit in body["units"]:
            if unit["code"] is None:
                unit.pop("nearest", None)
            elif scope.sees(layer, unit["code"]):
                any_visible = True
            else:
                unit.update(code=None, name=None, status="restricted", boundary_distance_m=None)
                unit.pop("nearest", None)
            if "candidates" in unit:
                unit["candidates"] = [c for c in unit["candidates"] if scope.sees(layer, c["code"])]
        lowest = body["units"][-1] if body["units"] else None
        if lowest is None or lowest["status"] == "restricted":
            body["status"] = "restricted"
            body["boundary_distance_m"] = None
        nearest = body.get("nearest")
        if nearest is not None and not scope.sees(layer, nearest.get("code")):
            body["nearest"] = None
    answer["responsible"] = [
        person
        for person in answer.get("responsible", [])
        if scope.sees(str(person["layer"]), str(person["unit_code"]))
    ]
    address = answer.get("address")
    if address is not None:
        if not any_visible:
            # An address found outside the jurisdiction answers like one not found.
            return {
                "input": answer["input"],
                "status": "unmatched",
                "address": {
                    "input": address["input"],
                    "parsed": address["parsed"],
                    "candidates": [],
                },
                "layers": {},
                "responsible": [],
            }
        address["candidates"] = []
    return answer
