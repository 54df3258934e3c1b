"""The presentation layer of the reports: how text, tables and charts reach a page.

* :mod:`kam_analysis.report.page` — :class:`Page`, the one helper every report
  notebook uses for headings, narrative text, notes, tables, charts, number
  formatting and recorded values. Text from data reaches a page only through it.

The chart and table helpers still live in :mod:`kam_analysis.plots`; they move
here behind a ``plots`` front in a later step.
"""

from __future__ import annotations

from kam_analysis.report.page import (
    Html,
    Page,
    TemplateValueError,
    escape,
    render_template,
)

__all__ = ["Html", "Page", "TemplateValueError", "escape", "render_template"]
