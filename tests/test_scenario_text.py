"""The scenario page says where the numbers behind its spread came from, in en and ja."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from kam_analysis import scenarios as sc
from kam_analysis.report import Page
from kam_analysis.report.scenario_text import spread_texts


def _page(lang: str) -> Page:
    return Page(lang=lang, currency="JPY", style=False, show=lambda bundle: None)


def _book(sources: list[str], vols: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(len(vols))],
            "volatility_annual": vols,
            "volatility_source": sources,
        }
    )


ESTIMATED = dict(
    market={
        "weight": 0.12,
        "weight_lower": 0.04,
        "weight_upper": 0.3,
        "volatility_annual": 0.081,
        "quarters": 11,
        "accounts": 950,
    },
    churn_shock={"variance": 0.07, "quarters": 16, "events": 480, "p_value": 0.003},
    volatility_months=36,
    volatility_accounts=3,
)


def _plain(html_text: object) -> str:
    return re.sub(r"<[^>]+>", "", str(html_text))


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_estimated_spreads_name_their_data(lang):
    book = _book(["estimated", "estimated", "estimated", "book"], [0.2, 0.3, 0.4, 0.3])
    spreads = sc.scenario_spreads(sc.ScenarioSettings(), **ESTIMATED)
    out = {k: _plain(v) for k, v in spread_texts(book, spreads, _page(lang)).items()}
    assert "36" in out["volatility"] and "30%" in out["volatility"]  # months, median
    assert "1" in out["volatility"]  # the one account on the book's value
    assert "12%" in out["market"] and "11" in out["market"] and "8.1%" in out["market"]
    assert "0.07" in out["churn"] and "16" in out["churn"] and "480" in out["churn"]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_configured_assumed_and_none_found_are_said_as_such(lang):
    page = _page(lang)
    book = _book(["fallback"] * 2, [0.15, 0.15])
    cfg = sc.ScenarioSettings(market_factor_weight=0.4, churn_shock_variance=0.2)
    configured = spread_texts(book, sc.scenario_spreads(cfg, volatility_months=18), page)
    assert "market_factor_weight" in _plain(configured["market"])
    assert "churn_shock_variance" in _plain(configured["churn"])
    assert "18" in _plain(configured["volatility"]) and "15%" in _plain(configured["volatility"])
    assumed = spread_texts(book, sc.scenario_spreads(sc.ScenarioSettings()), page)
    assert "30%" in _plain(assumed["market"])  # FALLBACK_MARKET_WEIGHT
    calm = sc.scenario_spreads(
        sc.ScenarioSettings(),
        churn_shock={"variance": 0.0, "quarters": 12, "events": 90, "p_value": 0.8},
    )
    none_found = _plain(spread_texts(book, calm, page)["churn"])
    assert "12" in none_found and "90" in none_found and "0.80" in none_found


def test_the_three_sentences_differ_by_source():
    page = _page("en")
    book = _book(["fallback"], [0.15])
    texts = {
        src: _plain(spread_texts(book, sc.scenario_spreads(cfg, **ESTIMATED), page)["market"])
        for src, cfg in [
            ("estimated", sc.ScenarioSettings()),
            ("config", sc.ScenarioSettings(market_factor_weight=0.12)),
        ]
    }
    assert "estimated" in texts["estimated"] and "kam" not in texts["estimated"]
    assert "set in [scenarios]" in texts["config"]


def test_the_fallback_names_the_history_the_settings_require():
    book = _book(["fallback"], [0.15])
    spreads = sc.scenario_spreads(volatility_months=18, volatility_accounts=12)
    cfg = sc.ScenarioSettings(min_history_accounts=50, min_history_months=36)
    text = _plain(spread_texts(book, spreads, _page("en"), cfg)["volatility"])
    assert "12 accounts" in text and "18 months" in text
    assert "at least 50 accounts and 36 months" in text
    default = _plain(spread_texts(book, spreads, _page("ja"))["volatility"])
    assert "30社・24か月以上" in default
