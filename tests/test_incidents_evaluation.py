"""Evaluation per unit and period (治理成效评估) on hand-made incident frames."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from openpyxl import load_workbook

from gis.errors import InputError
from gis.incidents.evaluation import (
    MEASURES,
    evaluate,
    period_labels,
    to_csv,
    to_records,
    to_xlsx,
)

G1 = "350502001001001"
G2 = "350502001001002"
A = (118.58, 24.91)
# About 22 m north of A (1e-4 degree of latitude is ~11 m).
NEAR_A = (118.58, 24.9102)
# About 220 m north of A.
FAR = (118.58, 24.912)
NOW = datetime(2026, 11, 10, tzinfo=UTC)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _row(
    id_: int,
    unit: str | None,
    category: str,
    received: str,
    status: str,
    *,
    close_after_h: float | None = None,
    deadline_h: float | None = 24,
    feedback: int | None = None,
    at: tuple[float, float] | None = A,
) -> dict[str, object]:
    start = _t(received)
    return {
        "id": id_,
        "governance_grid": unit,
        "governance_community": None if unit is None else unit[:12],
        "category": category,
        "channel": "12345",
        "status": status,
        "received_at": start,
        "closed_at": None if close_after_h is None else start + timedelta(hours=close_after_h),
        "deadline_at": None if deadline_h is None else start + timedelta(hours=deadline_h),
        "feedback_score": feedback,
        "lon": None if at is None else at[0],
        "lat": None if at is None else at[1],
    }


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _row(1, G1, "0101", "2026-11-01T01:00:00Z", "closed", close_after_h=10, feedback=5),
            _row(
                2,
                G1,
                "0101",
                "2026-11-02T01:00:00Z",
                "closed",
                close_after_h=30,
                feedback=3,
                at=NEAR_A,
            ),
            _row(3, G1, "0202", "2026-11-03T01:00:00Z", "dispatched", at=FAR),
            # 01:00 on 1 December in China time: December's incident.
            _row(4, G2, "0101", "2026-11-30T17:00:00Z", "merged"),
            _row(5, None, "0202", "2026-11-05T00:00:00Z", "review", deadline_h=None, at=None),
            _row(
                6,
                G1,
                "0202",
                "2026-11-04T00:00:00Z",
                "rejected",
                close_after_h=2,
                at=(118.59, 24.93),
            ),
        ]
    )


def test_evaluation_per_grid_and_month_has_the_expected_values() -> None:
    table = evaluate(_frame(), by="governance:grid", period="month", now=NOW)

    assert list(table.columns) == ["unit", "period", *MEASURES, "category:0101", "category:0202"]
    assert list(zip(table["unit"], table["period"], strict=True)) == [
        (G1, "2026-11"),
        (G2, "2026-12"),
        ("unassigned", "2026-11"),
    ]
    g1, g2, unassigned = (table.iloc[i].to_dict() for i in range(3))
    # G1: 1 and 2 closed (10 h and 30 h), 3 open past its deadline, 6 rejected.
    assert (g1["incidents"], g1["open"], g1["closed"], g1["merged"]) == (4, 1, 2, 0)
    assert g1["median_hours_to_close"] == 20.0
    # 2 closed late, 3 still open past its deadline; 6 was rejected (not handled).
    assert g1["overdue"] == 2 and g1["overdue_rate"] == pytest.approx(2 / 3)
    # 2 lies 22 m from 1; 3 lies 220 m away; 6 kilometres away.
    assert g1["repeats"] == 1 and g1["repeat_rate"] == 0.25
    assert (g1["feedback_count"], g1["feedback_mean"]) == (2, 4.0)
    assert (g1["category:0101"], g1["category:0202"]) == (2, 2)
    # G2: the merged duplicate at A: a repeat, not handled (no overdue, no rate).
    assert (g2["incidents"], g2["open"], g2["closed"], g2["merged"]) == (1, 0, 0, 1)
    assert math.isnan(g2["median_hours_to_close"]) and math.isnan(g2["overdue_rate"])
    assert (g2["overdue"], g2["repeats"], g2["repeat_rate"]) == (0, 1, 1.0)
    assert g2["feedback_count"] == 0 and math.isnan(g2["feedback_mean"])
    # Not located: in the review queue, grouped as unassigned.
    assert (unassigned["incidents"], unassigned["open"], unassigned["repeats"]) == (1, 1, 0)
    assert (unassigned["category:0101"], unassigned["category:0202"]) == (0, 1)


def test_a_later_now_makes_no_difference_to_handled_incidents_but_an_earlier_one_does() -> None:
    before_deadline = datetime(2026, 11, 3, 12, tzinfo=UTC)
    g1 = evaluate(_frame(), period="all", now=before_deadline).iloc[0]
    # 3 is not yet past its deadline then: only 2 (closed late) is overdue.
    assert g1["unit"] == G1 and g1["overdue"] == 1


def test_grouping_by_community_category_and_the_whole_time() -> None:
    frame = _frame()
    by_community = evaluate(frame, by="governance:community", period="all", now=NOW)
    assert by_community["unit"].tolist() == [G1[:12], "unassigned"]
    assert by_community["incidents"].tolist() == [5, 1]

    by_category = evaluate(frame, by="category", period="all", now=NOW)
    assert by_category["category"].tolist() == ["0101", "0202"]
    assert by_category["incidents"].tolist() == [3, 3]
    assert by_category["median_hours_to_close"].iloc[0] == 20.0
    assert math.isnan(by_category["median_hours_to_close"].iloc[1])
    assert by_category["category:0101"].tolist() == [3, 0]


def test_resolved_time_counts_against_the_deadline_when_the_frame_has_it() -> None:
    frame = _frame()
    frame["resolved_at"] = None
    # 2 was resolved within its deadline and closed after the resident's feedback.
    frame.loc[1, "resolved_at"] = frame.loc[1, "received_at"] + timedelta(hours=20)
    g1 = evaluate(frame, period="all", now=NOW).iloc[0]
    assert g1["overdue"] == 1


def test_repeats_same_category_and_ties_by_id() -> None:
    frame = pd.DataFrame(
        [
            _row(7, G1, "0303", "2026-11-01T00:00:00Z", "received"),
            _row(8, G1, "0101", "2026-11-01T00:00:00Z", "received", at=NEAR_A),
            _row(9, G1, "0101", "2026-11-02T00:00:00Z", "received", at=NEAR_A),
        ]
    )
    # Any category: 8 repeats 7 (same time, larger id), 9 repeats both.
    assert evaluate(frame, period="all", now=NOW).iloc[0]["repeats"] == 2
    # Same category only: 9 repeats 8; 8 repeats nothing of its own category.
    assert evaluate(frame, period="all", now=NOW, same_category=True).iloc[0]["repeats"] == 1
    # A radius below the 22 m from 7: only 9, at the very place of 8, repeats.
    assert evaluate(frame, period="all", now=NOW, radius_m=10).iloc[0]["repeats"] == 1
    assert evaluate(frame.iloc[:2], period="all", now=NOW, radius_m=10).iloc[0]["repeats"] == 0


def test_period_labels_are_china_time() -> None:
    times = pd.Series([_t("2026-01-03T16:30:00Z"), _t("2026-03-31T15:59:00Z")])
    assert period_labels(times, "day").tolist() == ["2026-01-04", "2026-03-31"]
    assert period_labels(times, "week").tolist() == ["2026-W01", "2026-W14"]
    assert period_labels(times, "quarter").tolist() == ["2026-Q1", "2026-Q1"]
    assert period_labels(times, "all").tolist() == ["all", "all"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"by": "police:beat"}, "by"),
        ({"by": "received_at"}, "by"),
        ({"period": "fortnight"}, "period"),
        ({"radius_m": -1.0}, "radius_m"),
        ({"radius_m": float("nan")}, "radius_m"),
    ],
)
def test_bad_options_are_refused_naming_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as refused:
        evaluate(_frame(), now=NOW, **options)  # type: ignore[arg-type]
    assert refused.value.details["field"] == field


def test_an_empty_frame_gives_an_empty_table() -> None:
    empty = _frame().iloc[0:0]
    table = evaluate(empty, now=NOW)
    assert len(table) == 0
    assert list(table.columns)[: 2 + len(MEASURES)] == ["unit", "period", *MEASURES]


def test_records_have_nulls_not_nans_and_category_maps() -> None:
    records = to_records(evaluate(_frame(), now=NOW))
    assert records[1]["unit"] == G2
    assert records[1]["median_hours_to_close"] is None
    assert records[1]["overdue_rate"] is None
    assert records[0]["categories"] == {"0101": 2, "0202": 2}
    assert records[0]["incidents"] == 4 and isinstance(records[0]["incidents"], int)


def test_csv_and_excel_exports_hold_the_table() -> None:
    table = evaluate(_frame(), now=NOW)
    text = to_csv(table)
    assert text is not None and text.startswith("\ufeff")
    back = pd.read_csv(io.StringIO(text.removeprefix("\ufeff")), dtype={"unit": str})
    assert back["unit"].tolist() == table["unit"].tolist()
    assert back["incidents"].tolist() == [4, 1, 1]
    assert back["overdue_rate"].iloc[0] == pytest.approx(2 / 3)

    data = to_xlsx(table)
    assert data is not None
    sheet = load_workbook(io.BytesIO(data), read_only=True)["evaluation"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("unit", "period", "incidents")
    assert rows[1][:3] == (G1, "2026-11", 4)
    assert len(rows) == 4


def test_exports_never_hold_a_formula() -> None:
    frame = _frame()
    frame["channel"] = '=HYPERLINK("http://x")'
    text = to_csv(evaluate(frame, by="channel", period="all", now=NOW))
    assert text is not None
    back = pd.read_csv(io.StringIO(text.removeprefix("\ufeff")))
    assert back["channel"].tolist() == ['\'=HYPERLINK("http://x")']


def test_a_known_level_no_incident_was_located_in_is_all_unassigned() -> None:
    table = evaluate(_frame(), by="police:beat", now=NOW, unit_levels={"police:beat"})
    assert set(table["unit"]) == {"unassigned"}
    assert table["incidents"].sum() == 6
    with pytest.raises(InputError, match="police:beat"):
        evaluate(_frame(), by="police:bet", now=NOW, unit_levels={"police:beat"})
