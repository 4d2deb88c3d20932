"""Code rules: missing, duplicate, not under the parent's code, format."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from gis.layers import LayerSpec, LevelSpec
from gis.validate._report import Problem, ValidationReport

Where = Callable[[int], tuple[float | None, float | None]]


def is_missing(code: object) -> bool:
    """Whether a code value is absent (None, NaN or blank)."""
    return code is None or (isinstance(code, float) and code != code) or not str(code).strip()


def check_codes(
    codes: list[str | None],
    where: Where,
    report: ValidationReport,
    *,
    layer: LayerSpec | None,
    level: LevelSpec | None,
    names: list[str] | None = None,
) -> None:
    """Report missing and duplicate codes, and format warnings.

    ``names`` are what other problems call each unit (``#<row>`` for a unit
    without a code); a ``missing_code`` problem names the unit the same way.
    """
    counts = Counter(code for code in codes if not is_missing(code))
    reported: set[str] = set()
    for i, code in enumerate(codes):
        if is_missing(code):
            lon, lat = where(i)
            name = names[i] if names is not None else f"#{i}"
            report.problems.append(
                Problem("missing_code", (name,), lon, lat, None, f"feature {name} has no code")
            )
            continue
        assert code is not None
        if counts[code] > 1 and code not in reported:
            reported.add(code)
            lon, lat = where(i)
            report.problems.append(
                Problem(
                    "duplicate_code",
                    (code,),
                    lon,
                    lat,
                    None,
                    f"code {code!r} is used by {counts[code]} features; codes must be unique "
                    "(merge the parts into one MultiPolygon)",
                )
            )
        if layer is not None and layer.digits_only and not code.isdigit():
            lon, lat = where(i)
            report.warnings.append(
                Problem(
                    "code_format",
                    (code,),
                    lon,
                    lat,
                    None,
                    f"code {code!r} should be digits only in the {layer.name} layer",
                )
            )
        elif level is not None and level.code_lengths and len(code) not in level.code_lengths:
            lon, lat = where(i)
            lengths = " or ".join(str(n) for n in level.code_lengths)
            report.warnings.append(
                Problem(
                    "code_format",
                    (code,),
                    lon,
                    lat,
                    None,
                    f"{level.name} code {code!r} has {len(code)} characters, expected {lengths}",
                )
            )


def code_under_parent(
    code: str, parent: str, *, layer: LayerSpec | None, level: LevelSpec | None
) -> str | None:
    """Return why ``code`` is not a valid child code of ``parent`` (``None`` if it is)."""
    if layer is not None and not layer.child_code_extends_parent:
        return None
    if not code.startswith(parent) or len(code) <= len(parent):
        return f"code {code!r} does not start with its parent's code {parent!r}"
    if level is not None and level.code_lengths and len(code) not in level.code_lengths:
        lengths = " or ".join(str(n) for n in level.code_lengths)
        return (
            f"code {code!r} is its parent's code {parent!r} plus {len(code) - len(parent)} "
            f"characters, but {level.name} codes have {lengths} characters"
        )
    return None
