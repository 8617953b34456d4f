"""Survival function of the two-sided one-sample KS statistic ``D_n`` without ``scipy.stats``.

``scipy.stats.ks_2samp`` takes its asymptotic p-value as ``kstwo.sf(D, round(n m / (n + m)))``;
importing ``scipy.stats`` costs more than a second of a fresh ``mltrust monitor drift`` process,
so this module computes ``kstwo.sf`` with the same algorithm selection as scipy's
``scipy/stats/_ksstats.py`` (Simard & L'Ecuyer 2011, BSD-3 SciPy): Ruben–Gambino at the
extremes, the Durbin matrix (Marsaglia–Tsang–Wang) or Pomeranz recursion for small ``n x²``,
Pelz–Good for large ``n``, and twice the one-sided Smirnov tail in the upper tail (summed here
up to ``n = 25,000``; ``scipy.special.smirnov`` above). Same branches, same arithmetic: the
p-values agree with ``scipy.stats.kstwo.sf`` to ~1e-11 relative (tests check ``rel=1e-9``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["kstwo_sf"]

_E128 = 128
# long double, as scipy has them: a rescaled matrix or row continues in extended precision
_EP128 = np.ldexp(np.longdouble(1), _E128)
_EM128 = np.ldexp(np.longdouble(1), -_E128)
_SQRT2PI = math.sqrt(2 * math.pi)
_LOG_2PI = math.log(2 * math.pi)
_MIN_LOG = -708
_SQRT3 = math.sqrt(3)
_PI2 = math.pi**2
_PI4 = math.pi**4
_PI6 = math.pi**6
# Stirling series coefficients B_2j / (2j (2j - 1)), j = 8 … 1
_STIRLING = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
]


#: up to this ``n`` the one-sided tail is summed here (checked against ``scipy.special.smirnov``
#: to ~2e-11 relative: the log-gamma terms grow like ``n log n`` and so does their rounding);
#: above it scipy's double-double implementation is imported
SMIRNOV_MAX_N = 25_000


def _smirnov(n: int, x: float) -> float:
    """``P(D⁺_n ≥ x)`` by the Smirnov–Birnbaum–Tingey sum, ``0 < x < 1``.

    ``x Σ_{v ≤ n(1−x)} C(n, v) a^(v−1) (1 − a)^(n−v)`` with ``a = x + v/n``: every term is
    positive (no cancellation), each is taken in logs and the sum scaled by its largest term.
    """
    if n > SMIRNOV_MAX_N:
        from scipy.special import smirnov

        return float(smirnov(n, x))
    nx = n * x
    vmax = n - math.ceil(nx)
    if vmax < 0:
        return 0.0
    v = np.arange(vmax + 1, dtype=np.float64)
    lg = math.lgamma
    logc = lg(n + 1.0) - np.array([lg(k + 1.0) + lg(n - k + 1.0) for k in range(vmax + 1)])
    a = x + v / n
    with np.errstate(divide="ignore"):
        log_b = np.where(a < 0.5, np.log1p(-a), np.log(((n - v) - nx) / n))
        terms = logc + (v - 1) * np.log(a) + (n - v) * log_b
    top = float(terms.max())
    return float(x * math.exp(top) * float(np.exp(terms - top).sum()))


def _smirnov2(n: int, x: float) -> float:
    """``2 · smirnov(n, x)``: the two-sided tail where the two one-sided events are disjoint."""
    return 2 * _smirnov(n, x)


def _log_nfact_over_npow(n: int) -> float:
    """``log(n! / nⁿ)`` by Stirling, with ``n log n`` removed first."""
    rn = 1.0 / n
    return float(np.log(n) / 2 - n + _LOG_2PI / 2 + rn * np.polyval(_STIRLING, rn / n))


def _cdf_durbin(n: int, d: float) -> float:
    """``P(D_n ≤ d)``: Durbin's matrix, powered as Marsaglia, Tsang and Wang do (rescaled)."""
    if d >= 1.0:
        return 1.0
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = int(np.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    H = np.zeros([m, m])
    intm = np.arange(1, m + 1)
    v = 1.0 - h**intm
    w = np.empty(m)
    fac = 1.0
    for j in intm:
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h**m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        H[i - 1 :, i] = w[: m - i + 1]
    H[:, 0] = v
    H[-1, :] = np.flip(v, axis=0)
    Hpwr = np.eye(m)
    nn, expnt, hexpnt = n, 0, 0
    while nn > 0:
        if nn % 2:
            Hpwr = np.matmul(Hpwr, H)
            expnt += hexpnt
        H = np.matmul(H, H)
        hexpnt *= 2
        if np.abs(H[k - 1, k - 1]) > _EP128:
            H /= _EP128
            hexpnt += _E128
        nn = nn // 2
    p = Hpwr[k - 1, k - 1]
    for i in range(1, n + 1):  # times n! / nⁿ
        p = i * p / n
        if np.abs(p) < _EM128:
            p *= _EP128
            expnt -= _E128
    if expnt != 0:
        p = np.ldexp(p, expnt)
    return float(p)


def _pomeranz_bounds(i: int, n: int, ll: int, ceilf: int, roundf: int) -> tuple[int, int]:
    if i == 0:
        j1, j2 = -ll - ceilf - 1, ll + ceilf - 1
    else:
        half, odd = divmod(i + 1, 2)
        if odd == 0:
            if half == n + 1:
                j1, j2 = n - ll - ceilf - 1, n + ll + ceilf - 1
            else:
                j1, j2 = half - 1 - ll - roundf - 1, half + ll - 1 + ceilf - 1
        else:
            j1, j2 = half - 1 - ll - 1, half + ll + roundf - 1
    return max(j1 + 2, 0), min(j2, n)


def _cdf_pomeranz(n: int, x: float) -> float:
    """``P(D_n ≤ x)`` by Pomeranz's recursion (two rows kept, rescaled against underflow)."""
    t = n * x
    ll = int(np.floor(t))
    f = 1.0 * (t - ll)
    g = min(f, 1.0 - f)
    ceilf = 1 if f > 0 else 0
    roundf = 1 if f > 0.5 else 0
    npwrs = 2 * (ll + 1)
    gpower = np.empty(npwrs)
    twogpower = np.empty(npwrs)
    onem2gpower = np.empty(npwrs)
    gpower[0] = twogpower[0] = onem2gpower[0] = 1.0
    expnt = 0
    g_n, two_g_n, one_m2g_n = g / n, 2 * g / n, (1 - 2 * g) / n
    for m in range(1, npwrs):
        gpower[m] = gpower[m - 1] * g_n / m
        twogpower[m] = twogpower[m - 1] * two_g_n / m
        onem2gpower[m] = onem2gpower[m - 1] * one_m2g_n / m
    V0 = np.zeros([npwrs])
    V1 = np.zeros([npwrs])
    V1[0] = 1
    V0s, V1s = 0, 0
    j1, j2 = _pomeranz_bounds(0, n, ll, ceilf, roundf)
    for i in range(1, 2 * n + 2):
        k1 = j1
        V0, V1 = V1, V0
        V0s, V1s = V1s, V0s
        V1.fill(0.0)
        j1, j2 = _pomeranz_bounds(i, n, ll, ceilf, roundf)
        if i == 1 or i == 2 * n + 1:
            pwrs = gpower
        else:
            pwrs = twogpower if i % 2 else onem2gpower
        ln2 = j2 - k1 + 1
        if ln2 > 0:
            conv = np.convolve(V0[k1 - V0s : k1 - V0s + ln2], pwrs[:ln2])
            start = j1 - k1
            length = j2 - j1 + 1
            V1[:length] = conv[start : start + length]
            if 0 < np.max(V1) < _EM128:
                V1 *= _EP128
                expnt -= _E128
            V1s = V0s + j1 - k1
    ans = V1[n - V1s]
    for m in range(1, n + 1):  # times n!
        if np.abs(ans) > _EP128:
            ans *= _EM128
            expnt += _E128
        ans *= m
    if expnt != 0:
        ans = np.ldexp(ans, expnt)
    return float(ans)


def _cdf_pelz_good(n: int, x: float) -> float:
    """Pelz–Good approximation of ``P(D_n ≤ x)`` (the Li-Chien/Korolyuk series, transformed)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    z = np.sqrt(n) * x
    z2, z3, z4, z6 = z**2, z**3, z**4, z**6
    qlog = -_PI2 / 8 / z2
    if qlog < _MIN_LOG:
        return 0.0
    q = np.exp(qlog)
    k1a, k1b = -z2, _PI2 / 4
    k2a = 6 * z6 + 2 * z4
    k2b = (2 * z4 - 5 * z2) * _PI2 / 4
    k2c = _PI4 * (1 - 2 * z2) / 16
    k3d = _PI6 * (5 - 30 * z2) / 64
    k3c = _PI4 * (-60 * z2 + 212 * z4) / 16
    k3b = _PI2 * (135 * z4 - 96 * z6) / 4
    k3a = -30 * z6 - 90 * z**8
    K = np.zeros(4)
    maxk = int(np.ceil(16 * z / np.pi))
    for k in range(maxk, 0, -1):  # Horner over the odd terms
        m = 2 * k - 1
        m2, m4, m6 = m**2, m**4, m**6
        qpower = np.power(q, 8 * k)
        coeffs = np.array(
            [
                1.0,
                k1a + k1b * m2,
                k2a + k2b * m2 + k2c * m4,
                k3a + k3b * m2 + k3c * m4 + k3d * m6,
            ]
        )
        K *= qpower
        K += coeffs
    K *= q
    K *= _SQRT2PI
    K /= np.array([z, 6 * z4, 72 * z**7, 6480 * z**10])
    q = np.exp(-_PI2 / 2 / z2)
    ks = np.arange(maxk, 0, -1)
    ks2 = ks**2
    sqrt3z = _SQRT3 * z
    kspi = np.pi * ks
    qpwers = q**ks2
    k2extra = np.sum(ks2 * qpwers)
    k2extra *= _PI2 * _SQRT2PI / (-36 * z3)
    K[2] += k2extra
    k3extra = np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * qpwers)
    k3extra *= _PI2 * _SQRT2PI / (216 * z6)
    K[3] += k3extra
    K /= np.power(n * 1.0, np.arange(len(K)) / 2.0)
    return float(sum(K))


def _sf(n: int, x: float) -> float:
    """``P(D_n > x)`` (scipy's ``_kolmogn(n, x, cdf=False)``, branch for branch)."""
    if math.isnan(x):
        return math.nan
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben–Gambino: 1/2n ≤ x ≤ 1/n
        if t <= 0.5:
            return 1.0
        if n <= 140:
            prob = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            prob = float(np.exp(_log_nfact_over_npow(n) + n * np.log(2 * t - 1)))
        return min(max(1.0 - prob, 0.0), 1.0)
    if t >= n - 1:  # Ruben–Gambino
        return min(max(2 * (1.0 - x) ** n, 0.0), 1.0)
    if x >= 0.5:
        return min(max(_smirnov2(n, x), 0.0), 1.0)
    nx2 = t * x
    if n <= 140:
        if nx2 <= 0.754693:
            cdf = _cdf_durbin(n, x)
        elif nx2 <= 4:
            cdf = _cdf_pomeranz(n, x)
        else:
            return min(max(_smirnov2(n, x), 0.0), 1.0)
        return min(max(1.0 - cdf, 0.0), 1.0)
    if nx2 >= 370.0:
        return 0.0
    if nx2 >= 2.2:
        return min(max(_smirnov2(n, x), 0.0), 1.0)
    if n <= 100000 and n * x**1.5 <= 1.4:
        cdf = _cdf_durbin(n, x)
    else:
        cdf = _cdf_pelz_good(n, x)
    return min(max(1.0 - cdf, 0.0), 1.0)


def kstwo_sf(d: np.ndarray, n: int) -> np.ndarray:
    """``scipy.stats.kstwo.sf(d, n)`` for an integer ``n ≥ 1`` and an array of statistics."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, not {n!r}")
    flat = np.asarray(d, dtype=np.float64).ravel()
    out = np.array([_sf(int(n), float(x)) for x in flat], dtype=np.float64)
    return out.reshape(np.shape(d))
