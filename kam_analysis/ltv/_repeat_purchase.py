"""Shared base of the repeat-purchase models (BG/NBD, Pareto/NBD): boundary estimates.

Real transaction data often put the maximum-likelihood estimate on the
boundary of the parameter space. On wholesale data almost nobody drops out,
so the BG/NBD ``a`` (the Pareto/NBD ``s``) runs to 0: the log-likelihood
approaches its supremum in the no-dropout limit, the Hessian there is
singular and Wald intervals do not exist. The point estimate still predicts
well (near ``a = 0`` the BG/NBD conditional expectation is the NBD one,
``(r + x) t / (alpha + T)``, whatever ``b``).

With ``boundary="bootstrap"`` such an estimate is kept and its intervals come
from a parametric bootstrap: simulate data sets of the same customers
(same observation lengths ``T``) from the fitted model, refit each, and take
quantiles of the refitted parameters. The refitted parameters
(``param_draws_``) also carry the parameter uncertainty into LTV intervals.
The bootstrap is seeded; each replicate is simulated in one vectorised step
over customers and refitted from the point estimate, except that the
boundary parameters start from the model's default start (along a flat
direction an optimiser started on the estimate would not move, and the
interval of a boundary parameter would collapse to a point); the number of
replicates shrinks with the data size and a wall-clock limit bounds the run.

References
----------
Efron, B. & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*,
ch. 6 (parametric bootstrap) and ch. 13 (percentile intervals).

Andrews, D. W. K. (2000). Inconsistency of the bootstrap when a parameter is
on the boundary of the parameter space. *Econometrica* 68(2), 399-405: the
bootstrap distribution of the boundary parameter itself is not reliable; the
intervals of smooth functions of the parameters that the LTV uses
(expected purchases, P(alive)) are, which the tests check by simulation.
"""

from __future__ import annotations

import time
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from ._base import (
    ConvergenceError,
    Likelihood,
    ParametricModel,
    check_time_unit,
    compress_rows,
    validate_rft,
)

__all__ = ["MIN_BOOTSTRAP", "RepeatPurchaseModel", "bootstrap_replicates"]

#: Fewest successful replicates for bootstrap intervals.
MIN_BOOTSTRAP = 20

#: Replicates x customers refitted at most (4,300 customers: 200 replicates;
#: 23,570: 169; 100,000 and more: ``MIN_BOOTSTRAP * 2``).
_BOOTSTRAP_ROW_BUDGET = 4_000_000

BoundaryMode = Literal["raise", "bootstrap"]


def bootstrap_replicates(n_customers: int, n_bootstrap: int = 200) -> int:
    """Number of bootstrap replicates for a data set of ``n_customers``.

    ``min(n_bootstrap, max(2 * MIN_BOOTSTRAP, 4,000,000 // n_customers))``:
    the work (replicates x customers) stays bounded on large books, where
    each replicate also varies less.

    Parameters
    ----------
    n_customers
        Customers in the fitted data.
    n_bootstrap
        Upper limit.

    Returns
    -------
    int
    """
    by_size = _BOOTSTRAP_ROW_BUDGET // max(int(n_customers), 1)
    return int(min(int(n_bootstrap), max(2 * MIN_BOOTSTRAP, by_size)))


class RepeatPurchaseModel(ParametricModel):
    """Base of :class:`~kam_analysis.ltv.BetaGeo` and :class:`~kam_analysis.ltv.ParetoNBD`.

    Owns the time unit, the settings for estimates on the boundary, the fit
    on (frequency, recency, T), the parametric bootstrap and the check that
    boundary predictions are finite. Subclasses implement :meth:`_likelihood`
    (their :class:`~kam_analysis.ltv._base.Likelihood`), ``_start`` (default
    starting values), :meth:`_simulate` (customer summaries from given
    parameters) and the prediction methods.

    Parameters
    ----------
    time_unit
        Unit of ``recency``, ``T`` and prediction horizons.
    confidence_level, max_iter
        See :class:`~kam_analysis.ltv._base.ParametricModel`.
    boundary
        ``"raise"`` (default): an estimate on the boundary raises
        :class:`ConvergenceError`. ``"bootstrap"``: keep it, predict from it,
        and compute intervals by parametric bootstrap.
    n_bootstrap
        Replicates at most (see :func:`bootstrap_replicates`).
    bootstrap_seed
        Seed of the bootstrap.
    max_bootstrap_seconds
        Wall-clock limit of the bootstrap.
    max_fit_seconds
        Wall-clock limit of the maximum-likelihood fit (None: no limit); a fit
        stopped by it raises :class:`ConvergenceError`.

    Attributes
    ----------
    at_boundary_ : bool
        The estimate lies on (or runs towards) the boundary.
    boundary_params_ : tuple of str
        Parameters that are on the boundary or not identified there.
    boundary_reason_ : str or None
        What was found (parameter at 0 or infinity, singular Hessian, ...).
    interval_method_ : str
        ``"wald"``, ``"parametric_bootstrap"`` or ``"none"`` (no interval).
    param_draws_ : numpy.ndarray or None
        Bootstrap estimates, shape (replicates, parameters), in the order of
        ``param_names``; None for a regular fit.
    bootstrap_ : dict
        ``requested``, ``replicates`` (successful), ``failed``, ``seconds``
        and ``truncated`` (the time limit stopped it); empty without bootstrap.
    """

    def __init__(
        self,
        *,
        time_unit: str = "week",
        confidence_level: float = 0.95,
        max_iter: int = 1000,
        boundary: BoundaryMode = "raise",
        n_bootstrap: int = 200,
        bootstrap_seed: int = 0,
        max_bootstrap_seconds: float = 120.0,
        max_fit_seconds: float | None = None,
    ) -> None:
        super().__init__(confidence_level=confidence_level, max_iter=max_iter)
        self.time_unit = check_time_unit(time_unit)
        if boundary not in ("raise", "bootstrap"):
            raise ValueError(f"boundary must be 'raise' or 'bootstrap', got {boundary!r}")
        if int(n_bootstrap) < MIN_BOOTSTRAP:
            raise ValueError(f"n_bootstrap must be >= {MIN_BOOTSTRAP}, got {n_bootstrap!r}")
        if not max_bootstrap_seconds > 0:
            raise ValueError(f"max_bootstrap_seconds must be > 0, got {max_bootstrap_seconds!r}")
        self.boundary = boundary
        self.n_bootstrap = int(n_bootstrap)
        self.bootstrap_seed = int(bootstrap_seed)
        self.max_bootstrap_seconds = float(max_bootstrap_seconds)
        if max_fit_seconds is not None and not max_fit_seconds > 0:
            raise ValueError(f"max_fit_seconds must be > 0, got {max_fit_seconds!r}")
        self.max_fit_seconds = None if max_fit_seconds is None else float(max_fit_seconds)
        self.bootstrap_: dict[str, Any] = {}

    settings_fields = {
        **ParametricModel.settings_fields,
        "time_unit": "time_unit",
        "boundary": "boundary",
        "n_bootstrap": "n_bootstrap",
        "max_bootstrap_seconds": "max_bootstrap_seconds",
    }

    # ------------------------------------------------------------------ fitting
    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> Self:
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency, recency, T
            One value per customer (array-like or Series), times in
            ``time_unit``: the number of repeat purchases, the time from the
            first to the last purchase, and from the first purchase to the end
            of observation.
        weights
            Optional number of customers sharing each (frequency, recency, T)
            row. Identical rows are also compressed automatically.

        Returns
        -------
        RepeatPurchaseModel
            ``self``, fitted.

        Raises
        ------
        ValueError
            Invalid input (negative values, recency > T, non-integer
            frequency, recency != 0 with frequency 0, ...).
        ConvergenceError
            The fit did not converge, nobody made a repeat purchase, or the
            estimate is degenerate (with ``boundary="bootstrap"``: only when
            its predictions are not finite).
        """
        x, tx, big_t = validate_rft(frequency, recency, T)
        (x, tx, big_t), w = self._prepare_rows([x, tx, big_t], weights)
        self._require_repeat_buyers(x)
        log_theta, ll, hess = self._estimate(self._likelihood(x, tx, big_t, w))
        self._finish_fit(x, tx, big_t, w, log_theta, ll, hess)
        return self

    def _fit_options(self) -> dict[str, Any]:
        return {"allow_boundary": self.boundary == "bootstrap", "max_seconds": self.max_fit_seconds}

    def _require_repeat_buyers(self, x: np.ndarray) -> None:
        if not np.any(x > 0):
            raise ConvergenceError(
                f"{self.model_name}: no customer has a repeat purchase (all frequency == 0); the "
                "purchase and dropout processes are not identified"
            )

    def _fit_log_theta(
        self,
        x: np.ndarray,
        tx: np.ndarray,
        big_t: np.ndarray,
        w: np.ndarray,
        x0: np.ndarray | None,
        *,
        allow_boundary: bool,
        max_iter: int,
        max_seconds: float | None = None,
    ) -> np.ndarray:
        """Maximum-likelihood log-parameters on validated data (``x0`` None: default start)."""
        (x, tx, big_t), w = compress_rows([x, tx, big_t], w)
        self._require_repeat_buyers(x)
        return self._maximise(
            self._likelihood(x, tx, big_t, w),
            x0,
            allow_boundary=allow_boundary,
            max_iter=max_iter,
            max_seconds=max_seconds,
        )[0]

    def _start_values(self, x: np.ndarray, tx: np.ndarray, big_t: np.ndarray) -> np.ndarray:
        """The optimiser's default starting log-parameters for these (unweighted) data."""
        return self._start(self._likelihood(x, tx, big_t, np.ones(x.size)))

    # ------------------------------------------------------------------ subclass hooks
    def _likelihood(
        self, x: np.ndarray, tx: np.ndarray, big_t: np.ndarray, w: np.ndarray
    ) -> Likelihood:  # pragma: no cover - abstract
        """The model's likelihood on validated, weighted (frequency, recency, T) rows."""
        raise NotImplementedError

    def _simulate(
        self, theta: np.ndarray, big_t: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        """Simulated ``(frequency, recency)`` for customers observed for ``big_t``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ boundary handling
    def _finish_fit(
        self,
        x: np.ndarray,
        tx: np.ndarray,
        big_t: np.ndarray,
        w: np.ndarray,
        log_theta: np.ndarray,
        log_likelihood: float,
        hessian_log: np.ndarray,
    ) -> None:
        """Store the fit; at a boundary (when allowed) check predictions and bootstrap."""
        self.bootstrap_ = {}
        allow = self.boundary == "bootstrap"
        self._store_fit(
            log_theta, log_likelihood, float(w.sum()), hessian_log, allow_boundary=allow
        )
        if not self.at_boundary_:
            return
        self._check_finite_predictions(x, tx, big_t)
        self._parametric_bootstrap(_expand(big_t, w), log_theta)

    def _check_finite_predictions(self, x: np.ndarray, tx: np.ndarray, big_t: np.ndarray) -> None:
        """A boundary estimate is only usable if it predicts finite, non-negative values."""
        with np.errstate(all="ignore"):
            p = np.asarray(self.conditional_probability_alive(x, tx, big_t), dtype=float)
            e = np.asarray(
                self.conditional_expected_number_of_purchases_up_to_time(
                    float(big_t.max()) + 1.0, x, tx, big_t
                ),
                dtype=float,
            )
        ok = np.all(np.isfinite(p)) and np.all(np.isfinite(e)) and np.all(e >= -1e-9)
        if not ok:
            raise ConvergenceError(
                f"{self.model_name}: {self.boundary_reason_}; the predictions at this boundary "
                "estimate are not finite, so the model cannot be used"
            )

    def _parametric_bootstrap(self, big_t: np.ndarray, log_theta: np.ndarray) -> None:
        """Percentile intervals and parameter draws from refits on simulated data."""
        n_rep = bootstrap_replicates(big_t.size, self.n_bootstrap)
        rng = np.random.default_rng(self.bootstrap_seed)
        theta = np.exp(log_theta)
        draws: list[np.ndarray] = []
        failed = 0
        truncated = False
        start = time.perf_counter()
        ones = np.ones(big_t.size)
        # refits start at the estimate, except along the boundary parameters: there the
        # likelihood is flat and an optimiser started on the estimate would not move
        weak = np.isin(np.array(self.param_names), list(self.boundary_params_))
        for _ in range(n_rep):
            if time.perf_counter() - start > self.max_bootstrap_seconds:
                truncated = True
                break
            x, tx = self._simulate(theta, big_t, rng)
            if not np.any(x > 0):
                failed += 1
                continue
            left = self.max_bootstrap_seconds - (time.perf_counter() - start)
            x0 = np.where(weak, self._start_values(x, tx, big_t), log_theta)
            try:
                draws.append(
                    self._fit_log_theta(
                        x, tx, big_t, ones, x0, allow_boundary=True,
                        max_iter=min(self.max_iter, 300), max_seconds=max(left, 1.0),
                    )
                )  # fmt: skip
            except (ConvergenceError, ValueError, FloatingPointError):
                failed += 1
        self.bootstrap_ = {
            "requested": n_rep,
            "replicates": len(draws),
            "failed": failed,
            "seconds": round(time.perf_counter() - start, 3),
            "truncated": truncated,
        }
        if len(draws) < MIN_BOOTSTRAP:
            return  # interval_method_ stays "none": no interval without enough replicates
        boot = np.exp(np.vstack(draws))
        tail = (1.0 - self.confidence_level) / 2.0
        lower, upper = np.quantile(boot, [tail, 1.0 - tail], axis=0)
        self.param_draws_ = boot
        self.interval_method_ = "parametric_bootstrap"
        self.standard_errors_ = dict(
            zip(self.param_names, boot.std(axis=0, ddof=1).tolist(), strict=True)
        )
        self.confidence_intervals_ = pd.DataFrame(
            {"lower": lower, "upper": upper}, index=pd.Index(self.param_names, name="param")
        )

    def parameter_draws(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """Parameter vectors expressing the estimation uncertainty, shape (draws, parameters).

        Regular fit: draws from the asymptotic normal of ``log(theta)``.
        Boundary fit: bootstrap estimates resampled with replacement; without
        enough replicates (or for ``from_params`` models) the point estimate
        repeated.
        """
        self._check_fitted()
        names = list(self.param_names)
        theta = np.array([self.params_[p] for p in names])
        if getattr(self, "param_draws_", None) is not None:
            boot = self.param_draws_
            return boot[rng.integers(0, boot.shape[0], size=int(draws))]
        var = getattr(self, "variance_matrix_", None)
        if var is None:
            return np.tile(theta, (int(draws), 1))
        cov = var.loc[names, names].to_numpy() / np.outer(theta, theta)
        return np.exp(rng.multivariate_normal(np.log(theta), cov, size=int(draws)))

    def _repr_html_(self) -> str:
        html = super()._repr_html_()
        if getattr(self, "at_boundary_", False):
            html += (
                f"<p>Estimate on the boundary ({', '.join(self.boundary_params_)}); "
                f"intervals: {self.interval_method_}</p>"
            )
        return html


def _expand(big_t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """One observation length per customer from (possibly compressed) weighted rows."""
    if np.allclose(w, np.round(w)):
        return np.repeat(big_t, np.round(w).astype(np.int64))
    rng = np.random.default_rng(0)
    size = max(int(round(float(w.sum()))), 1)
    return big_t[rng.choice(big_t.size, size=size, replace=True, p=w / w.sum())]
