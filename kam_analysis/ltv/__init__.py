"""Probabilistic customer-base models for customer lifetime value.

Non-contractual repeat purchasing: :class:`BetaGeo` (BG/NBD) and
:class:`ParetoNBD`; spend per transaction: :class:`GammaGamma`; contractual
retention: :class:`ShiftedBetaGeometric`; account churn with covariates:
:class:`ChurnHazardModel`; revenue growth: :class:`RevenueTrajectory`;
account LTV with intervals: :func:`account_ltv`; backtests:
:func:`backtest_ltv`, :func:`rolling_backtest`; renewals: :func:`renewal_forecast`. All follow ``Model(settings)
.fit(data) -> self`` with fitted attributes ending in ``_`` and a
``summary()`` table; times are in the model's explicit ``time_unit``.

BG/NBD and Pareto/NBD accept ``boundary="bootstrap"``: an estimate on the
boundary of the parameter space (e.g. ``a -> 0`` when almost nobody drops
out) is kept and gets parametric-bootstrap intervals instead of raising
:class:`ConvergenceError`; :func:`~kam_analysis.ltv.fitting.fit_ltv_models`
uses it, falls back from BG/NBD to Pareto/NBD, and records what it did as
notes (:class:`~kam_analysis.ltv.fitting.LtvNote`).
"""

from ._base import (
    PERIODS_PER_YEAR,
    ConvergenceError,
    LTVModelSettings,
    NotFittedError,
    per_period_discount_rate,
)
from .backtest import backtest_ltv, coverage_table, rolling_backtest
from .beta_geo import BetaGeo, simulate_beta_geo
from .gamma_gamma import GammaGamma, IndependenceWarning
from .hazard import ChurnHazardModel, build_churn_covariates
from .pareto_nbd import ParetoNBD, simulate_pareto_nbd
from .renewal import renewal_forecast
from .shifted_beta_geometric import ShiftedBetaGeometric
from .shocks import RevenueShocks
from .trajectory import RevenueTrajectory
from .value import LtvSettings, account_ltv

__all__ = [
    "ChurnHazardModel",
    "LtvSettings",
    "RevenueShocks",
    "RevenueTrajectory",
    "account_ltv",
    "backtest_ltv",
    "coverage_table",
    "build_churn_covariates",
    "renewal_forecast",
    "rolling_backtest",
    "PERIODS_PER_YEAR",
    "BetaGeo",
    "ConvergenceError",
    "GammaGamma",
    "IndependenceWarning",
    "LTVModelSettings",
    "NotFittedError",
    "ParetoNBD",
    "ShiftedBetaGeometric",
    "per_period_discount_rate",
    "simulate_beta_geo",
    "simulate_pareto_nbd",
]
