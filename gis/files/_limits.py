"""How much one file may hold: rows, columns and decompressed bytes."""

from __future__ import annotations

from dataclasses import dataclass, replace

from gis.errors import InputError
from gis.settings import Settings, get_settings

__all__ = ["ReadLimits", "too_large"]


@dataclass(frozen=True)
class ReadLimits:
    """Limits every reader enforces before and while it reads; ``None`` means no limit.

    The defaults come from the settings ``TONGGE_MAX_FILE_ROWS``,
    ``TONGGE_MAX_FILE_COLUMNS`` and ``TONGGE_MAX_FILE_DECOMPRESSED_BYTES``.
    """

    max_rows: int | None = 2_000_000
    max_columns: int | None = 200
    max_bytes: int | None = 1024**3

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ReadLimits:
        """Return the limits configured for this process (or for ``settings``)."""
        chosen = settings or get_settings()
        return cls(
            max_rows=chosen.max_file_rows,
            max_columns=chosen.max_file_columns,
            max_bytes=chosen.max_file_decompressed_bytes,
        )

    def streaming(self) -> ReadLimits:
        """Return these limits without the totals, for a reader holding one chunk at a time."""
        return replace(self, max_rows=None, max_bytes=None)

    def check_rows(self, label: str, rows: int) -> None:
        """Refuse ``rows`` above the row limit."""
        if self.max_rows is not None and rows > self.max_rows:
            raise too_large(label, f"more than {self.max_rows:,} rows")

    def check_columns(self, label: str, columns: int) -> None:
        """Refuse ``columns`` above the column limit."""
        if self.max_columns is not None and columns > self.max_columns:
            raise too_large(label, f"{columns:,} columns, more than {self.max_columns:,}")

    def check_bytes(self, label: str, size: int) -> None:
        """Refuse ``size`` (decompressed, decoded) above the byte limit."""
        if self.max_bytes is not None and size > self.max_bytes:
            raise too_large(label, f"more than {self.max_bytes:,} bytes once decompressed")


def too_large(label: str, what: str) -> InputError:
    """Return the 413 error for a file over a limit."""
    return InputError(f"{label}: too large to read: {what}", field="file", status=413)
