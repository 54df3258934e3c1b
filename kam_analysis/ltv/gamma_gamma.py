"""Gamma-Gamma model of average transaction value (Fader, Hardie & Lee 2005).

A customer's transaction values are ``Gamma(p, nu)`` around her own mean
``p / nu``, with ``nu ~ Gamma(q, v)`` across customers (``v`` is the
"gamma" scale of the papers). Fitted on customers with at least one repeat
purchase, using their number of repeat purchases ``frequency`` (x) and the
average value of those purchases ``monetary_value`` (z-bar). The model
assumes spend is independent of the purchase process; a warning is issued
when frequency and spend are visibly correlated.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using
iso-value curves for customer base analysis. *Journal of Marketing Research*
42(4), 415-430.

Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary
value. http://www.brucehardie.com/notes/025/

Colombo, R. & Jiang, W. (1999). A stochastic RFM model. *Journal of
Interactive Marketing* 13(3), 2-12.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln

from ._base import (
    Likelihood,
    ParametricModel,
    _dot,
    _examples,
    _labels,
    _like,
    _unique_counts,
    as_float_array,
    validate_weights,
)

__all__ = ["GammaGamma", "IndependenceWarning"]


class IndependenceWarning(UserWarning):
    """Frequency and average spend are correlated; Gamma-Gamma assumes they are not."""


def _validate_spend(
    frequency: Any, monetary_value: Any, *, allow_zero_frequency: bool
) -> tuple[np.ndarray, np.ndarray]:
    labels = _labels(frequency)
    x = as_float_array(frequency, "frequency")
    m = as_float_array(monetary_value, "monetary_value")
    if x.size != m.size:
        raise ValueError(
            f"frequency and monetary_value must have the same length, got {x.size} and {m.size}"
        )
    bad = (x < 0) | (x != np.round(x))
    if bad.any():
        raise ValueError(
            "frequency must be a non-negative whole number of repeat purchases: "
            f"{int(bad.sum())} violation(s) ({_examples(bad, labels, frequency=x)})"
        )
    if not allow_zero_frequency and (x == 0).any():
        zero = x == 0
        raise ValueError(
            "Gamma-Gamma is fitted on customers with at least one repeat purchase: "
            f"{int(zero.sum())} row(s) have frequency 0 ({_examples(zero, labels, frequency=x)}); "
            "select them out first, e.g. df[df['frequency'] > 0]"
        )
    nonpos = (m <= 0) & (x > 0)
    if nonpos.any():
        raise ValueError(
            "monetary_value must be > 0 (average value of repeat purchases; refunds and "
            f"zero-value orders break the gamma model): {int(nonpos.sum())} violation(s) "
            f"({_examples(nonpos, labels, monetary_value=m)})"
        )
    return x, m


_WARM_START_ROWS = 20_000


class _GGData(Likelihood):
    """Spend data arranged for fast likelihood evaluations.

    The special functions depend on a customer only through x, so they are
    evaluated once per distinct frequency; per customer only
    ``log(v + x m)`` and ``1 / (v + x m)`` remain.
    """

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray) -> None:
        self.x, self.m, self.w = x, m, w
        self.total = float(w.sum())
        self.n_rows = x.size
        self.ux, inv = _unique_counts(x)
        self.cnt = np.bincount(inv, weights=w, minlength=self.ux.size)
        self.xm = x * m
        self.wx = w * x
        self.s_xlog = _dot(self.wx, np.log(x) + np.log(m))  # sum of w x log(x z-bar)
        self.const = -_dot(w, np.log(m))  # Jacobian term of the z-bar density

    def subsample(self, size: int, seed: int = 0) -> _GGData:
        rng = np.random.default_rng(seed)
        if np.all(self.w == 1.0):
            idx = rng.choice(self.x.size, size=size, replace=False)
        else:
            idx = rng.choice(self.x.size, size=size, replace=True, p=self.w / self.total)
        return _GGData(self.x[idx], self.m[idx], np.ones(size))

    def loglik_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = theta
        ux, cnt, w, wx, total = self.ux, self.cnt, self.w, self.wx, self.total
        pu = p * ux
        log_vxm = np.log(v + self.xm)
        inv_vxm = 1.0 / (v + self.xm)
        s_log, s_xlog_vxm = _dot(w, log_vxm), _dot(wx, log_vxm)
        ll = (
            _dot(cnt, gammaln(pu + q) - gammaln(pu))
            + p * (self.s_xlog - s_xlog_vxm)
            - q * s_log
            + total * (q * np.log(v) - gammaln(q))
        )
        dpq = digamma(pu + q)
        g_p = _dot(cnt * ux, dpq - digamma(pu)) + self.s_xlog - s_xlog_vxm
        g_q = _dot(cnt, dpq) - s_log + total * (np.log(v) - digamma(q))
        g_v = total * q / v - p * _dot(wx, inv_vxm) - q * _dot(w, inv_vxm)
        return float(ll) + self.const, np.array([g_p, g_q, g_v])

    @property
    def warm_start_rows(self) -> int:
        """:data:`_WARM_START_ROWS`, read when fitting."""
        return _WARM_START_ROWS

    def objective(self, log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_theta)
        ll, g = self.loglik_grad(theta)
        return -ll / self.total, -g * theta / self.total

    def log_likelihood(self, log_theta: np.ndarray) -> float:
        return self.loglik_grad(np.exp(log_theta))[0]


class GammaGamma(ParametricModel):
    """Gamma-Gamma spend model.

    Parameters
    ----------
    correlation_threshold
        Absolute Pearson correlation between frequency and monetary value
        above which :meth:`fit` issues an :class:`IndependenceWarning`.
    confidence_level
        Coverage of the confidence intervals in :meth:`summary`.
    max_iter
        Maximum number of L-BFGS-B iterations.

    Attributes
    ----------
    params_ : dict
        ``{"p", "q", "v"}`` maximum-likelihood estimates (``v`` is the
        papers' gamma, in currency units).
    log_likelihood_ : float
        Log-likelihood of the observed average spends (density of z-bar).
    frequency_spend_correlation_ : float
        Pearson correlation of frequency and monetary value in the fitted data.
    standard_errors_, confidence_intervals_, variance_matrix_, n_obs_, converged_
        As for :class:`~kam_analysis.ltv.BetaGeo`.

    Notes
    -----
    No time unit: the model concerns the value per transaction only.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using
    iso-value curves for customer base analysis. *Journal of Marketing
    Research* 42(4), 415-430.

    Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma model of monetary
    value. http://www.brucehardie.com/notes/025/
    """

    param_names = ("p", "q", "v")
    model_name = "Gamma-Gamma"
    settings_fields = {
        **ParametricModel.settings_fields,
        "correlation_threshold": "correlation_threshold",
    }

    def __init__(
        self,
        *,
        correlation_threshold: float = 0.3,
        confidence_level: float = 0.95,
        max_iter: int = 1000,
    ) -> None:
        super().__init__(confidence_level=confidence_level, max_iter=max_iter)
        if not 0 <= correlation_threshold <= 1:
            raise ValueError(
                f"correlation_threshold must be in [0, 1], got {correlation_threshold!r}"
            )
        self.correlation_threshold = float(correlation_threshold)

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None) -> GammaGamma:
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency
            Number of repeat purchases per customer (all > 0).
        monetary_value
            Average value of those repeat purchases (all > 0).
        weights
            Optional number of customers sharing each row.

        Returns
        -------
        GammaGamma
            ``self``, fitted.

        Raises
        ------
        ValueError
            Frequency 0 rows, non-positive spend, non-integer frequency, ...
        ConvergenceError
            The fit did not converge or the estimate is degenerate.

        Warns
        -----
        IndependenceWarning
            When ``|corr(frequency, monetary_value)| > correlation_threshold``.
        """
        x, m = _validate_spend(frequency, monetary_value, allow_zero_frequency=False)
        w = validate_weights(weights, x.size)
        self.frequency_spend_correlation_ = _weighted_corr(x, m, w)
        if abs(self.frequency_spend_correlation_) > self.correlation_threshold:
            warnings.warn(
                f"frequency and monetary_value are correlated (r = "
                f"{self.frequency_spend_correlation_:.2f}, threshold "
                f"{self.correlation_threshold}); the Gamma-Gamma model assumes spend is "
                "independent of purchase frequency, so its spend predictions may be biased",
                IndependenceWarning,
                stacklevel=2,
            )
        (x, m), w = self._prepare_rows([x, m], w)
        self._fit_likelihood(_GGData(x, m, w))
        return self

    def _start(self, data: _GGData) -> np.ndarray:
        """p = q = 4 with v matching the observed mean spend p v / (q - 1)."""
        return np.log([4.0, 4.0, 0.75 * _dot(data.w, data.m) / data.total])

    def conditional_expected_average_profit(self, frequency: Any, monetary_value: Any) -> Any:
        """E[average transaction value | x, z-bar] (Fader & Hardie 2013, note 025).

        ``(p (v + x z-bar)) / (p x + q - 1)``, a weighted average of the
        population mean ``p v / (q - 1)`` and the customer's own ``z-bar``.
        Customers with ``frequency == 0`` get the population mean (their
        ``monetary_value`` is ignored).

        Parameters
        ----------
        frequency, monetary_value
            Per-customer repeat-purchase count and average value.

        Returns
        -------
        numpy.ndarray or pandas.Series

        Raises
        ------
        ValueError
            If ``q <= 1`` (the population mean spend is infinite).
        """
        p, q, v = self._theta()
        if q <= 1:
            raise ValueError(f"q = {q:.3g} <= 1: the expected spend is infinite under this fit")
        x, m = _validate_spend(frequency, monetary_value, allow_zero_frequency=True)
        m = np.where(x > 0, m, 0.0)
        return _like(p * (v + x * m) / (p * x + q - 1.0), frequency, "expected_average_profit")

    def expected_average_profit(self) -> float:
        """Population mean transaction value ``p v / (q - 1)`` (infinite if q <= 1)."""
        p, q, v = self._theta()
        return float(p * v / (q - 1.0)) if q > 1 else float("inf")


def _weighted_corr(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    if x.size < 3:
        return 0.0
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    cov = np.average((x - mx) * (y - my), weights=w)
    sx = np.sqrt(np.average((x - mx) ** 2, weights=w))
    sy = np.sqrt(np.average((y - my) ** 2, weights=w))
    if sx == 0 or sy == 0:
        return 0.0
    return float(cov / (sx * sy))
