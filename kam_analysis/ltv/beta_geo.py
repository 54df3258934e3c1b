"""BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

Non-contractual setting: while alive, a customer buys at Poisson rate
``lambda ~ Gamma(r, alpha)``; after every purchase she becomes inactive with
probability ``p ~ Beta(a, b)``. Fitted on one row per customer:

* ``frequency`` (x): number of repeat purchases in the observation window,
* ``recency`` (t_x): time from the first purchase to the last repeat purchase,
* ``T``: time from the first purchase to the end of observation,

all times in the model's ``time_unit``.

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers"
the easy way: An alternative to the Pareto/NBD model. *Marketing Science*
24(2), 275-284.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2007). Creating a fit histogram
for the BG/NBD model. http://www.brucehardie.com/notes/014/

Fader, P. S. & Hardie, B. G. S. (2013). Overcoming the BG/NBD model's #NUM!
error problem. http://www.brucehardie.com/notes/027/
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import betaincinv, betaln, digamma, expit, gammaln, hyp2f1

from ._base import (
    Likelihood,
    _dot,
    _like,
    _unique_counts,
    _wsum,
    check_horizon,
    validate_rft,
)
from ._repeat_purchase import RepeatPurchaseModel

__all__ = ["BetaGeo", "simulate_beta_geo"]

_WARM_START_ROWS = 20_000

#: Above this ``a`` the closed-form conditional expectation (a 2F1 with
#: parameters of order a + b) loses precision; a quadrature over p is used.
_HYP_MAX_A = 50.0
_QUADRATURE_NODES = 128


class _BGNBDData(Likelihood):
    """Customer data pre-arranged for fast likelihood evaluations.

    Terms that depend on the customer only through the integer frequency are
    evaluated once per distinct frequency; per-customer work is limited to
    the handful of logs and exps in the recency/T part. Customers with no
    repeat purchase need only ``log(alpha + T)``.
    """

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> None:
        self.W = self.total = float(w.sum())
        self.n_rows = x.size
        self.ux, inv = _unique_counts(x)
        self.cnt = np.bincount(inv, weights=w, minlength=self.ux.size)
        zero = x == 0
        unit = bool(np.all(w == 1.0))
        self.T0 = T[zero]
        self.w0 = None if unit else w[zero]
        pos = ~zero
        self.x1, self.tx1, self.T1 = x[pos], tx[pos], T[pos]
        self.w1 = None if unit else w[pos]
        self.ux1, self.inv1 = _unique_counts(self.x1)
        self.w1x1 = self.x1 if unit else self.w1 * self.x1

    def subsample(self, size: int, seed: int = 0) -> _BGNBDData:
        rng = np.random.default_rng(seed)
        x = np.concatenate([np.zeros(self.T0.size), self.x1])
        tx = np.concatenate([np.zeros(self.T0.size), self.tx1])
        T = np.concatenate([self.T0, self.T1])
        if self.w1 is None:
            idx = rng.choice(x.size, size=size, replace=False)
            return _BGNBDData(x[idx], tx[idx], T[idx], np.ones(size))
        w = np.concatenate([self.w0, self.w1])
        idx = rng.choice(x.size, size=size, replace=True, p=w / w.sum())
        return _BGNBDData(x[idx], tx[idx], T[idx], np.ones(size))

    def loglik_grad(self, r: float, alpha: float, a: float, b: float) -> tuple[float, np.ndarray]:
        """Total log-likelihood and its gradient in (r, alpha, a, b)."""
        ux, cnt, W = self.ux, self.cnt, self.W
        # --- terms in x only: log Gamma(r+x)/Gamma(r) + log B(a, b+x)/B(a, b)
        ab = a + b
        ll = _dot(cnt, gammaln(r + ux) - gammaln(r) + betaln(a, b + ux) - betaln(a, b))
        ll += W * r * np.log(alpha)
        g_r = _dot(cnt, digamma(r + ux) - digamma(r)) + W * np.log(alpha)
        g_alpha = W * r / alpha
        g_a = _dot(cnt, digamma(ab) - digamma(ab + ux))
        g_b = _dot(cnt, digamma(b + ux) - digamma(ab + ux) - digamma(b) + digamma(ab))
        # --- customers without repeat purchases: -r log(alpha + T)
        if self.T0.size:
            lT0 = np.log(alpha + self.T0)
            s_lT0 = _wsum(self.w0, lT0)
            ll -= r * s_lT0
            g_r -= s_lT0
            g_alpha -= r * _wsum(self.w0, 1.0 / (alpha + self.T0))
        # --- repeat buyers: -(r+x) log(alpha+t_x) + log(u + c),
        #     u = ((alpha+t_x)/(alpha+T))^(r+x) in (0, 1], c = a / (b+x-1)
        if self.x1.size:
            w1, w1x1 = self.w1, self.w1x1
            ltx = np.log(alpha + self.tx1)
            D = ltx - np.log(alpha + self.T1)
            u = np.exp((self.x1 + r) * D)
            inv_bx1 = 1.0 / (b + self.ux1 - 1.0)
            s = u + (a * inv_bx1)[self.inv1]
            share_u = u / s
            s_ltx = _wsum(w1, ltx)
            ll += _wsum(w1, np.log(s)) - r * s_ltx - _dot(w1x1, ltx)
            g_r += _wsum(w1, share_u * D) - s_ltx
            iat = 1.0 / (alpha + self.tx1)
            v = share_u * (iat - 1.0 / (alpha + self.T1))
            g_alpha += r * _wsum(w1, v) + _dot(w1x1, v) - r * _wsum(w1, iat) - _dot(w1x1, iat)
            share_c = 1.0 - share_u if w1 is None else w1 * (1.0 - share_u)
            g_a += share_c.sum() / a
            g_b -= _dot(np.bincount(self.inv1, weights=share_c, minlength=self.ux1.size), inv_bx1)
        return float(ll), np.array([g_r, g_alpha, g_a, g_b])

    @property
    def warm_start_rows(self) -> int:
        """:data:`_WARM_START_ROWS`, read when fitting."""
        return _WARM_START_ROWS

    def objective(self, log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_theta)
        ll, g = self.loglik_grad(*theta)
        return -ll / self.W, -g * theta / self.W

    def log_likelihood(self, log_theta: np.ndarray) -> float:
        return self.loglik_grad(*np.exp(log_theta))[0]


class BetaGeo(RepeatPurchaseModel):
    """BG/NBD model (beta-geometric / negative binomial distribution).

    Parameters
    ----------
    time_unit
        Unit of ``recency``, ``T`` and of the horizons ``t`` passed to the
        prediction methods: ``"week"``, ``"month"``, ``"quarter"`` or
        ``"year"``. ``alpha`` is expressed in this unit.
    confidence_level
        Coverage of the confidence intervals in :meth:`summary`.
    max_iter
        Maximum number of L-BFGS-B iterations.
    boundary
        ``"raise"`` (default): an estimate on the boundary of the parameter
        space raises :class:`ConvergenceError`. ``"bootstrap"``: keep it (e.g.
        ``a -> 0`` when almost nobody drops out, common on wholesale data),
        predict from it, and compute intervals by parametric bootstrap.
    n_bootstrap, bootstrap_seed, max_bootstrap_seconds
        Bootstrap replicates at most, seed and wall-clock limit.

    Attributes
    ----------
    params_ : dict
        ``{"r", "alpha", "a", "b"}`` maximum-likelihood estimates.
    log_likelihood_ : float
        Maximised log-likelihood (FHL 2005 eq. 6, the full expression).
    standard_errors_ : dict
        From the inverse of the numerical Hessian of the negative LL (at a
        boundary: the bootstrap standard deviation, or NaN).
    confidence_intervals_ : pandas.DataFrame
        ``lower``/``upper`` per parameter (Wald on the log scale; at a
        boundary, bootstrap percentiles).
    variance_matrix_ : pandas.DataFrame or None
        Covariance matrix of the estimates (None at a boundary).
    n_obs_ : int
        Number of customers (sum of weights).
    converged_ : bool
        True once a fit succeeded (a failed fit raises ``ConvergenceError``).
    at_boundary_, boundary_params_, boundary_reason_, interval_method_, param_draws_, bootstrap_
        See :class:`~kam_analysis.ltv._repeat_purchase.RepeatPurchaseModel`.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your
    customers" the easy way: An alternative to the Pareto/NBD model.
    *Marketing Science* 24(2), 275-284.

    Examples
    --------
    >>> model = BetaGeo(time_unit="week").fit(df["frequency"], df["recency"], df["T"])
    >>> model.summary()  # doctest: +SKIP
    """

    param_names = ("r", "alpha", "a", "b")
    model_name = "BG/NBD"

    # ------------------------------------------------------------------ fitting
    def _likelihood(
        self, x: np.ndarray, tx: np.ndarray, big_t: np.ndarray, w: np.ndarray
    ) -> _BGNBDData:
        return _BGNBDData(x, tx, big_t, w)

    def _simulate(
        self, theta: np.ndarray, big_t: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        r, alpha, a, b = theta
        sim = simulate_beta_geo(big_t.size, r=r, alpha=alpha, a=a, b=b, T=big_t, seed=rng)
        return sim["frequency"].to_numpy(dtype=float), sim["recency"].to_numpy()

    def _start(self, data: _BGNBDData) -> np.ndarray:
        mean_x = (data.cnt @ data.ux) / data.W
        mean_t = (_wsum(data.w0, data.T0) + _wsum(data.w1, data.T1)) / data.W
        r0 = 0.5
        alpha0 = r0 * max(mean_t, 1e-6) / max(mean_x, 1e-3)
        return np.log([r0, alpha0, 1.0, 2.0])

    # ------------------------------------------------------------------ predictions
    def conditional_probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(customer still alive at T | frequency, recency, T) (FHL 2005; note 027).

        Parameters
        ----------
        frequency, recency, T
            Customer summaries in ``time_unit`` (validated as in :meth:`fit`).

        Returns
        -------
        numpy.ndarray or pandas.Series
            Probabilities in [0, 1]; a Series aligned with ``frequency`` if it
            is a Series.
        """
        x, tx, big_t = validate_rft(frequency, recency, T)
        p = self.p_alive_unchecked(np.array(self._theta()), x, tx, big_t)
        return _like(p, frequency, "p_alive")

    @staticmethod
    def p_alive_unchecked(
        theta: np.ndarray, x: np.ndarray, tx: np.ndarray, big_t: np.ndarray
    ) -> np.ndarray:
        """P(alive) for parameters ``theta = (r, alpha, a, b)`` on already validated arrays.

        For loops over parameter draws (LTV intervals), where building a model
        and validating the data per draw would dominate the run time.
        """
        r, alpha, a, b = theta
        with np.errstate(divide="ignore"):
            log_odds_dead = (
                np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                + (r + x) * (np.log(alpha + big_t) - np.log(alpha + tx))
            )  # fmt: skip
        return np.where(x > 0, expit(-log_odds_dead), 1.0)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> Any:
        """Expected repeat purchases in (T, T + t] given the customer's history (FHL 2005 eq. 10).

        Uses the Euler transform of the Gaussian hypergeometric function so
        that it stays finite for heavy buyers (Fader & Hardie 2013, note 027).

        Parameters
        ----------
        t
            Horizon(s) in ``time_unit``; scalar or broadcastable to customers.
        frequency, recency, T
            Customer summaries.

        Returns
        -------
        numpy.ndarray or pandas.Series
            Expected number of purchases per customer.
        """
        r, alpha, a, b = self._theta()
        x, tx, big_t = validate_rft(frequency, recency, T)
        t = check_horizon(t)
        p_alive = np.asarray(self.conditional_probability_alive(x, tx, big_t))
        value = self._expected_factor(t, x, big_t, r, alpha, a, b) * p_alive
        return _like(np.asarray(value), frequency, "expected_purchases")

    @staticmethod
    def _expected_factor(
        t: np.ndarray, x: np.ndarray, big_t: np.ndarray, r: float, alpha: float, a: float, b: float
    ) -> np.ndarray:
        """(a+b+x-1)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)], z = t/(alpha+T+t)."""
        if abs(a - 1.0) < 1e-7:  # removable singularity at a = 1: average both sides
            return 0.5 * (
                BetaGeo._expected_factor(t, x, big_t, r, alpha, 1 - 1e-6, b)
                + BetaGeo._expected_factor(t, x, big_t, r, alpha, 1 + 1e-6, b)
            )
        if a > _HYP_MAX_A:  # near-homogeneous dropout: 2F1 over- or underflows
            return _expected_alive_by_quadrature(t, x, big_t, r, alpha, a, b)
        z = t / (alpha + big_t + t)
        c = a + b + x - 1.0
        with np.errstate(all="ignore"):
            hyp = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
            value = c / (a - 1.0) * (1.0 - np.exp((a - 1.0) * np.log1p(-z)) * hyp)
        bad = ~np.isfinite(value)
        if bad.any():
            t_b, x_b, big_t_b = np.broadcast_arrays(t, x, big_t)
            value = np.array(value, dtype=float)
            value[bad] = _expected_alive_by_quadrature(
                t_b[bad], x_b[bad], big_t_b[bad], r, alpha, a, b
            )
        return value

    def expected_number_of_purchases_up_to_time(self, t: Any) -> np.ndarray:
        """Expected repeat purchases in (0, t] for a new customer (FHL 2005 eq. 7).

        Parameters
        ----------
        t
            Horizon(s) in ``time_unit``.

        Returns
        -------
        numpy.ndarray
            E[X(t)], same shape as ``t``.
        """
        r, alpha, a, b = self._theta()
        t = check_horizon(t)
        if abs(a - 1.0) < 1e-7:
            a = 1.0 + 1e-6
        z = t / (alpha + t)
        hyp = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b - 1.0, z)
        return (a + b - 1.0) / (a - 1.0) * (1.0 - np.exp((a - 1.0) * np.log1p(-z)) * hyp)

    def probability_of_n_purchases_up_to_time(self, t: Any, n: Any) -> np.ndarray:
        """P(X(t) = n): probability that a new customer makes n repeat purchases in (0, t].

        FHL 2005 eq. 8; the basis of the period-transactions fit histogram
        (Fader, Hardie & Lee 2007, note 014).

        Parameters
        ----------
        t
            Horizon(s) in ``time_unit``.
        n
            Number(s) of purchases (non-negative integers); broadcast with ``t``.

        Returns
        -------
        numpy.ndarray
            Probabilities, broadcast shape of ``t`` and ``n``.
        """
        r, alpha, a, b = self._theta()
        t = check_horizon(t)
        n = np.asarray(n, dtype=float)
        if np.any(n < 0) or np.any(n != np.round(n)):
            raise ValueError("n must contain non-negative integers")
        p0 = alpha / (alpha + t)
        first = np.exp(betaln(a, b + n) - betaln(a, b)) * stats.nbinom.pmf(n, r, p0)
        with np.errstate(invalid="ignore"):
            second = np.where(
                n > 0,
                np.exp(betaln(a + 1, np.maximum(b + n - 1, 1e-300)) - betaln(a, b))
                * stats.nbinom.sf(n - 1, r, p0),
                0.0,
            )
        return first + second


def _expected_alive_by_quadrature(
    t: np.ndarray,
    x: np.ndarray,
    big_t: np.ndarray,
    r: float,
    alpha: float,
    a: float,
    b: float,
    nodes: int = _QUADRATURE_NODES,
) -> np.ndarray:
    """E[purchases in (T, T+t] | alive at T] by integrating over the dropout probability.

    Given alive at T, ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x)``
    independently, and ``E[Y(t) | lambda, p] = (1 - exp(-lambda p t)) / p``
    (FHL 2005, eq. 9 before integrating), so
    ``E[Y | p] = (1 - ((alpha+T) / (alpha+T+p t))^(r+x)) / p``. The
    expectation over ``p`` uses the midpoint rule on the quantile scale of
    ``Beta(a, b+x)`` (``nodes`` equal-probability points); the integrand is
    smooth and bounded by ``(r+x) t / (alpha+T)``. Used where the closed form
    overflows (``a`` and ``b`` large: the dropout probability is nearly the
    same for everyone).
    """
    t_b, x_b, big_t_b = np.broadcast_arrays(
        np.asarray(t, dtype=float), np.asarray(x, dtype=float), np.asarray(big_t, dtype=float)
    )
    ux, inv = np.unique(x_b, return_inverse=True)
    u = (np.arange(nodes) + 0.5) / nodes
    p_nodes = betaincinv(a, b + ux[:, None], u[None, :])  # (distinct x, nodes)
    inv = inv.reshape(x_b.shape)
    shape = r + x_b
    ratio = t_b / (alpha + big_t_b)
    out = np.zeros(x_b.shape)
    for k in range(nodes):  # nodes, not customers: each step is one vector over customers
        p = p_nodes[inv, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            term = -np.expm1(-shape * np.log1p(p * ratio)) / p
        out += np.where(p > 0, term, shape * ratio)  # p -> 0: no dropout, (r+x) t / (alpha+T)
    return out / nodes


def simulate_beta_geo(
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: Any,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """Simulate customer summaries from the BG/NBD data-generating process.

    Each customer draws ``lambda ~ Gamma(r, rate=alpha)`` and
    ``p ~ Beta(a, b)``; purchases follow a Poisson(lambda) process and the
    customer dies right after each purchase with probability p. Given the
    number N of Poisson events in (0, T] and the purchase J at which the
    customer dies, ``frequency = min(N, J)`` and the recency is the
    ``frequency``-th of N uniform order statistics on (0, T], i.e.
    ``T * Beta(frequency, N - frequency + 1)``.

    Parameters
    ----------
    n
        Number of customers.
    r, alpha, a, b
        BG/NBD parameters (alpha in the unit of ``T``).
    T
        Observation length per customer: scalar or array of length ``n``.
    seed
        Seed or ``numpy.random.Generator``.

    Returns
    -------
    pandas.DataFrame
        Columns ``frequency`` (int), ``recency``, ``T`` (float) and ``alive``
        (bool: the customer had not dropped out by T).
    """
    rng = np.random.default_rng(seed)
    big_t = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    n_events = rng.poisson(lam * big_t)
    # p underflows to 0 for a -> 0 (nobody drops out): the geometric draw then saturates
    death_at = rng.geometric(np.maximum(p, 1e-300))
    x = np.minimum(n_events, death_at)
    recency = np.zeros(n)
    pos = x > 0
    recency[pos] = big_t[pos] * rng.beta(x[pos], n_events[pos] - x[pos] + 1)
    return pd.DataFrame(
        {
            "frequency": x.astype(np.int64),
            "recency": recency,
            "T": big_t,
            "alive": death_at > n_events,
        }
    )
