"""Type aliases and callback types shared across the core (one place, one meaning).

- :data:`Progress` ``(done, total)``: counted work (rows written, units stored);
- :data:`Step` ``(name)``: the name of the step starting (read, validate...);
- :data:`RowProgress` ``(rows)``: rows done so far, total unknown (streams);
- :data:`TimeLike`: what public functions accept as a time (see :mod:`gis.times`).
"""

from __future__ import annotations

from collections.abc import Callable

from gis.times import TimeLike

__all__ = ["Progress", "RowProgress", "Step", "TimeLike"]

Progress = Callable[[int, int], None]
Step = Callable[[str], None]
RowProgress = Callable[[int], None]
