"""Shared plumbing for the probabilistic customer-base models.

Everything here is model-agnostic: time units and discounting, input
validation for customer-by-sufficient-statistic (CBS) data, compression of
duplicate rows into weights, the L-BFGS-B optimiser on the log scale with its
convergence checks and subsample warm start, the numerical Hessian, and the
:class:`ParametricModel` base: construction from settings, the fit
(:meth:`ParametricModel._prepare_rows`, :meth:`ParametricModel._estimate`),
stored estimates and the ``summary()`` table.

A model file holds its likelihood and its predictions: a :class:`Likelihood`
(the data arranged for fast evaluations, the mean negative log-likelihood
and its gradient), the default start ``_start`` and the prediction methods.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import optimize, stats

from kam_analysis.core.errors import KamError

TimeUnit = Literal["week", "month", "quarter", "year"]

#: Mean length of the Gregorian year in days.
DAYS_PER_YEAR = 365.2425

#: Periods per year for each supported time unit. A week is 7 days of a
#: 365.2425-day year (52.1775 weeks); months and quarters are calendar
#: fractions of the year (never "30 days").
PERIODS_PER_YEAR: dict[str, float] = {
    "week": DAYS_PER_YEAR / 7.0,
    "month": 12.0,
    "quarter": 4.0,
    "year": 1.0,
}

#: Parameters are optimised as log(theta) inside [-LOG_BOUND, LOG_BOUND];
#: an optimum on that box is a degenerate boundary solution.
LOG_BOUND = 18.0

#: A standard error of log(theta) above this (a 95 % interval spanning a factor
#: of e^40) means the likelihood is flat: the parameter is not identified.
MAX_SE_LOG = 10.0


class ConvergenceError(KamError, RuntimeError):
    """The maximum-likelihood fit failed or landed on a degenerate boundary.

    Raised instead of returning parameters that do not describe the data: the
    optimiser stopped without meeting its tolerance, the log-likelihood was not
    finite, a parameter ran off to 0 or infinity (e.g. a dropout process that
    is not identified because nobody ever churns), or the Hessian at the
    optimum is not positive definite (a flat likelihood).
    """


class NotFittedError(KamError, RuntimeError):
    """A prediction method was called before ``fit``."""


class LTVModelSettings(BaseModel):
    """Settings shared by the customer-base models (a section of ``kam.toml``).

    Attributes
    ----------
    time_unit
        Unit of ``recency``, ``T`` and prediction horizons ``t`` for the
        transaction models (BG/NBD, Pareto/NBD), and of one contract period
        for the shifted-beta-geometric model.
    confidence_level
        Coverage of the Wald confidence intervals in ``summary()``.
    max_iter
        Maximum number of L-BFGS-B iterations.
    correlation_threshold
        Gamma-Gamma: absolute Pearson correlation between frequency and
        average spend above which an :class:`IndependenceWarning` is issued.
    boundary
        BG/NBD and Pareto/NBD: what to do when the estimate lies on the
        boundary of the parameter space (e.g. BG/NBD ``a -> 0`` when almost
        nobody drops out): ``"raise"`` a :class:`ConvergenceError`, or keep
        the point estimate and compute intervals by parametric
        ``"bootstrap"``.
    n_bootstrap
        Bootstrap replicates at most (fewer on large data, see
        :func:`~kam_analysis.ltv._repeat_purchase.bootstrap_replicates`).
    max_bootstrap_seconds
        Wall-clock limit of the bootstrap; replicates finished by then are used.
    """

    model_config = ConfigDict(extra="forbid")

    time_unit: TimeUnit = Field("week", description="unit of recency, T and horizons")
    confidence_level: float = Field(0.95, gt=0, lt=1, description="CI coverage")
    max_iter: int = Field(1000, ge=10, description="maximum optimiser iterations")
    correlation_threshold: float = Field(
        0.3, ge=0, le=1, description="Gamma-Gamma |corr(frequency, spend)| warning threshold"
    )
    boundary: Literal["raise", "bootstrap"] = Field(
        "raise", description="estimate on the parameter boundary: raise, or bootstrap intervals"
    )
    n_bootstrap: int = Field(200, ge=20, le=5000, description="bootstrap replicates at most")
    max_bootstrap_seconds: float = Field(
        120.0, gt=0, description="wall-clock limit of the bootstrap"
    )


def check_time_unit(time_unit: str) -> str:
    """Return ``time_unit`` if supported, else raise a ``ValueError`` listing the options."""
    if time_unit not in PERIODS_PER_YEAR:
        raise ValueError(f"time_unit must be one of {sorted(PERIODS_PER_YEAR)}, got {time_unit!r}")
    return time_unit


def per_period_discount_rate(annual_rate: float, time_unit: str) -> float:
    """Convert an annual discount rate into the equivalent rate per period.

    ``(1 + annual_rate) ** (1 / periods_per_year) - 1`` with 52.1775 weeks
    (7 days of a 365.2425-day year), 12 months, 4 quarters or 1 year per year.

    Parameters
    ----------
    annual_rate
        Effective annual discount rate, e.g. ``0.10`` for 10 % (must be > -1).
    time_unit
        ``"week"``, ``"month"``, ``"quarter"`` or ``"year"``.

    Returns
    -------
    float
        The per-period rate that compounds to ``annual_rate`` over a year.

    Raises
    ------
    ValueError
        If ``annual_rate <= -1`` or is not finite, or ``time_unit`` is unknown.
    """
    check_time_unit(time_unit)
    rate = float(annual_rate)
    if not math.isfinite(rate) or rate <= -1.0:
        raise ValueError(f"annual_rate must be a finite number > -1, got {annual_rate!r}")
    return math.expm1(math.log1p(rate) / PERIODS_PER_YEAR[time_unit])


# --------------------------------------------------------------------------- input checks


def _labels(values: Any) -> pd.Index | None:
    return values.index if isinstance(values, pd.Series | pd.DataFrame) else None


def _examples(mask: np.ndarray, labels: pd.Index | None, **columns: np.ndarray) -> str:
    """Describe up to three offending rows, e.g. ``row 3: recency=40.0, T=38.0``."""
    idx = np.flatnonzero(mask)[:3]
    parts = []
    for i in idx:
        label = None if labels is None else labels[i]
        label = label.item() if hasattr(label, "item") else label
        where = f"row {i}" if labels is None else f"index {label!r}"
        vals = ", ".join(f"{name}={col[i]:g}" for name, col in columns.items())
        parts.append(f"{where}: {vals}")
    more = "" if mask.sum() <= 3 else f" (and {int(mask.sum()) - 3} more)"
    return "; ".join(parts) + more


def as_float_array(values: Any, name: str) -> np.ndarray:
    """Convert a 1-d array-like to float64, rejecting non-numeric, empty and non-finite input."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: at least one customer is needed")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} missing or infinite value(s) "
            f"({_examples(bad, _labels(values), **{name: arr})})"
        )
    return arr


def validate_rft(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate customer-by-sufficient-statistic data (frequency, recency, T).

    Rules: same length; finite; ``frequency`` a non-negative integer (number of
    repeat purchases); ``0 <= recency <= T``; ``recency == 0`` when
    ``frequency == 0``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(frequency, recency, T)`` as float64 arrays.

    Raises
    ------
    ValueError
        Naming the column, the rule and up to three offending rows.
    """
    labels = _labels(frequency)
    x = as_float_array(frequency, "frequency")
    tx = as_float_array(recency, "recency")
    big_t = as_float_array(T, "T")
    if not (x.size == tx.size == big_t.size):
        raise ValueError(
            "frequency, recency and T must have the same length, got "
            f"{x.size}, {tx.size} and {big_t.size}"
        )
    checks = [
        (x < 0, "frequency must be >= 0 (number of repeat purchases)", {"frequency": x}),
        (
            x != np.round(x),
            "frequency must be a whole number of repeat purchases",
            {"frequency": x},
        ),
        (tx < 0, "recency must be >= 0", {"recency": tx}),
        (big_t < 0, "T must be >= 0", {"T": big_t}),
        (
            tx > big_t,
            "recency must be <= T (the last purchase cannot come after the end of observation)",
            {"recency": tx, "T": big_t},
        ),
        (
            (x == 0) & (tx != 0),
            "recency must be 0 for customers with frequency 0 (no repeat purchase)",
            {"frequency": x, "recency": tx},
        ),
    ]
    for mask, rule, cols in checks:
        if mask.any():
            raise ValueError(
                f"{rule}: {int(mask.sum())} violation(s) ({_examples(mask, labels, **cols)})"
            )
    return x, tx, big_t


def validate_weights(weights: Any, n: int) -> np.ndarray:
    """Return positive finite weights of length ``n`` (ones when ``weights`` is None)."""
    if weights is None:
        return np.ones(n)
    w = as_float_array(weights, "weights")
    if w.size != n:
        raise ValueError(f"weights must have one entry per customer ({n}), got {w.size}")
    if (w < 0).any():
        raise ValueError(f"weights must be >= 0 ({_examples(w < 0, _labels(weights), weights=w)})")
    if w.sum() <= 0:
        raise ValueError("weights sum to zero: nothing to fit")
    return w


def compress_rows(
    columns: Sequence[np.ndarray], weights: np.ndarray, *, probe: int = 20_000, seed: int = 0
) -> tuple[list[np.ndarray], np.ndarray]:
    """Collapse identical rows into unique rows with summed weights.

    A fit on the unique rows with weights is exactly the fit on all rows. The
    compression is only done when a probe of ``probe`` rows suggests at least
    a 2x reduction (continuous data never repeat, and sorting them would cost
    more than it saves).

    Parameters
    ----------
    columns
        Equal-length float arrays (e.g. frequency, recency, T).
    weights
        Row weights (customer counts).
    probe, seed
        Size of the random probe and the seed of its generator.

    Returns
    -------
    (list of numpy.ndarray, numpy.ndarray)
        The (possibly) compressed columns and their weights.
    """
    n = columns[0].size
    if n < 2:
        return list(columns), weights
    if n > probe:
        rng = np.random.default_rng(seed)
        idx = rng.choice(n, size=probe, replace=False)
        if _group_rows([c[idx] for c in columns])[2] > probe // 2:
            return list(columns), weights
    order, group, n_unique = _group_rows(list(columns))
    if n_unique == n:
        return list(columns), weights
    first = np.ones(n, dtype=bool)
    first[1:] = group[1:] != group[:-1]
    uniq = [np.ascontiguousarray(c[order][first]) for c in columns]
    return uniq, np.bincount(group, weights=weights[order], minlength=n_unique)


def _group_rows(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Lexicographic order of the rows, the group number of each sorted row, and the count."""
    order = np.lexsort(columns[::-1])
    new = np.zeros(order.size, dtype=bool)
    new[0] = True
    for c in columns:
        cs = c[order]
        new[1:] |= cs[1:] != cs[:-1]
    group = np.cumsum(new) - 1
    return order, group, int(group[-1]) + 1


def check_horizon(t: Any) -> np.ndarray:
    """Prediction horizon(s) ``t`` as a float array; finite and >= 0, else ``ValueError``."""
    arr = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"t (horizon) must be finite and >= 0, got {t!r}")
    return arr


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Inner product without BLAS (BLAS threads stall on a busy machine for 1-d dots)."""
    return float(np.einsum("i,i->", u, v))


def _wsum(w: np.ndarray | None, v: np.ndarray) -> float:
    """Weighted sum; ``w is None`` means unit weights."""
    return float(v.sum()) if w is None else _dot(w, v)


def _like(values: np.ndarray, template: Any, name: str) -> Any:
    """Return a Series aligned with ``template`` if it is a Series, a float for a
    scalar customer, else the array."""
    if isinstance(template, pd.Series) and values.shape == (len(template),):
        return pd.Series(values, index=template.index, name=name)
    if np.ndim(template) == 0 and values.shape == (1,):
        return float(values[0])
    return values


def _unique_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of an integer-valued float array and the inverse index (O(n))."""
    top = float(x.max()) if x.size else 0.0
    if top > 10 * x.size + 1_000:
        uniq, inv = np.unique(x, return_inverse=True)
        return uniq, inv.ravel()
    xi = x.astype(np.intp)
    present = np.bincount(xi) > 0
    uniq = np.flatnonzero(present)
    lookup = np.cumsum(present) - 1
    return uniq.astype(float), lookup[xi]


# --------------------------------------------------------------------------- optimisation


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread while optimising.

    The optimisers make thousands of tiny BLAS/LAPACK calls (4-vectors, 4x4
    matrices); on a busy machine, multi-threaded OpenBLAS turns each into a
    thread wake-up costing milliseconds (measured: a CDNOW fit 5 ms -> 200 ms
    with other jobs running).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def numerical_gradient(
    fun: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Central-difference gradient of a scalar function."""
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g


def numerical_hessian(
    fun: Callable[[np.ndarray], float] | None,
    x: np.ndarray,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
    h: float = 1e-4,
    grad_at_x: np.ndarray | None = None,
) -> np.ndarray:
    """Symmetric finite-difference Hessian: of ``grad`` if given, else of ``fun``.

    With ``grad`` and its value ``grad_at_x`` at ``x``, forward differences
    (k gradient calls, step 1e-6) replace central ones (2k calls).
    """
    k = x.size
    hess = np.empty((k, k))
    if grad is not None:
        for j in range(k):
            e = np.zeros(k)
            if grad_at_x is not None:
                e[j] = 1e-6
                hess[:, j] = (grad(x + e) - grad_at_x) / 1e-6
            else:
                e[j] = h
                hess[:, j] = (grad(x + e) - grad(x - e)) / (2 * h)
        return (hess + hess.T) / 2
    assert fun is not None
    h = max(h, 1e-3)
    f0 = fun(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h
        hess[i, i] = (fun(x + ei) - 2 * f0 + fun(x - ei)) / h**2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h
            val = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (
                4 * h**2
            )
            hess[i, j] = hess[j, i] = val
    return hess


def minimize_log_scale(
    objective: Objective,
    x0: np.ndarray,
    *,
    names: Sequence[str],
    model: str,
    max_iter: int = 1000,
    ftol: float = 1e-15,
    gtol: float = 1e-9,
    accept_gtol: float = 1e-5,
    allow_boundary: bool = False,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Minimise a per-customer mean negative log-likelihood over log-parameters.

    Parameters
    ----------
    objective
        Function of the log-parameters returning ``(value, gradient)``; the
        value should be scaled to O(1) (mean over customers).
    x0
        Starting log-parameters.
    names, model
        Parameter and model names, for error messages.
    max_iter, ftol, gtol
        L-BFGS-B options.
    accept_gtol
        A run that stopped for another reason (e.g. line-search failure at
        machine precision) is accepted when the largest gradient entry is
        below this (gradient entries pushing a parameter that sits on the box
        further out do not count).
    allow_boundary
        Return an optimum on the box ``|log theta| = LOG_BOUND`` (a parameter
        run off to 0 or infinity) instead of raising; the caller then treats
        the estimate as a boundary solution (see ``ParametricModel._store_fit``).
    max_seconds
        Stop after this much wall-clock time (checked after each iteration);
        a run stopped before converging raises :class:`ConvergenceError`.

    Returns
    -------
    numpy.ndarray
        The optimal log-parameters.

    Raises
    ------
    ConvergenceError
        Non-finite objective, no convergence, or (unless ``allow_boundary``)
        an optimum on the boundary.
    """
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(x0)

    def safe(z: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            val, g = objective(z)
        if not np.isfinite(val) or not np.all(np.isfinite(g)):
            return 1e100, np.zeros_like(z)
        return float(val), g

    start_val, _ = safe(np.asarray(x0, dtype=float))
    if start_val >= 1e100:
        raise ConvergenceError(
            f"{model}: the log-likelihood is not finite at the starting values "
            f"{dict(zip(names, np.exp(x0).round(6), strict=True))}; check the input data"
        )
    deadline = None if max_seconds is None else time.perf_counter() + float(max_seconds)
    timed_out = [False]

    def stop_at_deadline(intermediate_result: Any) -> None:
        if deadline is not None and time.perf_counter() > deadline:
            timed_out[0] = True
            raise StopIteration

    with single_threaded_blas():
        res = optimize.minimize(
            safe,
            np.asarray(x0, dtype=float),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "ftol": ftol, "gtol": gtol, "maxcor": 20},
            callback=stop_at_deadline if deadline is not None else None,
        )
    val, g = safe(res.x)
    if val >= 1e100:
        raise ConvergenceError(f"{model}: the log-likelihood is not finite at the optimum")
    on_edge = np.abs(res.x) >= LOG_BOUND - 1e-3
    if on_edge.any() and not allow_boundary:
        which = ", ".join(
            f"{n}={'0' if v < 0 else 'inf'}"
            for n, v in zip(names, res.x, strict=True)
            if abs(v) >= LOG_BOUND - 1e-3
        )
        raise ConvergenceError(
            f"{model}: the maximum-likelihood estimate is degenerate ({which}); the data do "
            "not identify the model (e.g. no repeat purchases, or no churn at all)"
        )
    # a gradient pushing a parameter on the box further out is not a failure to converge
    outward = np.zeros_like(on_edge)
    if allow_boundary:
        outward = on_edge & (np.sign(res.x) == -np.sign(g))
    g_free = np.where(outward, 0.0, g)
    if not res.success and np.max(np.abs(g_free)) > accept_gtol:
        why = f"its time limit of {max_seconds:g} s" if timed_out[0] else res.message
        raise ConvergenceError(
            f"{model}: the optimiser did not converge after {res.nit} iterations "
            f"({why}); largest gradient {np.max(np.abs(g_free)):.2e}"
        )
    return res.x


def newton_refine(
    objective: Objective,
    x0: np.ndarray,
    hessian: np.ndarray,
    *,
    max_iter: int = 30,
    gtol: float = 1e-10,
    xtol: float = 1e-9,
) -> tuple[np.ndarray, float, np.ndarray] | None:
    """Polish a close starting point with Newton steps on a fixed approximate Hessian.

    Used after a fit on a random subsample: the subsample's Hessian (of the
    mean negative log-likelihood) approximates the full-data one to
    O(1/sqrt(subsample size)), so each step gains about two digits and a few
    full-data gradient evaluations replace a full L-BFGS-B run.

    Returns
    -------
    (x, value, gradient) or None
        None when the Hessian is not positive definite or the iteration does
        not converge; the caller then falls back to L-BFGS-B.
    """
    try:
        chol = np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return None
    x = np.asarray(x0, dtype=float)
    with np.errstate(all="ignore"):
        f, g = objective(x)
    for _ in range(max_iter):
        if not (np.isfinite(f) and np.all(np.isfinite(g))):
            return None
        if np.max(np.abs(g)) < gtol:
            return x, f, g
        step = -np.linalg.solve(chol.T, np.linalg.solve(chol, g))
        t = 1.0
        while True:
            with np.errstate(all="ignore"):
                f_new, g_new = objective(x + t * step)
            # slack: the mean of many terms is only accurate to ~1e-13 relative
            if np.isfinite(f_new) and f_new <= f + 1e-4 * t * float(g @ step) + 1e-12 * abs(f):
                break
            t /= 2
            if t < 1e-3:
                return None
        x, f, g = x + t * step, f_new, g_new
        if np.max(np.abs(t * step)) < xtol:
            return x, f, g
    return None


def fit_with_warm_start(
    objective: Objective,
    x0: np.ndarray,
    *,
    sub_objective: Objective | None,
    names: Sequence[str],
    model: str,
    max_iter: int,
    allow_boundary: bool = False,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Optimise ``objective``; with ``sub_objective`` (same model on a random
    subsample) fit that first with L-BFGS-B and polish on the full data with
    :func:`newton_refine`, falling back to L-BFGS-B on the full data.
    ``allow_boundary`` and ``max_seconds`` (for each L-BFGS-B run) are passed
    to :func:`minimize_log_scale`.

    Returns
    -------
    (log_theta, gradient or None)
        The optimum and, when known, the objective's gradient there.
    """
    with single_threaded_blas():
        if sub_objective is not None:
            try:
                start = minimize_log_scale(
                    sub_objective, x0, names=names, model=model, max_iter=max_iter,
                    ftol=1e-12, gtol=1e-8, accept_gtol=1e-4, allow_boundary=allow_boundary,
                    max_seconds=max_seconds,
                )  # fmt: skip
                hess = numerical_hessian(None, start, grad=lambda z: sub_objective(z)[1])
                polished = newton_refine(objective, start, hess)
            except ConvergenceError:
                polished, start = None, x0
            if polished is not None and np.all(np.abs(polished[0]) < LOG_BOUND - 1e-3):
                return polished[0], polished[2]
            x0 = start
        return minimize_log_scale(
            objective, x0, names=names, model=model, max_iter=max_iter,
            allow_boundary=allow_boundary, max_seconds=max_seconds,
        ), None  # fmt: skip


class Likelihood:
    """A model's data arranged for its likelihood: what the shared fit needs.

    One subclass per model lives next to its likelihood. It sets
    :attr:`total` and :attr:`n_rows` and implements :meth:`objective` and
    :meth:`log_likelihood`; a model fitted on a random subsample first (a warm
    start, see :func:`fit_with_warm_start`) also sets
    :attr:`warm_start_rows` and implements :meth:`subsample`. The Hessian
    defaults to finite differences of the analytic gradient.
    """

    total: float = 0.0
    """Customers (sum of the weights): the scale of the mean objective, and ``n_obs_``."""
    n_rows: int = 0
    """Rows of the data (after compression)."""
    warm_start_rows: int | None = None
    """With more than twice this many rows, fit a subsample of this many first (None: never)."""

    def objective(self, log_theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood and its gradient in the log-parameters."""
        raise NotImplementedError

    def log_likelihood(self, log_theta: np.ndarray) -> float:
        """Total log-likelihood at the log-parameters."""
        raise NotImplementedError

    def subsample(self, size: int) -> Likelihood:
        """The same model on a random subsample of ``size`` rows (seeded)."""
        raise NotImplementedError

    def hessian(self, log_theta: np.ndarray, gradient: np.ndarray | None = None) -> np.ndarray:
        """Hessian of the total negative log-likelihood in the log-parameters.

        Forward differences of the gradient when ``gradient`` (of the mean
        objective at ``log_theta``) is known, else central ones.
        """
        total = self.total
        return numerical_hessian(
            None,
            log_theta,
            grad=lambda z: self.objective(z)[1] * total,
            grad_at_x=None if gradient is None else gradient * total,
        )


def boundary_diagnosis(
    log_params: np.ndarray, hessian_log: np.ndarray, names: Sequence[str]
) -> tuple[str | None, tuple[str, ...]]:
    """Is a maximum-likelihood estimate regular, or on the boundary of the parameter space?

    Three symptoms, checked in this order: a parameter on the optimiser's box
    (``|log theta| >= LOG_BOUND``: run off to 0 or infinity), a Hessian of the
    negative log-likelihood that is not positive definite (flat or curving
    the wrong way in some direction), and a standard error of a log-parameter
    above ``MAX_SE_LOG`` (the likelihood is nearly flat).

    Parameters
    ----------
    log_params
        The estimate on the log scale.
    hessian_log
        Hessian of the total negative log-likelihood in the log-parameters.
    names
        Parameter names.

    Returns
    -------
    (str or None, tuple of str)
        A sentence describing the problem (None for a regular estimate) and
        the parameters involved: those on the box, with a large standard
        error, or loading on a flat direction of the Hessian.
    """
    names = list(names)
    on_edge = np.abs(log_params) >= LOG_BOUND - 1e-3
    try:
        eig, vec = np.linalg.eigh(hessian_log)
    except np.linalg.LinAlgError:
        eig, vec = np.array([np.nan]), np.zeros((len(names), 1))
    weak = set(np.flatnonzero(on_edge).tolist())
    if on_edge.any():
        which = ", ".join(
            f"{n}={'0' if v < 0 else 'inf'}"
            for n, v, e in zip(names, log_params, on_edge, strict=True)
            if e
        )
        problem = (
            f"the maximum-likelihood estimate is on the boundary of the parameter space ({which})"
        )
    elif not np.all(np.isfinite(eig)) or eig.min() <= 0:
        problem = (
            f"the Hessian at the optimum is not positive definite (eigenvalues "
            f"{np.round(eig, 6).tolist()}); the likelihood is flat in some direction and the "
            "estimates are not identified"
        )
    else:
        se_log = np.sqrt(np.diag(np.linalg.inv(hessian_log)))
        flat = se_log > MAX_SE_LOG
        if not flat.any():
            return None, ()
        weak |= set(np.flatnonzero(flat).tolist())
        which = ", ".join(
            f"log({n}) has standard error {v:.3g}"
            for n, v, f in zip(names, se_log, flat, strict=True)
            if f
        )
        problem = (
            f"the estimate is not identified ({which}); the likelihood keeps rising towards "
            "a degenerate boundary (e.g. no variation in the data)"
        )
    if np.all(np.isfinite(eig)):
        scale = max(float(np.abs(eig).max()), 1e-300)
        for j in np.flatnonzero(eig <= 1e-6 * scale):
            weak |= set(np.flatnonzero(np.abs(vec[:, j]) >= 0.3).tolist())
    return problem, tuple(names[i] for i in sorted(weak))


class ParametricModel:
    """Base class: construction from settings, the fit, stored estimates, ``summary()``.

    Subclasses set :attr:`param_names`, :attr:`model_name` and
    :attr:`settings_fields`, implement :meth:`_start`, and fit with
    :meth:`_prepare_rows` (weights checked, rows merged), a
    :class:`Likelihood` of their own and :meth:`_fit_likelihood` (optimum,
    log-likelihood and Hessian by :meth:`_estimate`, stored by :meth:`_store_fit`).
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    model_name: ClassVar[str] = "model"
    settings_fields: ClassVar[dict[str, str]] = {
        "confidence_level": "confidence_level",
        "max_iter": "max_iter",
    }
    """Constructor keyword -> field of :class:`LTVModelSettings` it is built from."""

    def __init__(self, *, confidence_level: float = 0.95, max_iter: int = 1000) -> None:
        if not 0 < confidence_level < 1:
            raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
        if int(max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter!r}")
        self.confidence_level = float(confidence_level)
        self.max_iter = int(max_iter)

    @classmethod
    def from_settings(cls, settings: LTVModelSettings, **overrides: Any) -> Self:
        """Build an unfitted model from :class:`LTVModelSettings`.

        Parameters
        ----------
        settings
            The fields named in :attr:`settings_fields` are used.
        **overrides
            Constructor keywords that replace (or add to) those values, e.g.
            ``bootstrap_seed``.

        Returns
        -------
        ParametricModel
            An instance of the class it is called on.
        """
        kwargs = {arg: getattr(settings, name) for arg, name in cls.settings_fields.items()}
        return cls(**{**kwargs, **overrides})

    # ------------------------------------------------------------------ fitting
    def _start(self, data: Any) -> np.ndarray:  # pragma: no cover - abstract
        """The optimiser's default starting log-parameters for ``data`` (a :class:`Likelihood`)."""
        raise NotImplementedError

    def _fit_options(self) -> dict[str, Any]:
        """``allow_boundary`` and ``max_seconds`` of the maximum-likelihood fit."""
        return {"allow_boundary": False, "max_seconds": None}

    @staticmethod
    def _prepare_rows(
        columns: Sequence[np.ndarray], weights: Any
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Check the weights, drop rows of weight 0 and merge identical rows.

        Parameters
        ----------
        columns
            Validated, equal-length float arrays (one value per customer).
        weights
            None (one customer per row) or one non-negative weight per row.

        Returns
        -------
        (list of numpy.ndarray, numpy.ndarray)
            The columns and their weights (see :func:`compress_rows`).
        """
        w = validate_weights(weights, columns[0].size)
        keep = w > 0
        return compress_rows([c[keep] for c in columns], w[keep])

    def _maximise(
        self,
        data: Likelihood,
        x0: np.ndarray | None = None,
        *,
        allow_boundary: bool = False,
        max_iter: int | None = None,
        max_seconds: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Maximum-likelihood log-parameters (and the gradient there, when known).

        Starts at ``x0`` (default :meth:`_start`); data with more than twice
        ``data.warm_start_rows`` rows are first fitted on a subsample of that
        many (:func:`fit_with_warm_start`).
        """
        rows = data.warm_start_rows
        big = rows is not None and data.n_rows > 2 * rows
        return fit_with_warm_start(
            data.objective,
            self._start(data) if x0 is None else np.asarray(x0, dtype=float),
            sub_objective=data.subsample(rows).objective if big else None,
            names=self.param_names,
            model=self.model_name,
            max_iter=self.max_iter if max_iter is None else max_iter,
            allow_boundary=allow_boundary,
            max_seconds=max_seconds,
        )

    def _estimate(self, data: Likelihood) -> tuple[np.ndarray, float, np.ndarray]:
        """Fit ``data``: optimal log-parameters, log-likelihood and Hessian (total, log scale)."""
        log_theta, gradient = self._maximise(data, **self._fit_options())
        return log_theta, data.log_likelihood(log_theta), data.hessian(log_theta, gradient)

    def _fit_likelihood(self, data: Likelihood) -> None:
        """:meth:`_estimate` and :meth:`_store_fit`: the fit of a model without a boundary mode."""
        log_theta, log_likelihood, hessian_log = self._estimate(data)
        self._store_fit(log_theta, log_likelihood, data.total, hessian_log)

    # ------------------------------------------------------------------ fitted state
    def _store_fit(
        self,
        log_params: np.ndarray,
        log_likelihood: float,
        n_obs: float,
        hessian_log: np.ndarray,
        *,
        allow_boundary: bool = False,
    ) -> None:
        """Store estimates; ``hessian_log`` is of the total negative LL in log-parameters.

        A regular optimum (inside the box, positive definite Hessian, finite
        standard errors) gets Wald intervals. Otherwise the estimate lies on
        (or runs towards) the boundary of the parameter space: with
        ``allow_boundary`` it is stored with NaN standard errors and
        ``at_boundary_ = True`` (the subclass then computes intervals that work
        there); without, :class:`ConvergenceError` is raised.
        """
        theta = np.exp(log_params)
        problem, weak = boundary_diagnosis(log_params, hessian_log, self.param_names)
        if problem is not None and not allow_boundary:
            raise ConvergenceError(f"{self.model_name}: {problem}")
        self.params_ = dict(zip(self.param_names, theta.tolist(), strict=True))
        self.log_likelihood_ = float(log_likelihood)
        self.n_obs_ = float(n_obs) if not float(n_obs).is_integer() else int(n_obs)
        self.converged_ = True
        self.param_draws_ = None
        if problem is not None:
            nan = np.full(theta.size, np.nan)
            self.at_boundary_ = True
            self.boundary_params_ = weak
            self.boundary_reason_ = problem
            self.interval_method_ = "none"
            self.variance_matrix_ = None
            self.standard_errors_ = dict(zip(self.param_names, nan.tolist(), strict=True))
            self.confidence_intervals_ = pd.DataFrame(
                {"lower": nan, "upper": nan}, index=pd.Index(self.param_names, name="param")
            )
            return
        cov_log = np.linalg.inv(hessian_log)
        se_log = np.sqrt(np.diag(cov_log))
        self.at_boundary_ = False
        self.boundary_params_ = ()
        self.boundary_reason_ = None
        self.interval_method_ = "wald"
        self.variance_matrix_ = pd.DataFrame(
            cov_log * np.outer(theta, theta), index=self.param_names, columns=self.param_names
        )
        self.standard_errors_ = dict(zip(self.param_names, (theta * se_log).tolist(), strict=True))
        z = stats.norm.ppf(0.5 + self.confidence_level / 2)
        self.confidence_intervals_ = pd.DataFrame(
            {"lower": theta * np.exp(-z * se_log), "upper": theta * np.exp(z * se_log)},
            index=pd.Index(self.param_names, name="param"),
        )

    @classmethod
    def from_params(cls, params: dict[str, float], **settings: Any) -> Any:
        """Build a model with given parameter values (e.g. published ones) instead of fitting.

        Prediction methods work; ``log_likelihood_`` and the standard errors
        are NaN and ``converged_`` is False since nothing was fitted.

        Parameters
        ----------
        params
            Exactly the model's parameter names, all positive.
        **settings
            Constructor arguments (e.g. ``time_unit``).

        Raises
        ------
        ValueError
            Missing, extra or non-positive parameters.
        """
        if set(params) != set(cls.param_names):
            raise ValueError(
                f"params must have exactly the keys {list(cls.param_names)}, got {sorted(params)}"
            )
        values = np.array([float(params[n]) for n in cls.param_names])
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"parameters must be finite and > 0, got {params}")
        model = cls(**settings)
        nan = [float("nan")] * len(values)
        model.params_ = dict(zip(cls.param_names, values.tolist(), strict=True))
        model.standard_errors_ = dict(zip(cls.param_names, nan, strict=True))
        model.confidence_intervals_ = pd.DataFrame(
            {"lower": nan, "upper": nan}, index=pd.Index(cls.param_names, name="param")
        )
        model.log_likelihood_ = float("nan")
        model.n_obs_ = 0
        model.converged_ = False
        model.at_boundary_ = False
        model.boundary_params_ = ()
        model.boundary_reason_ = None
        model.interval_method_ = "none"
        model.param_draws_ = None
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call .fit(...) first")

    def _theta(self) -> tuple[float, ...]:
        self._check_fitted()
        return tuple(self.params_[n] for n in self.param_names)

    def summary(self) -> pd.DataFrame:
        """Parameter table.

        Returns
        -------
        pandas.DataFrame
            One row per parameter with columns ``param``, ``estimate``, ``se``
            (from the inverse Hessian of the negative log-likelihood),
            ``lower`` and ``upper`` (Wald interval at ``confidence_level``,
            computed on the log scale so that it stays positive).
        """
        self._check_fitted()
        ci = self.confidence_intervals_
        return pd.DataFrame(
            {
                "param": list(self.param_names),
                "estimate": [self.params_[n] for n in self.param_names],
                "se": [self.standard_errors_[n] for n in self.param_names],
                "lower": ci["lower"].to_numpy(),
                "upper": ci["upper"].to_numpy(),
            }
        )

    def __repr__(self) -> str:
        name = type(self).__name__
        if not hasattr(self, "params_"):
            return f"<{name}: not fitted>"
        ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"<{name}: {ps}; LL={self.log_likelihood_:.2f}, n={self.n_obs_}>"

    def _repr_html_(self) -> str:
        if not hasattr(self, "params_"):
            return f"<p>{type(self).__name__}: not fitted</p>"
        head = (
            f"<p><b>{self.model_name}</b> fitted on {self.n_obs_} observations; "
            f"log-likelihood {self.log_likelihood_:.3f}</p>"
        )
        return head + self.summary().to_html(index=False, float_format=lambda v: f"{v:.4g}")
