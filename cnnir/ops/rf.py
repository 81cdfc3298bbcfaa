"""Receptive-field geometry of one layer along one axis: ``(n, f, g)``.

An output unit reads ``n`` consecutive input units, adjacent output units are ``f``
input units apart, and ``g`` units of padding come before the first input unit.
A conv is ``(d(k-1)+1, s, p)``; upsampling and transposed convs move by fractions of
a unit (:class:`~fractions.Fraction`), which come back to integers once a later
stride multiplies them out.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd

from .base import Geometry, Num


def norm(x: Num) -> Num:
    """A Fraction with denominator 1 as an int; anything else as it is."""
    return x.numerator if isinstance(x, Fraction) and x.denominator == 1 else x


def window(k: int, s: int, p: int, d: int = 1) -> Geometry:
    """A conv or pooling window: kernel ``k``, stride ``s``, begin padding ``p``, dilation ``d``."""
    return d * (k - 1) + 1, s, p


def upsampled(s: int, n: int) -> Geometry:
    """Upsampling by ``s`` reading ``n`` units: centre of output y at ``(y + 1/2)/s - 1/2``."""
    f = Fraction(1, s)
    shift = (f - 1) / 2
    return n, f, Fraction(n - 1, 2) - shift


def transposed(k: int, s: int, p: int, d: int) -> Geometry:
    """A transposed conv: an output unit reads ``((k-1)//m)+1`` input units."""
    m = s // gcd(d, s)  # taps that hit one output are m apart
    n = Fraction(((k - 1) // m) * m * d, s) + 1
    f = Fraction(1, s)
    shift = Fraction(2 * p - d * (k - 1), 2 * s)
    return norm(n), f, norm((n - 1) / 2 - shift)
