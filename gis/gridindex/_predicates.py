"""Exact 2-D orientation: a floating-point filter with an exact fallback.

The sign of ``(a - c) x (b - c)`` decides whether a point is on an edge and on
which side of it, so it must never be wrong: points put "on" an edge by
interpolation lie a few ulps off the line, and GEOS sees that (its
``Orientation::index`` is robust). :func:`orient` evaluates the determinant in
double precision and returns its sign when Shewchuk's error bound proves it
right, which is almost always; otherwise :func:`orient_exact` computes the
determinant exactly as a floating-point expansion (error-free ``two_sum`` /
``two_product`` transformations, Dekker's split since there is no fused
multiply-add to rely on) and returns the sign of its largest component.

Everything is compiled with numba, without ``fastmath``: error-free
transformations need IEEE round-to-nearest and no contraction into FMAs.

Examples
--------
>>> orient(0.0, 0.0, 1.0, 0.0, 0.5, 1.0), orient(0.0, 0.0, 1.0, 0.0, 0.5, -1.0)
(1, -1)
>>> x = 0.1 + 0.2  # 0.30000000000000004, not quite on the diagonal
>>> orient(0.0, 0.0, 1.0, 1.0, x, 0.3), orient(0.0, 0.0, 1.0, 1.0, 0.3, 0.3)
(-1, 0)
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

__all__ = ["orient", "orient2d", "orient_exact"]

_EPSILON = 2.0**-53  # half an ulp of 1: the unit roundoff of binary64
_SPLITTER = 2.0**27 + 1.0  # Dekker's split of a 53-bit significand into two 26-bit halves
_CCW_ERRBOUND_A = (3.0 + 16.0 * _EPSILON) * _EPSILON  # Shewchuk's first-stage bound


@njit(nogil=True, cache=True)
def _two_sum(a: float, b: float) -> tuple[float, float]:
    x = a + b
    b_virtual = x - a
    a_virtual = x - b_virtual
    return x, (a - a_virtual) + (b - b_virtual)


@njit(nogil=True, cache=True)
def _diff_tail(a: float, b: float, x: float) -> float:
    # The rounding error of x = fl(a - b): a - b == x + tail exactly.
    b_virtual = a - x
    a_virtual = x + b_virtual
    return (a - a_virtual) + (b_virtual - b)


@njit(nogil=True, cache=True)
def _two_product(a: float, b: float) -> tuple[float, float]:
    x = a * b
    c = _SPLITTER * a
    a_hi = c - (c - a)
    a_lo = a - a_hi
    c = _SPLITTER * b
    b_hi = c - (c - b)
    b_lo = b - b_hi
    err = ((x - a_hi * b_hi) - a_lo * b_hi) - a_hi * b_lo
    return x, a_lo * b_lo - err


@njit(nogil=True, cache=True)
def _grow(h: NDArray[np.float64], n: int, b: float) -> int:
    # Shewchuk's Grow-Expansion with zero elimination: h[:n] stays a
    # nonoverlapping expansion (increasing magnitude) equal to the exact sum.
    q = b
    m = 0
    for i in range(n):
        q, tail = _two_sum(q, h[i])
        if tail != 0.0:
            h[m] = tail
            m += 1
    if q != 0.0:
        h[m] = q
        m += 1
    return m


@njit(nogil=True, cache=True)
def _add_product(h: NDArray[np.float64], n: int, u: float, v: float) -> int:
    if u == 0.0 or v == 0.0:
        return n
    hi, lo = _two_product(u, v)
    return _grow(h, _grow(h, n, lo), hi)


@njit(nogil=True, cache=True)
def orient_exact(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    """Return the exact sign of ``(a - c) x (b - c)``: 1, 0 or -1.

    Each difference is split into its rounded value and its exact rounding
    error, so the determinant is a sum of 8 products, i.e. 16 doubles, added
    without error into an expansion; the sign of a nonoverlapping expansion is
    the sign of its largest (last) component.

    Examples
    --------
    >>> orient_exact(0.0, 0.0, 1.0, 1.0, 0.5, 0.5)
    0
    """
    acx = ax - cx
    bcx = bx - cx
    acy = ay - cy
    bcy = by - cy
    acx_t = _diff_tail(ax, cx, acx)
    bcx_t = _diff_tail(bx, cx, bcx)
    acy_t = _diff_tail(ay, cy, acy)
    bcy_t = _diff_tail(by, cy, bcy)
    h = np.empty(16)  # at most one component per added double
    n = 0
    # (acx + acx_t)(bcy + bcy_t) - (acy + acy_t)(bcx + bcx_t), term by term
    n = _add_product(h, n, acx, bcy)
    n = _add_product(h, n, -acy, bcx)
    n = _add_product(h, n, acx, bcy_t)
    n = _add_product(h, n, acx_t, bcy)
    n = _add_product(h, n, acx_t, bcy_t)
    n = _add_product(h, n, -acy, bcx_t)
    n = _add_product(h, n, -acy_t, bcx)
    n = _add_product(h, n, -acy_t, bcx_t)
    if n == 0:
        return 0
    return 1 if h[n - 1] > 0.0 else -1


@njit(nogil=True, cache=True, inline="always")
def orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    """Return the sign of ``(a - c) x (b - c)``, exactly: 1 left turn, -1 right, 0 collinear.

    ``1`` means ``c`` is to the left of the directed line ``a -> b``.

    Examples
    --------
    >>> orient(0.0, 0.0, 2.0, 2.0, 1.0, 1.0)
    0
    """
    det_left = (ax - cx) * (by - cy)
    det_right = (ay - cy) * (bx - cx)
    det = det_left - det_right
    # Shewchuk's orient2d filter: when the two products have opposite signs
    # (or one is zero) the difference cannot cancel and its sign is exact.
    if det_left > 0.0:
        if det_right <= 0.0:
            return 1 if det > 0.0 else (-1 if det < 0.0 else 0)
        det_sum = det_left + det_right
    elif det_left < 0.0:
        if det_right >= 0.0:
            return 1 if det > 0.0 else (-1 if det < 0.0 else 0)
        det_sum = -det_left - det_right
    else:
        return 1 if det > 0.0 else (-1 if det < 0.0 else 0)
    bound = _CCW_ERRBOUND_A * det_sum
    if det >= bound:
        return 1
    if -det >= bound:
        return -1
    return orient_exact(ax, ay, bx, by, cx, cy)


@njit(nogil=True, cache=True)
def _orient_many(
    ax: NDArray[np.float64],
    ay: NDArray[np.float64],
    bx: NDArray[np.float64],
    by: NDArray[np.float64],
    cx: NDArray[np.float64],
    cy: NDArray[np.float64],
) -> NDArray[np.int8]:
    out = np.empty(ax.size, dtype=np.int8)
    for i in range(ax.size):
        out[i] = orient(ax[i], ay[i], bx[i], by[i], cx[i], cy[i])
    return out


def orient2d(
    ax: ArrayLike, ay: ArrayLike, bx: ArrayLike, by: ArrayLike, cx: ArrayLike, cy: ArrayLike
) -> NDArray[np.int8]:
    """Exact orientation of ``c`` relative to the directed line ``a -> b``, vectorized.

    Parameters
    ----------
    ax, ay, bx, by, cx, cy : array_like
        Coordinates, broadcast together.

    Returns
    -------
    ndarray of int8
        ``1`` where ``c`` is to the left of ``a -> b``, ``-1`` to the right,
        ``0`` where the three points are exactly collinear.

    Examples
    --------
    >>> orient2d([0.0, 0.0], 0.0, 1.0, 1.0, [0.5, 0.5], [0.5, 0.5 + 2**-53]).tolist()
    [0, 1]
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (ax, ay, bx, by, cx, cy))
    )
    flat = [np.ascontiguousarray(a).ravel() for a in arrays]
    return _orient_many(*flat).reshape(arrays[0].shape)
