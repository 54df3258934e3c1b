"""LTV charts: forest plot, interval ranking, calibration, PIT, tracking, retention, renewals."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from kam_analysis.core.formatting import fmt_int
from kam_analysis.core.i18n import label_for, t
from kam_analysis.report.style import (
    FULL_WIDTH_IN,
    _interval_rows,
    _new_ax,
    _plain,
    _require_cols,
    money_formatter,
    pct_formatter,
)


def forest_plot(
    hr: pd.DataFrame,
    *,
    ax: Axes | None = None,
    lang: str = "en",
    label_prefix: str = "ltv.covariate.",
    title: str | None = None,
) -> Axes:
    """Hazard ratios with confidence intervals on a log axis (a forest plot).

    Parameters
    ----------
    hr : DataFrame
        Index = covariate names; columns ``hr``, ``lower``, ``upper``
        (e.g. ``ChurnHazardModel.hazard_ratios_``).
    ax : Axes, optional
    lang : str, default "en"
    label_prefix : str
        Translation prefix of the covariate labels (see :func:`label_for`).
    title : str, optional

    Returns
    -------
    Axes
        One error bar per covariate (first row at the top), a reference line at 1.

    Raises
    ------
    ValueError
        Missing columns or non-positive ratios.
    """
    _require_cols(hr, "forest_plot", ["hr", "lower", "upper"])
    vals = hr[["hr", "lower", "upper"]].to_numpy(dtype=float)
    if not np.all(np.isfinite(vals)) or np.any(vals <= 0):
        raise ValueError("forest_plot: hazard ratios and bounds must be finite and > 0")
    ax = _new_ax(ax, height=max(2.2, 0.5 * len(hr) + 1.2))
    y = np.arange(len(hr))[::-1]
    colors = np.where(vals[:, 2] < 1, "C2", np.where(vals[:, 1] > 1, "C3", "0.5"))
    for yi, (h, lo, hi), c in zip(y, vals, colors, strict=True):
        ax.errorbar(h, yi, xerr=[[h - lo], [hi - h]], fmt="o", color=c, capsize=4, lw=2)
        ax.annotate(
            f"{h:.2f} [{lo:.2f}, {hi:.2f}]",
            xy=(hi, yi),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    ax.axvline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_xscale("log")
    lo_x, hi_x = vals[:, 1].min(), vals[:, 2].max()
    ax.set_xlim(min(lo_x, 1.0) / 1.25, max(hi_x, 1.0) * 1.8)
    lo_lim, hi_lim = ax.get_xlim()
    nice = np.array([0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20])
    ax.set_xticks(nice[(nice >= lo_lim) & (nice <= hi_lim)])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
    ax.set_yticks(y, [_plain(label_for(n, lang, prefix=label_prefix)) for n in hr.index])
    ax.set_xlabel(t("ltv.axis.hazard_ratio", lang))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def interval_ranking(
    df: pd.DataFrame,
    *,
    label: str,
    value: str = "ltv",
    lower: str = "ltv_lower",
    upper: str = "ltv_upper",
    hue: str | None = None,
    hue_prefix: str = "ltv.model.",
    top_n: int = 15,
    currency: str = "JPY",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Horizontal ranking of the top-N values with their intervals (largest at the top).

    Parameters
    ----------
    df : DataFrame
        Columns ``label``, ``value``, ``lower``, ``upper`` and optionally ``hue``.
    label, value, lower, upper : str
        Column names.
    hue : str, optional
        Categorical column colouring the points (e.g. the model used).
    hue_prefix : str
        Translation prefix of the hue categories.
    top_n : int, default 15
    currency : str, default "JPY"
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        ``min(top_n, len(df))`` rows.
    """
    _require_cols(df, "interval_ranking", [label, value, lower, upper] + ([hue] if hue else []))
    data = df[np.isfinite(df[value].to_numpy(dtype=float))]
    data = data.sort_values(value, ascending=False, kind="stable").head(int(top_n))
    ax = _new_ax(ax, height=max(2.5, 0.34 * len(data) + 1.2))
    _interval_rows(ax, data, value, lower, upper, label, hue, lang, hue_prefix)
    ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.set_xlabel(t("axis.ltv", lang))
    ax.grid(axis="y", visible=False)
    if hue:
        ax.legend(loc="lower right")
    if title:
        ax.set_title(_plain(title))
    return ax


def calibration_plot(
    table: pd.DataFrame,
    *,
    currency: str | None = "JPY",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Mean actual against mean predicted per bin, with the diagonal of perfect calibration.

    Parameters
    ----------
    table : DataFrame
        ``predicted_mean`` and ``actual_mean`` per bin (e.g.
        :func:`kam_analysis.ltv.backtest.calibration_table`).
    currency : str or None
        Money axes; None for plain numbers.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        The first line is the diagonal, the second the bins.
    """
    _require_cols(table, "calibration_plot", ["predicted_mean", "actual_mean"])
    p = table["predicted_mean"].to_numpy(dtype=float)
    a = table["actual_mean"].to_numpy(dtype=float)
    ax = _new_ax(ax, width="half", height=FULL_WIDTH_IN / 2)
    top = float(np.nanmax(np.concatenate([p, a]))) * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="0.6", ls=":", lw=1, label=t("ltv.perfect", lang))
    ax.plot(p, a, "o-", color="C0", label=t("ltv.bins", lang))
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
    if currency:
        ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
        ax.yaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.set_xlabel(t("ltv.axis.predicted", lang))
    ax.set_ylabel(t("ltv.axis.actual", lang))
    ax.legend(loc="upper left")
    if title:
        ax.set_title(_plain(title))
    return ax


def pit_histogram(
    pit: pd.DataFrame,
    *,
    group: str = "group",
    value: str = "pit",
    bins: int = 10,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Histogram of PIT values per group, as densities, with the uniform line at 1.

    A calibrated forecast gives flat bars at 1; a U shape (outcomes in the
    tails) means intervals too narrow, a hump in the middle too wide, a slope
    a biased forecast.

    Parameters
    ----------
    pit : DataFrame
        ``group`` (label per row) and ``value`` (PIT in [0, 1]), e.g. the
        live accounts of ``BacktestResult.accounts`` with their model label.
    group, value : str
        Column names.
    bins : int
        Equal-width bins on [0, 1].
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        One step line per group, then the uniform reference line.
    """
    _require_cols(pit, "pit_histogram", [group, value])
    ax = _new_ax(ax, width="half", height=FULL_WIDTH_IN / 2)
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    for i, (name, g) in enumerate(pit.groupby(group, sort=True)):
        dens, _ = np.histogram(g[value].to_numpy(dtype=float), bins=edges, density=True)
        ax.stairs(dens, edges, color=f"C{i}", lw=2, label=_plain(str(name)))
    ax.axhline(1.0, color="0.6", ls=":", lw=1, label=t("ltv.uniform", lang))
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(t("ltv.axis.pit", lang))
    ax.set_ylabel(t("ltv.axis.density", lang))
    ax.legend(loc="upper center", fontsize="small")
    if title:
        ax.set_title(_plain(title))
    return ax


def tracking_plot(
    tracking: pd.DataFrame,
    *,
    period_label: str = "week",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Cumulative repeat purchases in the holdout: model (dashed) vs actual (solid).

    Parameters
    ----------
    tracking : DataFrame
        ``period``, ``model``, ``actual`` (cumulative counts), e.g.
        ``BacktestResult.tracking``.
    period_label : str
        ``"week"`` or ``"month"`` (axis label key ``ltv.axis.<period>s_after_cutoff``).
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Two lines: actual then model.
    """
    _require_cols(tracking, "tracking_plot", ["period", "model", "actual"])
    ax = _new_ax(ax)
    ax.plot(
        tracking["period"], tracking["actual"], color="black", lw=2, label=t("axis.actual", lang)
    )
    ax.plot(
        tracking["period"],
        tracking["model"],
        color="C0",
        lw=2,
        ls="--",
        label=t("ltv.model_line", lang),
    )
    ax.set_xlabel(t(f"ltv.axis.{period_label}s_after_cutoff", lang))
    ax.set_ylabel(t("ltv.axis.cumulative_purchases", lang))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: fmt_int(v)))
    ax.legend(loc="upper left")
    if title:
        ax.set_title(_plain(title))
    return ax


def period_histogram_plot(
    hist: pd.DataFrame,
    *,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Customers by number of repeat purchases: actual vs model, side by side.

    Parameters
    ----------
    hist : DataFrame
        ``purchases`` (labels), ``actual``, ``model`` (e.g.
        :func:`kam_analysis.ltv.backtest.period_transactions_histogram`).
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Two bar containers (actual, model).
    """
    _require_cols(hist, "period_histogram_plot", ["purchases", "actual", "model"])
    ax = _new_ax(ax)
    x = np.arange(len(hist))
    ax.bar(
        x - 0.2,
        hist["actual"].to_numpy(dtype=float),
        width=0.4,
        color="0.3",
        label=t("axis.actual", lang),
    )
    ax.bar(
        x + 0.2,
        hist["model"].to_numpy(dtype=float),
        width=0.4,
        color="C0",
        label=t("ltv.model_line", lang),
    )
    ax.set_xticks(x, [_plain(s) for s in hist["purchases"]])
    ax.set_xlabel(t("ltv.axis.repeat_purchases", lang))
    ax.set_ylabel(t("axis.accounts", lang))
    ax.legend(loc="upper left")
    ax.grid(axis="x", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def retention_plot(
    observed: pd.DataFrame,
    fitted: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Retention curves: observed share retained per cohort and model curves.

    Parameters
    ----------
    observed : DataFrame
        ``cohort``, ``month``, ``share`` (e.g.
        :func:`kam_analysis.ltv.value.retention_cohorts`), drawn as markers.
    fitted : DataFrame, optional
        ``curve`` (legend label), ``month``, ``share``: model curves drawn as lines.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
    """
    _require_cols(observed, "retention_plot", ["cohort", "month", "share"])
    ax = _new_ax(ax)
    for i, (cohort, g) in enumerate(observed.groupby("cohort", sort=True)):
        ax.plot(
            g["month"], g["share"], "o", ms=3, color=f"C{i % 10}", alpha=0.7, label=_plain(cohort)
        )
    if fitted is not None:
        _require_cols(fitted, "retention_plot", ["curve", "month", "share"])
        for j, (curve, g) in enumerate(fitted.groupby("curve", sort=False)):
            ax.plot(
                g["month"],
                g["share"],
                color="black" if j == 0 else f"C{(j + 5) % 10}",
                lw=2,
                ls="-" if j == 0 else "--",
                label=_plain(curve),
            )
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(pct_formatter())
    ax.set_xlabel(t("ltv.axis.months_since_start", lang))
    ax.set_ylabel(t("ltv.axis.retained", lang))
    ax.legend(loc="lower left", ncols=2, fontsize=9)
    if title:
        ax.set_title(_plain(title))
    return ax


def renewal_bars(
    forecast: pd.DataFrame,
    *,
    currency: str = "JPY",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Contract value up for renewal vs expected renewed value (with interval) per quarter.

    Parameters
    ----------
    forecast : DataFrame
        ``quarter``, ``contract_value``, ``expected_renewed_value``,
        ``lower``, ``upper`` (e.g. :func:`kam_analysis.ltv.renewal.renewal_forecast`).
    currency : str, default "JPY"
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Two bar containers (up for renewal, expected) and one error bar.
    """
    _require_cols(
        forecast,
        "renewal_bars",
        ["quarter", "contract_value", "expected_renewed_value", "lower", "upper"],
    )
    ax = _new_ax(ax)
    x = np.arange(len(forecast))
    e = forecast["expected_renewed_value"].to_numpy(dtype=float)
    ax.bar(
        x - 0.2,
        forecast["contract_value"].to_numpy(dtype=float),
        width=0.4,
        color="0.75",
        label=t("ltv.up_for_renewal", lang),
    )
    ax.bar(x + 0.2, e, width=0.4, color="C0", label=t("ltv.expected_renewed", lang))
    ax.errorbar(
        x + 0.2,
        e,
        yerr=[
            np.clip(e - forecast["lower"].to_numpy(dtype=float), 0, None),
            np.clip(forecast["upper"].to_numpy(dtype=float) - e, 0, None),
        ],
        fmt="none",
        color="black",
        capsize=4,
    )
    ax.set_xticks(x, [_plain(q) for q in forecast["quarter"]])
    ax.yaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.legend(loc="upper right")
    ax.grid(axis="x", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax
