"""Incidents (事件): one window for every channel, located, dispatched, tracked to closure.

- :mod:`~gis.incidents.taxonomy` — two-level categories with deadlines (12345-style);
- :mod:`~gis.incidents._model` — drafts, stored incidents, transitions;
- :mod:`~gis.incidents.service` — intake (idempotent), lifecycle, overdue and
  escalation, duplicates, re-location after boundary changes, the evaluation table.
"""

from gis.incidents._model import (
    CLOSED_STATUSES,
    DATUMS,
    OPEN_STATUSES,
    RESPONSIBLE_ROLES,
    STATUSES,
    Incident,
    IncidentDraft,
    IncidentLocation,
    IntakeResult,
    Transition,
)
from gis.incidents.service import ACTIONS, IdempotencyConflict
from gis.incidents.taxonomy import Category, Taxonomy, default_taxonomy, load_taxonomy

__all__ = [
    "ACTIONS",
    "CLOSED_STATUSES",
    "DATUMS",
    "OPEN_STATUSES",
    "RESPONSIBLE_ROLES",
    "STATUSES",
    "Category",
    "IdempotencyConflict",
    "Incident",
    "IncidentDraft",
    "IncidentLocation",
    "IntakeResult",
    "Taxonomy",
    "Transition",
    "default_taxonomy",
    "load_taxonomy",
]
