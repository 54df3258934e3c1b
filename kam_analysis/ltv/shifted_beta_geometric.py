"""Shifted-beta-geometric (sBG) model of contract retention (Fader & Hardie 2007).

Contractual, discrete-time setting: at the end of every period a customer
renews with her own probability ``1 - theta``; ``theta ~ Beta(alpha, beta)``
across customers. Fitted on cohort survivor counts per period; aggregate
retention rates rise over time purely through heterogeneity (high-churn
customers leave first).

References
----------
Fader, P. S. & Hardie, B. G. S. (2007). How to project customer retention.
*Journal of Interactive Marketing* 21(1), 76-90.

Fader, P. S. & Hardie, B. G. S. (2010). Customer-base valuation in a
contractual setting: The perils of ignoring heterogeneity. *Marketing
Science* 29(1), 85-93.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import betaln, digamma, hyp2f1

from ._base import (
    ConvergenceError,
    Likelihood,
    ParametricModel,
    as_float_array,
    check_time_unit,
)

__all__ = ["ShiftedBetaGeometric"]


def _as_cohorts(survivors: Any) -> list[np.ndarray]:
    """Accept one survivor sequence or a list of them; validate each."""
    if isinstance(survivors, np.ndarray) and survivors.ndim == 1:
        raw: Sequence[Any] = [survivors]
    elif (
        isinstance(survivors, Sequence | np.ndarray)
        and len(survivors) > 0
        and all(np.ndim(c) == 1 for c in survivors)
    ):
        raw = list(survivors)
    elif np.ndim(survivors) == 1:
        raw = [survivors]
    else:
        raise ValueError(
            "survivors must be one sequence of counts per period (e.g. [1000, 869, 743]) "
            "or a list of such sequences, one per cohort"
        )
    cohorts = []
    for i, c in enumerate(raw):
        arr = as_float_array(c, f"survivors[{i}]")
        if arr.size < 2:
            raise ValueError(
                f"survivors[{i}] needs at least two periods (the starting count and one "
                f"renewal), got {arr.size}"
            )
        if arr[0] <= 0:
            raise ValueError(
                f"survivors[{i}] must start with a positive cohort size, got {arr[0]:g}"
            )
        if (arr < 0).any():
            raise ValueError(f"survivors[{i}] has negative counts: {arr.tolist()}")
        rise = np.flatnonzero(np.diff(arr) > 0)
        if rise.size:
            k = int(rise[0])
            raise ValueError(
                f"survivors[{i}] must be non-increasing (customers cannot come back): "
                f"{arr[k]:g} at period {k} rises to {arr[k + 1]:g} at period {k + 1}"
            )
        cohorts.append(arr)
    return cohorts


class _Cohorts(Likelihood):
    """Survivor counts of cohorts as churn counts per period and right-censored survivors."""

    def __init__(self, cohorts: list[np.ndarray]) -> None:
        # lost[t-1] customers churned in period t (t = 1..K); alive[K] right-censored
        self.periods = np.concatenate([np.arange(1, c.size) for c in cohorts]).astype(float)
        self.lost = np.concatenate([-np.diff(c) for c in cohorts])
        self.cens_t = np.array([c.size - 1 for c in cohorts], dtype=float)
        self.cens_n = np.array([c[-1] for c in cohorts])
        self.total = float(sum(c[0] for c in cohorts))
        self.n_rows = len(cohorts)

    def loglik_grad(self, a: float, b: float) -> tuple[float, np.ndarray]:
        """Log-likelihood (FH 2007, eq. B3) and its gradient in (alpha, beta)."""
        lost, periods, cens_t, cens_n = self.lost, self.periods, self.cens_t, self.cens_n
        ab = a + b
        base = betaln(a, b)
        dab, da, db = digamma(ab), digamma(a), digamma(b)
        ll = lost @ (betaln(a + 1, b + periods - 1) - base) + cens_n @ (
            betaln(a, b + cens_t) - base
        )
        d_abt = digamma(ab + periods)
        g_a = lost @ (digamma(a + 1) - d_abt - da + dab) + cens_n @ (dab - digamma(ab + cens_t))
        g_b = lost @ (digamma(b + periods - 1) - d_abt - db + dab) + cens_n @ (
            digamma(b + cens_t) - digamma(ab + cens_t) - db + dab
        )
        return float(ll), np.array([g_a, g_b])

    def objective(self, log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.exp(log_theta)
        ll, g = self.loglik_grad(*theta)
        return -ll / self.total, -g * theta / self.total

    def log_likelihood(self, log_theta: np.ndarray) -> float:
        return self.loglik_grad(*np.exp(log_theta))[0]


class ShiftedBetaGeometric(ParametricModel):
    """Shifted-beta-geometric retention model.

    Parameters
    ----------
    time_unit
        Length of one contract period: ``"week"``, ``"month"``, ``"quarter"``
        or ``"year"`` (default ``"year"``, the annual renewals of the
        reference paper). Periods ``t`` in all methods count in this unit.
    confidence_level
        Coverage of the confidence intervals in :meth:`summary`.
    max_iter
        Maximum number of L-BFGS-B iterations.

    Attributes
    ----------
    params_ : dict
        ``{"alpha", "beta"}``: the churn probability ``theta`` is
        ``Beta(alpha, beta)`` across customers.
    log_likelihood_ : float
        ``sum_t n_t log P(T = t) + n_K log S(K)`` over cohorts (FH 2007, eq. B3).
    n_obs_ : int
        Number of customers at the start of the cohorts.
    standard_errors_, confidence_intervals_, variance_matrix_, converged_
        As for :class:`~kam_analysis.ltv.BetaGeo`.

    References
    ----------
    Fader, P. S. & Hardie, B. G. S. (2007). How to project customer retention.
    *Journal of Interactive Marketing* 21(1), 76-90.

    Fader, P. S. & Hardie, B. G. S. (2010). Customer-base valuation in a
    contractual setting: The perils of ignoring heterogeneity. *Marketing
    Science* 29(1), 85-93.

    Examples
    --------
    >>> sbg = ShiftedBetaGeometric(time_unit="year")
    >>> sbg.fit(survivors=[1000, 869, 743, 653, 593, 551, 517, 491]).params_  # doctest: +SKIP
    {'alpha': 0.668, 'beta': 3.806}
    """

    param_names = ("alpha", "beta")
    model_name = "shifted-beta-geometric"
    settings_fields = {**ParametricModel.settings_fields, "time_unit": "time_unit"}

    def __init__(
        self, *, time_unit: str = "year", confidence_level: float = 0.95, max_iter: int = 1000
    ) -> None:
        super().__init__(confidence_level=confidence_level, max_iter=max_iter)
        self.time_unit = check_time_unit(time_unit)

    def fit(self, survivors: Any) -> ShiftedBetaGeometric:
        """Fit by maximum likelihood on cohort survivor counts.

        Parameters
        ----------
        survivors
            Customers still active at the start of periods 0, 1, ..., K of one
            cohort (``[1000, 869, 743, ...]``), or a list of such sequences for
            several cohorts, each right-censored at its own K.

        Returns
        -------
        ShiftedBetaGeometric
            ``self``, fitted.

        Raises
        ------
        ValueError
            Counts that rise, are negative, or start at zero.
        ConvergenceError
            E.g. when nobody ever churns (``beta`` runs off to infinity).
        """
        data = _Cohorts(_as_cohorts(survivors))
        if data.lost.sum() == 0:
            raise ConvergenceError(
                "shifted-beta-geometric: no customer churned in any cohort; the churn "
                "distribution is not identified (beta -> infinity)"
            )
        self._fit_likelihood(data)
        return self

    def _start(self, data: _Cohorts) -> np.ndarray:
        return np.zeros(2)

    # ------------------------------------------------------------------ predictions
    def survival_function(self, t: Any) -> np.ndarray:
        """S(t) = B(alpha, beta + t) / B(alpha, beta): share still active at period t.

        Parameters
        ----------
        t
            Non-negative whole periods (scalar or array).

        Returns
        -------
        numpy.ndarray
        """
        a, b = self._theta()
        t = _periods(t, minimum=0)
        return np.exp(betaln(a, b + t) - betaln(a, b))

    def churn_probability(self, t: Any) -> np.ndarray:
        """P(T = t): share of the cohort lost in period t >= 1 (FH 2007, eq. 5)."""
        a, b = self._theta()
        t = _periods(t, minimum=1)
        return np.exp(betaln(a + 1, b + t - 1) - betaln(a, b))

    def retention_rate(self, t: Any) -> np.ndarray:
        """r_t = S(t) / S(t-1) = (beta + t - 1) / (alpha + beta + t - 1) for t >= 1 (eq. 8)."""
        a, b = self._theta()
        t = _periods(t, minimum=1)
        return (b + t - 1) / (a + b + t - 1)

    def expected_lifetime(self) -> float:
        """Expected number of periods a new customer stays, ``sum_t S(t)``.

        ``(alpha + beta - 1) / (alpha - 1)`` periods of ``time_unit`` (counting
        the first); infinite when ``alpha <= 1`` (the beta mixing puts so much
        mass near theta = 0 that the mean lifetime diverges).
        """
        a, b = self._theta()
        return float((a + b - 1) / (a - 1)) if a > 1 else float("inf")

    def discounted_expected_residual_lifetime(
        self, discount_rate_per_period: float, renewals_so_far: Any = 0
    ) -> np.ndarray:
        """DERL: discounted expected number of future payments (Fader & Hardie 2010).

        For a customer who has renewed ``n - 1 = renewals_so_far`` times and
        is about to make her n-th renewal decision, payments being made at the
        start of each period:

        ``DERL = (beta + n - 1) / (alpha + beta + n - 1)
        * 2F1(1, beta + n; alpha + beta + n; 1 / (1 + d))``.

        Multiply by the margin per period for the residual value (RLV).

        Parameters
        ----------
        discount_rate_per_period
            ``d`` per period of ``time_unit`` (use
            :func:`~kam_analysis.ltv.per_period_discount_rate` to convert an
            annual rate); must be >= 0.
        renewals_so_far
            Non-negative whole number(s) of renewals already made.

        Returns
        -------
        numpy.ndarray
            DERL in periods, shape of ``renewals_so_far``.
        """
        a, b = self._theta()
        d = _discount(discount_rate_per_period)
        n = _periods(renewals_so_far, minimum=0) + 1.0
        return (b + n - 1) / (a + b + n - 1) * hyp2f1(1.0, b + n, a + b + n, 1.0 / (1.0 + d))

    def discounted_expected_lifetime(self, discount_rate_per_period: float) -> float:
        """DEL: discounted expected number of payments of a new customer, first one included.

        ``2F1(1, beta; alpha + beta; 1 / (1 + d))``, the DEL of Fader & Hardie (2010)
        per unit margin.
        """
        a, b = self._theta()
        d = _discount(discount_rate_per_period)
        return float(hyp2f1(1.0, b, a + b, 1.0 / (1.0 + d)))


def _periods(t: Any, minimum: int) -> np.ndarray:
    arr = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < minimum) or np.any(arr != np.round(arr)):
        raise ValueError(f"periods must be whole numbers >= {minimum}, got {t!r}")
    return arr


def _discount(d: float) -> float:
    d = float(d)
    if not np.isfinite(d) or d < 0:
        raise ValueError(f"discount_rate_per_period must be a finite number >= 0, got {d!r}")
    return d
