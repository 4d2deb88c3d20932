"""Long-lived data and the cyclic garbage collector.

The caches hold hundreds of thousands of objects for a process's life (a
layer's versions, the places, the locate indexes). A full (generation 2)
collection scans every tracked object: with them in the heap it takes
~0.1 s and lands in whatever request allocates at that moment, a preview's
or a locate's tail. :func:`keep_long_lived`, called right after such data
is built, moves everything alive out of the collector's reach
(:func:`gc.freeze`), so later collections scan only what was made since.

Frozen objects are never collected, even once unreachable. A cache evicts
old revisions, and any reference cycle among their objects would then be
kept for good: each call therefore unfreezes first, so the full collection
in between also frees what earlier calls froze and the caches have since
dropped. That collection (~0.1 s) is paid once per build, never per request.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["keep_long_lived"]

# Two builds finishing at once (request threads, background rebuilds) must
# not interleave unfreeze/collect/freeze; the collector itself is global.
_LOCK = threading.Lock()


def keep_long_lived() -> None:
    """Collect all garbage, frozen earlier or not, then freeze what is alive.

    Examples
    --------
    >>> import gc, weakref
    >>> class Node:
    ...     pass
    >>> node = Node(); node.me = node          # a reference cycle
    >>> alive = weakref.ref(node)
    >>> keep_long_lived()                       # node is long-lived now
    >>> del node                                # ... and then dropped
    >>> _ = gc.collect()                        # ordinary collections skip it
    >>> alive() is not None
    True
    >>> keep_long_lived()                       # the next build frees it
    >>> alive() is None
    True
    """
    with _LOCK:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
