"""Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

While alive, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``;
her unobserved lifetime is exponential with rate ``mu ~ Gamma(s, beta)``.
Fitted on the same (frequency, recency, T) summaries as :class:`BetaGeo`.

The likelihood follows Fader & Hardie (2005, note 009); the
Gaussian hypergeometric functions are evaluated after an Euler
transformation, ``2F1(a, b; c; z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)``,
which turns them into series with first parameter 1 and positive,
geometrically shrinking terms.

References
----------
Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting your
customers: Who are they and what will they do next? *Management Science*
33(1), 1-24.

Fader, P. S. & Hardie, B. G. S. (2005). A note on deriving the Pareto/NBD
model and related expressions. http://www.brucehardie.com/notes/009/

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers"
the easy way: An alternative to the Pareto/NBD model. *Marketing Science*
24(2), 275-284.

Fader, P. S. & Hardie, B. G. S. (2006). Deriving an expression for
P(X(t) = x) under the Pareto/NBD model. http://www.brucehardie.com/notes/012/
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import betaln, expit, gammaln, hyp2f1

from ._base import (
    Likelihood,
    _dot,
    _like,
    check_horizon,
    numerical_gradient,
    numerical_hessian,
    validate_rft,
)
from ._repeat_purchase import RepeatPurchaseModel

__all__ = ["ParetoNBD", "simulate_pareto_nbd"]


def _log_a0_and_term1(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, tx: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pieces of the Pareto/NBD likelihood per customer.

    Returns ``(log_a0, term1, log_s_over_rsx)`` with
    ``term1 = -(r+x) log(alpha+T) - s log(beta+T)`` (alive at T) and
    ``log_a0`` the log of the A0 integral of note 009 (died in (t_x, T]).
    """
    rsx = r + s + x
    if alpha >= beta:
        big, second = alpha, s + 1.0
    else:
        big, second = beta, r + x
    diff = abs(alpha - beta)
    # 2F1(rsx, second; rsx+1; z) = (1-z)^(1-second) 2F1(1, rsx+1-second; rsx+1; z)
    log_b_tx = np.log(big + tx)
    log_b_T = np.log(big + T)
    z_tx = diff / (big + tx)
    z_T = diff / (big + T)
    log_f_tx = (1.0 - second) * np.log1p(-z_tx) + np.log(
        hyp2f1(1.0, rsx + 1.0 - second, rsx + 1.0, z_tx)
    )
    log_f_T = (1.0 - second) * np.log1p(-z_T) + np.log(
        hyp2f1(1.0, rsx + 1.0 - second, rsx + 1.0, z_T)
    )
    log1 = log_f_tx - rsx * log_b_tx
    log2 = log_f_T - rsx * log_b_T
    with np.errstate(divide="ignore"):
        log_a0 = log1 + np.log1p(-np.exp(np.minimum(log2 - log1, 0.0)))
    term1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    return log_a0, term1, np.log(s) - np.log(rsx)


def _pnbd_loglik(
    theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray
) -> float:
    r, alpha, s, beta = theta
    log_a0, term1, log_ratio = _log_a0_and_term1(r, alpha, s, beta, x, tx, T)
    ll = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        + np.logaddexp(term1, log_ratio + log_a0)
    )  # fmt: skip
    return float(np.einsum("i,i->", w, ll))


class _PNBDData(Likelihood):
    """Weighted (frequency, recency, T) rows; gradient and Hessian by finite differences."""

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> None:
        self.x, self.tx, self.T, self.w = x, tx, T, w
        self.total = float(w.sum())
        self.n_rows = x.size

    def _mean_negll(self, log_theta: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            val = -_pnbd_loglik(np.exp(log_theta), self.x, self.tx, self.T, self.w) / self.total
        return val if np.isfinite(val) else 1e100

    def objective(self, log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        mean = self._mean_negll
        return mean(log_theta), numerical_gradient(mean, log_theta, h=1e-6)

    def log_likelihood(self, log_theta: np.ndarray) -> float:
        return _pnbd_loglik(np.exp(log_theta), self.x, self.tx, self.T, self.w)

    def hessian(self, log_theta: np.ndarray, gradient: np.ndarray | None = None) -> np.ndarray:
        """Central differences of the total negative log-likelihood (no analytic gradient)."""

        def total_negll(z: np.ndarray) -> float:
            with np.errstate(all="ignore"):
                val = -_pnbd_loglik(np.exp(z), self.x, self.tx, self.T, self.w)
            return val if np.isfinite(val) else 1e100 * self.total

        return numerical_hessian(total_negll, log_theta, h=1e-3)


class ParetoNBD(RepeatPurchaseModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

    Parameters
    ----------
    time_unit
        Unit of ``recency``, ``T`` and horizons ``t``: ``"week"``,
        ``"month"``, ``"quarter"`` or ``"year"``.
    confidence_level
        Coverage of the confidence intervals in :meth:`summary`.
    max_iter
        Maximum number of L-BFGS-B iterations.
    boundary, n_bootstrap, bootstrap_seed, max_bootstrap_seconds
        As for :class:`~kam_analysis.ltv.BetaGeo` (here the dropout boundary
        is ``s -> 0`` or ``beta -> infinity``: lifetimes without end).

    Attributes
    ----------
    params_ : dict
        ``{"r", "alpha", "s", "beta"}`` maximum-likelihood estimates.
    log_likelihood_, standard_errors_, confidence_intervals_, variance_matrix_, n_obs_, converged_
        As for :class:`~kam_analysis.ltv.BetaGeo`.
    at_boundary_, boundary_params_, boundary_reason_, interval_method_, param_draws_, bootstrap_
        See :class:`~kam_analysis.ltv._repeat_purchase.RepeatPurchaseModel`.

    Notes
    -----
    The gradient is numerical (central differences on the log scale): the
    model is fitted on the compressed (frequency, recency, T) rows, which
    keeps CDNOW-sized fits well under a second.

    References
    ----------
    Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting your
    customers: Who are they and what will they do next? *Management Science*
    33(1), 1-24.

    Fader, P. S. & Hardie, B. G. S. (2005). A note on deriving the Pareto/NBD
    model and related expressions. http://www.brucehardie.com/notes/009/
    """

    param_names = ("r", "alpha", "s", "beta")
    model_name = "Pareto/NBD"

    def _likelihood(
        self, x: np.ndarray, tx: np.ndarray, big_t: np.ndarray, w: np.ndarray
    ) -> _PNBDData:
        return _PNBDData(x, tx, big_t, w)

    def _start(self, data: _PNBDData) -> np.ndarray:
        """r = s = 0.5, alpha and beta from the mean purchase rate and observation length."""
        mean_x = _dot(data.w, data.x) / data.total
        mean_t = _dot(data.w, data.T) / data.total
        return np.log([0.5, 0.5 * mean_t / max(mean_x, 1e-3), 0.5, mean_t])

    def _simulate(
        self, theta: np.ndarray, big_t: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        r, alpha, s, beta = theta
        sim = simulate_pareto_nbd(big_t.size, r=r, alpha=alpha, s=s, beta=beta, T=big_t, seed=rng)
        return sim["frequency"].to_numpy(dtype=float), sim["recency"].to_numpy()

    # ------------------------------------------------------------------ predictions
    def conditional_probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(alive at T | frequency, recency, T) (Fader & Hardie 2005, note 009).

        Returns
        -------
        numpy.ndarray or pandas.Series
            Probabilities in [0, 1].
        """
        x, tx, big_t = validate_rft(frequency, recency, T)
        p = self.p_alive_unchecked(np.array(self._theta()), x, tx, big_t)
        return _like(p, frequency, "p_alive")

    @staticmethod
    def p_alive_unchecked(
        theta: np.ndarray, x: np.ndarray, tx: np.ndarray, big_t: np.ndarray
    ) -> np.ndarray:
        """P(alive) for parameters ``theta = (r, alpha, s, beta)`` on already validated arrays."""
        r, alpha, s, beta = theta
        with np.errstate(divide="ignore"):
            log_a0, term1, log_ratio = _log_a0_and_term1(r, alpha, s, beta, x, tx, big_t)
        return expit(term1 - (log_ratio + log_a0))

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: Any, frequency: Any, recency: Any, T: Any
    ) -> Any:
        """Expected purchases in (T, T + t] given the history (note 009).

        ``(r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive)``,
        with the ``s -> 1`` limit ``(r+x)(beta+T)/(alpha+T) log((beta+T+t)/(beta+T))``.

        Returns
        -------
        numpy.ndarray or pandas.Series
        """
        r, alpha, s, beta = self._theta()
        x, tx, big_t = validate_rft(frequency, recency, T)
        t = check_horizon(t)
        p_alive = np.asarray(self.conditional_probability_alive(x, tx, big_t))
        factor = (
            (r + x)
            * (beta + big_t)
            / (alpha + big_t)
            * _pareto_integral(s - 1.0, np.log1p(t / (beta + big_t)))
        )
        return _like(np.asarray(factor * p_alive), frequency, "expected_purchases")

    def expected_number_of_purchases_up_to_time(self, t: Any) -> np.ndarray:
        """E[X(t)] for a new customer: ``r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]``.

        Returns
        -------
        numpy.ndarray
        """
        r, alpha, s, beta = self._theta()
        t = check_horizon(t)
        return r * beta / alpha * _pareto_integral(s - 1.0, np.log1p(t / beta))

    def probability_of_n_purchases_up_to_time(self, t: Any, n: Any) -> np.ndarray:
        """P(X(t) = n) for a new customer (Fader & Hardie, note 012).

        Parameters
        ----------
        t
            Horizon(s) in ``time_unit``.
        n
            Non-negative integer(s); broadcast with ``t``.

        Returns
        -------
        numpy.ndarray
            Probabilities, broadcast shape of ``t`` and ``n``.
        """
        r, alpha, s, beta = self._theta()
        t_arr = check_horizon(t)
        n_arr = np.asarray(n, dtype=float)
        if np.any(n_arr < 0) or np.any(n_arr != np.round(n_arr)):
            raise ValueError("n must contain non-negative integers")
        t_b, n_b = np.broadcast_arrays(t_arr, n_arr)
        out = np.empty(t_b.shape)
        for idx in np.ndindex(t_b.shape):
            out[idx] = _pnbd_pmf(int(n_b[idx]), float(t_b[idx]), r, alpha, s, beta)
        return out


def _pareto_integral(sm1: float, log_ratio: np.ndarray) -> np.ndarray:
    """``(1 - exp(-(s-1) L)) / (s-1)`` with its ``s -> 1`` limit ``L``."""
    if abs(sm1) < 1e-10:
        return np.asarray(log_ratio, dtype=float)
    return -np.expm1(-sm1 * log_ratio) / sm1


def _pnbd_pmf(n: int, t: float, r: float, alpha: float, s: float, beta: float) -> float:
    """P(X(t) = n) under the Pareto/NBD (note 012)."""
    if t == 0:
        return 1.0 if n == 0 else 0.0
    # alive throughout (0, t]: NBD(r, alpha) count times P(tau > t)
    alive = stats.nbinom.pmf(n, r, alpha / (alpha + t)) * (beta / (beta + t)) ** s
    if alpha >= beta:
        big, second = alpha, s + 1.0
    else:
        big, second = beta, r + n
    diff = abs(alpha - beta)
    c = r + s + n + 1.0

    def log_f(a_: float, z_: float) -> float:
        return float(np.log(hyp2f1(a_, second, c, z_)))

    log_b1 = log_f(r + s, diff / big) - (r + s) * np.log(big)
    j = np.arange(n + 1)
    log_terms = np.array(
        [
            gammaln(r + s + jj) - gammaln(r + s) - gammaln(jj + 1.0) + jj * np.log(t)
            + log_f(r + s + jj, diff / (big + t)) - (r + s + jj) * np.log(big + t)
            for jj in j
        ]
    )  # fmt: skip
    head = r * np.log(alpha) + s * np.log(beta) + betaln(r + n, s + 1.0) - betaln(r, s)
    died = np.exp(head + log_b1) - np.exp(head + log_terms).sum()
    return float(alive + max(died, 0.0))


def simulate_pareto_nbd(
    n: int,
    *,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    T: Any,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """Simulate customer summaries from the Pareto/NBD data-generating process.

    Each customer draws ``lambda ~ Gamma(r, rate=alpha)`` and
    ``mu ~ Gamma(s, rate=beta)``; her lifetime is ``tau ~ Exponential(mu)``
    and she buys at Poisson rate ``lambda`` while alive. Observed for
    ``T``: ``frequency`` is the number of purchases in ``(0, min(tau, T)]``
    and the recency is the last of them, ``min(tau, T) * U^(1/frequency)``
    (the maximum of ``frequency`` uniforms).

    Parameters
    ----------
    n
        Number of customers.
    r, alpha, s, beta
        Pareto/NBD parameters (alpha and beta in the unit of ``T``).
    T
        Observation length per customer: scalar or array of length ``n``.
    seed
        Seed or ``numpy.random.Generator``.

    Returns
    -------
    pandas.DataFrame
        Columns ``frequency`` (int), ``recency``, ``T`` (float) and ``alive``
        (bool: the lifetime exceeds T).
    """
    rng = np.random.default_rng(seed)
    big_t = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(shape=r, scale=1.0 / alpha, size=n)
    mu = rng.gamma(shape=s, scale=1.0 / beta, size=n)
    e = rng.exponential(size=n)
    with np.errstate(divide="ignore", over="ignore"):
        tau = np.where(mu > 0, e / np.where(mu > 0, mu, 1.0), np.inf)
    life = np.minimum(tau, big_t)
    x = rng.poisson(lam * life)
    u = rng.random(n)
    recency = np.where(x > 0, life * u ** (1.0 / np.maximum(x, 1)), 0.0)
    return pd.DataFrame(
        {"frequency": x.astype(np.int64), "recency": recency, "T": big_t, "alive": tau > big_t}
    )
