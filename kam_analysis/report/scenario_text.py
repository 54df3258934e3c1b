"""Sentences of the scenario page that depend on where its numbers came from."""

from __future__ import annotations

from typing import Any

import pandas as pd

from kam_analysis.scenarios import FALLBACK_VOLATILITY, ScenarioSettings, ScenarioSpreads

__all__ = ["spread_texts"]


def _volatility_text(
    book: pd.DataFrame, spreads: ScenarioSpreads, page: Any, settings: ScenarioSettings
) -> Any:
    vol = book["volatility_annual"]
    source = book.get("volatility_source", pd.Series("fallback", index=book.index))
    own = (source == "estimated").to_numpy()
    if not own.any():
        value = float(vol.iloc[0]) if len(vol) else FALLBACK_VOLATILITY
        key = "book" if (source == "book").any() else "fallback"
        return page.text(
            f"scenarios.spread.vol.{key}",
            value=page.pct(value, 0),
            months=page.int(spreads.volatility_months),
            accounts=page.int(spreads.volatility_accounts),
            min_accounts=page.int(settings.min_history_accounts),
            min_months=page.int(settings.min_history_months),
        )
    text = page.text(
        "scenarios.spread.vol.estimated",
        n=page.int(int(own.sum())),
        months=page.int(spreads.volatility_months),
        median=page.pct(float(vol[own].median()), 0),
        p10=page.pct(float(vol[own].quantile(0.1)), 0),
        p90=page.pct(float(vol[own].quantile(0.9)), 0),
    )
    if own.all():
        return text
    rest = ~own
    key = "rest_book" if (source[rest] == "book").all() else "rest_fallback"
    more = page.text(
        f"scenarios.spread.vol.{key}",
        n=page.int(int(rest.sum())),
        value=page.pct(float(vol[rest].median()), 0),
    )
    return page.text("scenarios.spread.join", first=text, second=more)


def _market_text(spreads: ScenarioSpreads, page: Any) -> Any:
    weight = page.pct(spreads.market_factor_weight, 0)
    if spreads.market_source != "estimated":
        return page.text(f"scenarios.spread.market.{spreads.market_source}", weight=weight)
    m = spreads.market
    return page.text(
        "scenarios.spread.market.estimated",
        weight=weight,
        weight_lo=page.pct(m["weight_lower"], 0),
        weight_hi=page.pct(m["weight_upper"], 0),
        vol=page.pct(m["volatility_annual"], 1),
        quarters=page.int(m["quarters"]),
        accounts=page.int(m["accounts"]),
    )


def _churn_text(spreads: ScenarioSpreads, page: Any) -> Any:
    theta = page.num(spreads.churn_shock_variance, 2)
    if spreads.churn_shock_source != "estimated":
        return page.text(f"scenarios.spread.churn.{spreads.churn_shock_source}", theta=theta)
    c = spreads.churn_shock
    key = "estimated" if spreads.churn_shock_variance > 0 else "none_found"
    return page.text(
        f"scenarios.spread.churn.{key}",
        theta=theta,
        quarters=page.int(c["quarters"]),
        events=page.int(c["events"]),
        p=page.num(c["p_value"], 2),
    )


def spread_texts(
    book: pd.DataFrame,
    spreads: ScenarioSpreads,
    page: Any,
    settings: ScenarioSettings | None = None,
) -> dict[str, Any]:
    """The values of ``scenarios.spread_note``: volatility, market factor and churn shock.

    Parameters
    ----------
    book : pandas.DataFrame
        The scenario book (:func:`kam_analysis.scenarios.scenario_book`, with
        ``volatility_source``).
    spreads : ScenarioSpreads
    page : kam_analysis.report.Page
    settings : ScenarioSettings, optional
        The ``[scenarios]`` settings (the history the estimates need);
        defaults when None.

    Returns
    -------
    dict
        ``volatility``, ``market`` and ``churn``: rendered sentences saying
        what each number is and whether it was estimated (from how much
        data), configured or assumed.
    """
    return {
        "volatility": _volatility_text(book, spreads, page, settings or ScenarioSettings()),
        "market": _market_text(spreads, page),
        "churn": _churn_text(spreads, page),
    }
