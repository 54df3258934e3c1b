"""Front for the presentation helpers, kept so that ``from kam_analysis import plots`` works.

The code lives in layers (see ``kam_analysis/__init__.py``):

* :mod:`kam_analysis.core.i18n` -- :func:`t`, :func:`label_for`, the locale files;
* :mod:`kam_analysis.core.formatting` -- :func:`fmt_money`, :func:`fmt_pct`, ...;
* :mod:`kam_analysis.report.style` -- the report theme, fonts and axis formatters;
* :mod:`kam_analysis.report.tables` -- :func:`styled_table`, :func:`format_by_row`;
* :mod:`kam_analysis.report.charts` -- every chart, one module per analysis.

New code imports from those modules; this front re-exports their public names
(as statsmodels' ``graphics/api.py`` does) and will be removed in a later release.
"""

from kam_analysis.core.formatting import INF_TEXT, NA_TEXT, fmt_int, fmt_money, fmt_num, fmt_pct
from kam_analysis.core.i18n import LANGUAGES, TranslationKeyError, label_for, t, translations
from kam_analysis.report.charts.base import (
    bar_contributions,
    fan_chart,
    heatmap,
    pareto_curve,
    scatter_labeled,
)
from kam_analysis.report.charts.kpi import hist_by_group, small_multiples
from kam_analysis.report.charts.ltv import (
    calibration_plot,
    forest_plot,
    interval_ranking,
    period_histogram_plot,
    pit_histogram,
    renewal_bars,
    retention_plot,
    tracking_plot,
)
from kam_analysis.report.charts.plan import (
    CARD_STRIPE_COLOURS,
    OBJECTIVE_COLOURS,
    kpi_cards,
    objective_roadmap,
    product_line_bars,
    revenue_history,
)
from kam_analysis.report.charts.scenarios import (
    break_even_plot,
    concentration_trend_plot,
    scenario_fans,
    scheme_boxplot,
    tornado_chart,
)
from kam_analysis.report.charts.stakeholders import (
    STANCE_COLOURS,
    org_chart,
    stakeholder_map,
    stakeholder_panels,
)
from kam_analysis.report.charts.valuation import (
    family_colors,
    pareto_curves,
    quadrant_scatter,
    rank_intervals,
    wallet_bars,
)
from kam_analysis.report.style import (
    FULL_WIDTH_IN,
    JAPANESE_FONT,
    apply_japanese_font,
    chart_text,
    figure,
    money_formatter,
    pct_formatter,
    set_report_style,
)
from kam_analysis.report.tables import (
    STATUS_COLOURS,
    TREND_COLOURS,
    format_by_row,
    style_categories,
    styled_table,
)

__all__ = [
    "CARD_STRIPE_COLOURS",
    "OBJECTIVE_COLOURS",
    "FULL_WIDTH_IN",
    "INF_TEXT",
    "JAPANESE_FONT",
    "LANGUAGES",
    "NA_TEXT",
    "STANCE_COLOURS",
    "STATUS_COLOURS",
    "TREND_COLOURS",
    "TranslationKeyError",
    "apply_japanese_font",
    "bar_contributions",
    "break_even_plot",
    "calibration_plot",
    "pit_histogram",
    "chart_text",
    "concentration_trend_plot",
    "family_colors",
    "fan_chart",
    "figure",
    "fmt_int",
    "fmt_money",
    "fmt_num",
    "fmt_pct",
    "forest_plot",
    "format_by_row",
    "heatmap",
    "hist_by_group",
    "interval_ranking",
    "kpi_cards",
    "label_for",
    "money_formatter",
    "org_chart",
    "pareto_curve",
    "pareto_curves",
    "pct_formatter",
    "period_histogram_plot",
    "objective_roadmap",
    "product_line_bars",
    "quadrant_scatter",
    "rank_intervals",
    "renewal_bars",
    "retention_plot",
    "revenue_history",
    "scatter_labeled",
    "scenario_fans",
    "scheme_boxplot",
    "set_report_style",
    "small_multiples",
    "stakeholder_map",
    "stakeholder_panels",
    "style_categories",
    "styled_table",
    "t",
    "tornado_chart",
    "tracking_plot",
    "translations",
    "wallet_bars",
]
