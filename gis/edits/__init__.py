"""Edit operations on unit boundaries: each returns new geometries, nothing is written.

``auto_split`` re-partitions a unit into N balanced, contiguous, compact
parts cut along streets and between buildings.
"""

from gis.edits._autosplit import AutoSplitResult, auto_split

__all__ = ["AutoSplitResult", "auto_split"]
