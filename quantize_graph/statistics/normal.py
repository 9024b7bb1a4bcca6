"""Moments of a normal variable clipped to [lo, hi] (Relu: [0, inf), Relu6: [0, 6]).

For X ~ N(mu, sigma^2) and Y = min(max(X, lo), hi), with a = (lo - mu) / sigma,
b = (hi - mu) / sigma, Phi/phi the standard normal cdf/pdf:

    E[Y]   = lo Phi(a) + hi (1 - Phi(b)) + mu (Phi(b) - Phi(a)) + sigma (phi(a) - phi(b))
    E[Y^2] = lo^2 Phi(a) + hi^2 (1 - Phi(b))
             + mu^2 (Phi(b) - Phi(a)) + 2 mu sigma (phi(a) - phi(b))
             + sigma^2 (Phi(b) - Phi(a) + a phi(a) - b phi(b))

(an infinite bound contributes nothing: its Phi term is 0 or 1 and its phi term 0).
"""
import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def cdf(z):
    return 0.5 * (1.0 + _erf(np.asarray(z, np.float64) / math.sqrt(2.0)))


def pdf(z):
    z = np.asarray(z, np.float64)
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def clipped_moments(mean, var, lo=-np.inf, hi=np.inf):
    """(mean, variance) per element of N(mean, var) clipped to [lo, hi]."""
    mu = np.asarray(mean, np.float64)
    sigma = np.sqrt(np.maximum(np.asarray(var, np.float64), 0.0))
    with np.errstate(all="ignore"):
        return _clipped(mu, sigma, lo, hi)


def _clipped(mu, sigma, lo, hi):
    safe = np.maximum(sigma, 1e-30)
    a = np.where(np.isfinite(lo), (lo - mu) / safe, -np.inf)
    b = np.where(np.isfinite(hi), (hi - mu) / safe, np.inf)
    cdf_a, cdf_b = cdf(a), cdf(b)
    pdf_a, pdf_b = pdf(a), pdf(b)
    # z * phi(z) -> 0 at infinite z; lo/hi terms vanish where their mass is 0.
    a_pdf = np.where(np.isfinite(a), a * pdf_a, 0.0)
    b_pdf = np.where(np.isfinite(b), b * pdf_b, 0.0)
    lo_mass = np.where(np.isfinite(lo), cdf_a, 0.0)
    hi_mass = np.where(np.isfinite(hi), 1.0 - cdf_b, 0.0)
    lo_v = lo if np.isfinite(lo) else 0.0
    hi_v = hi if np.isfinite(hi) else 0.0
    inside = cdf_b - cdf_a
    first = lo_v * lo_mass + hi_v * hi_mass + mu * inside + sigma * (pdf_a - pdf_b)
    second = (lo_v ** 2 * lo_mass + hi_v ** 2 * hi_mass + mu ** 2 * inside
              + 2 * mu * sigma * (pdf_a - pdf_b) + sigma ** 2 * (inside + a_pdf - b_pdf))
    # sigma = 0: a point mass, simply clipped.
    point = np.clip(mu, lo, hi)
    first = np.where(sigma > 0, first, point)
    second = np.where(sigma > 0, second, point ** 2)
    return first, np.maximum(second - first ** 2, 0.0)
