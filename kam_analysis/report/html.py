"""HTML pages of the report pipeline: notebook export, page header, index pages.

Used by :mod:`kam_analysis.pipeline`; separate so the HTML rules sit in one place:

* Reports read offline: the export template (the nbconvert ``lab`` template
  without its require.js, MathJax, Mermaid and widget ``<script>`` tags) loads
  nothing from a CDN, and :func:`strip_external_resources` removes any external
  ``<script src>`` / ``<link href>`` a notebook output might still carry.
  Matplotlib figures are inline base64 PNGs; Markdown images are embedded.
  LaTeX in Markdown is therefore shown as typed: report notebooks should not use it.
* No code, no prompts, no log noise: input cells are excluded, stderr streams
  (warnings, log lines) are dropped, cells tagged ``remove-cell`` are removed and
  outputs of cells tagged ``remove-output`` too.
* Every string that may come from data or from the user (titles, labels,
  account ids, error messages) goes through :func:`html.escape`; notebooks show
  text through :class:`kam_analysis.report.Page`, which escapes every value and
  never hands data to a Markdown renderer.
* Defence in depth (:func:`drop_unsafe_urls`): the exported page keeps no
  ``javascript:`` / ``vbscript:`` URL in any attribute and no image that would be
  fetched from elsewhere (every ``<img>`` whose ``src`` is not a ``data:`` URL is
  removed, ``srcset`` too; event-handler attributes go as well), so a page never
  runs script from a link and opening it makes no request for an image.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kam_analysis.core.i18n import t

if TYPE_CHECKING:  # nbformat takes a second to import (jsonschema): only the runner needs it
    import nbformat

__all__ = [
    "drop_unsafe_urls",
    "export_notebook_html",
    "prepare_for_export",
    "report_header",
    "run_index_page",
    "runs_index_page",
    "strip_external_resources",
    "write_text_atomic",
]

_TEMPLATE_NAME = "kam_report.html.j2"
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block stream_stderr -%}{%- endblock stream_stderr -%}
{%- block extra_css -%}<style type="text/css">{{ resources.kam_css }}</style>{%- endblock extra_css -%}
{%- block body_header -%}{{ super() }}{{ resources.kam_header }}{%- endblock body_header -%}
"""

_FONTS = (
    'system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Hiragino Kaku Gothic ProN", '
    '"Noto Sans JP", "Noto Sans CJK JP", "IPAexGothic", Meiryo, sans-serif'
)
REPORT_CSS = (
    """
:root { --jp-content-font-family: FONTS; --jp-ui-font-family: FONTS; }
.kam-header { font-family: FONTS; border-bottom: 3px solid #1f4e79; margin: 0 0 1.2em 0; padding: 0.8em 1em; }
.kam-header h1 { font-size: 1.6em; margin: 0 0 0.3em 0; color: #1f4e79; }
.kam-header dl { display: flex; flex-wrap: wrap; gap: 0.2em 1.6em; margin: 0 0 0.5em 0; }
.kam-header dt { font-weight: 600; color: #555; }
.kam-header dt::after { content: ":"; }
.kam-header dd { margin: 0 0 0 0.3em; }
.kam-header dl div { display: flex; }
.kam-header nav a { margin-right: 1em; color: #1f4e79; }
.kam-header nav a.current { font-weight: 700; text-decoration: none; color: #000; }
.kam-failed { background: #fdecea; color: #8a1c14; border-left: 4px solid #c62828;
  padding: 0.6em 1em; margin: 0.6em 0; }
.kam-note { color: #444; border-left: 3px solid #b0bec5; padding: 0.1em 0 0.1em 0.8em;
  margin: 0.4em 0; }
.kam-chart img { max-width: 100%; height: auto; }
/* a number and its unit (¥2,000.2万) and short category cells stay on one line */
td.kam-num, td.kam-nowrap { white-space: nowrap; }
/* Japanese: no small kana, ー or closing bracket at the start of a line */
.kam-table th, .kam-table td { line-break: strict; }
"""
).replace("FONTS", _FONTS)

_INDEX_CSS = (
    REPORT_CSS
    + """
body { font-family: var(--jp-content-font-family); margin: 0 auto; max-width: 1100px; padding: 0 1em 2em 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.35em 0.7em; text-align: left; vertical-align: top; }
th { background: #f3f6f9; }
td.num, th.num { text-align: right; white-space: nowrap; }
.muted { color: #777; font-size: 0.85em; }
.status-ok { color: #1b5e20; font-weight: 600; }
.status-failed, .status-timeout, .status-not_run, .status-interrupted { color: #b71c1c; font-weight: 600; }
.error { font-family: ui-monospace, monospace; font-size: 0.85em; white-space: pre-wrap; color: #8a1c14; }
.latest { background: #1f4e79; color: #fff; border-radius: 3px; padding: 0 0.4em; font-size: 0.8em; }
"""
)

_EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script\s*>", re.IGNORECASE
)
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE)
_TAG = re.compile(
    r"<(?P<name>[A-Za-z][A-Za-z0-9:-]*)"
    r"(?P<attrs>(?:\s+[^\s\"'>/=]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)"
    r"\s*(?P<end>/?)>"
)
_ATTR = re.compile(
    r"(?P<space>\s+)(?P<name>[^\s\"'>/=]+)(?:\s*=\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?"
)
_URL_ATTRS = {
    "href", "src", "action", "formaction", "xlink:href", "poster", "background",
    "data", "cite", "ping", "lowsrc", "dynsrc", "longdesc", "manifest", "codebase",
}  # fmt: skip
_FETCH_ATTRS = {"src", "srcset", "poster", "background", "data", "lowsrc", "dynsrc"}
_SCRIPT_SCHEMES = ("javascript:", "vbscript:", "livescript:")
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")
_REMOVE_CELL_TAGS = {"remove-cell", "remove_cell"}
_REMOVE_OUTPUT_TAGS = {"remove-output", "remove_output"}


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file so that readers see the old or the new content, never half.

    Parameters
    ----------
    path : Path
    text : str
        Written as UTF-8 to ``<path>.tmp-<pid>`` and moved into place with ``os.replace``.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def strip_external_resources(page: str) -> str:
    """Remove ``<script src=...>`` and ``<link href=...>`` tags pointing to other hosts.

    Parameters
    ----------
    page : str
        An HTML document.

    Returns
    -------
    str
        The document without tags that would load ``http(s)://`` or ``//`` URLs.
    """
    return _EXTERNAL_LINK.sub("", _EXTERNAL_SCRIPT.sub("", page))


def _url_of(raw: str | None) -> str:
    """An attribute value as a browser reads its URL: unquoted, unescaped, no blanks."""
    if raw is None:
        return ""
    if raw[:1] in "\"'":
        raw = raw[1:-1]
    return _URL_NOISE.sub("", html.unescape(raw)).lower()


def _safe_tag(match: re.Match[str]) -> str:
    name = match.group("name").lower()
    attrs = list(_ATTR.finditer(match.group("attrs")))
    if name == "img":
        src = next(
            (_url_of(a.group("value")) for a in attrs if a.group("name").lower() == "src"), ""
        )
        if not src.startswith("data:"):
            return ""  # the image would be fetched from elsewhere (or has no source)
    kept = []
    for attr in attrs:
        attr_name = attr.group("name").lower()
        url = _url_of(attr.group("value"))
        if attr_name in _URL_ATTRS | _FETCH_ATTRS and url.startswith(_SCRIPT_SCHEMES):
            continue
        if attr_name == "srcset" or (attr_name in _FETCH_ATTRS and not url.startswith("data:")):
            continue
        if attr_name.startswith("on"):  # event handlers: reports carry no script
            continue
        kept.append(attr.group(0))
    if len(kept) == len(attrs):
        return match.group(0)
    end = " /" if match.group("end") else ""
    return f"<{match.group('name')}{''.join(kept)}{end}>"


def drop_unsafe_urls(page: str) -> str:
    """Remove script URLs and externally fetched images from an HTML document.

    Defence in depth behind the escaping of data: whatever reached the page,

    * an attribute holding a ``javascript:`` (or ``vbscript:``) URL is dropped
      (browsers ignore blanks and control characters in the scheme and decode
      entities, and so does this check);
    * an ``<img>`` whose ``src`` is not a ``data:`` URL is removed, and so is any
      ``srcset``, and any ``src`` / ``poster`` / ``data`` attribute of other
      elements that is not a ``data:`` URL;
    * event-handler attributes (``onerror``, ``onclick`` ...) are dropped.

    Ordinary links (``https://``, ``#anchor``, relative files) are kept.

    Parameters
    ----------
    page : str
        An HTML document or fragment.

    Returns
    -------
    str
    """
    return _TAG.sub(_safe_tag, page)


def prepare_for_export(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook with what stakeholders must not see removed.

    Drops stderr stream outputs (warnings, log lines), cells tagged
    ``remove-cell``, the outputs of cells tagged ``remove-output``, and the
    notebook's own title (its first level-1 heading: Markdown in a cell or an
    output, or the ``<h1>`` that :meth:`kam_analysis.report.Page.h1` shows):
    the page header shows the title instead.

    Parameters
    ----------
    nb : NotebookNode

    Returns
    -------
    NotebookNode
        A new notebook; ``nb`` is not modified.
    """
    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & _REMOVE_CELL_TAGS:
            continue
        if cell.cell_type == "code":
            if tags & _REMOVE_OUTPUT_TAGS:
                cell.outputs = []
            else:
                cell.outputs = [
                    o
                    for o in cell.get("outputs", [])
                    if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                ]
        cells.append(cell)
    out.cells = cells
    _drop_first_title(cells)
    return out


_TITLE_LINE = re.compile(r"\A\s*#\s+[^\n]*\n?")
_TITLE_ELEMENT = re.compile(r"\A\s*<h1\b[^>]*>.*?</h1>\s*", re.DOTALL | re.IGNORECASE)


def _drop_first_title(cells: list) -> None:
    """Remove the first ``# Title`` line of the first cell that shows anything."""
    for cell in cells:
        if cell.cell_type == "markdown":
            if cell.source.strip():
                cell.source = _TITLE_LINE.sub("", cell.source, count=1)
                return
            continue
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            markup = output.get("data", {}).get("text/html")
            if markup is not None:
                markup = "".join(markup) if isinstance(markup, list) else markup
                if _TITLE_ELEMENT.match(markup):
                    stripped = _TITLE_ELEMENT.sub("", markup, count=1)
                    if stripped.strip():
                        output["data"]["text/html"] = stripped
                    else:
                        cell.outputs.remove(output)
                return
            text = output.get("data", {}).get("text/markdown")
            if text is None:
                if output.get("output_type") in ("display_data", "execute_result", "stream"):
                    return  # something else is shown first: leave the notebook as it is
                continue
            text = "".join(text) if isinstance(text, list) else text
            if _TITLE_LINE.match(text):
                stripped = _TITLE_LINE.sub("", text, count=1)
                if stripped.strip():
                    output["data"]["text/markdown"] = stripped
                else:
                    cell.outputs.remove(output)
            return


def report_header(
    *,
    title: str,
    as_of: str,
    dataset: str,
    run_id: str,
    nav: Sequence[tuple[str, str]] = (),
    current: str | None = None,
    failed: bool = False,
    lang: str = "en",
) -> str:
    """The header injected at the top of every report page.

    Parameters
    ----------
    title, as_of, dataset, run_id : str
        Shown as text (escaped).
    nav : sequence of (href, text)
        Links to the other pages of the run; hrefs are relative file names.
    current : str, optional
        The href of this page (shown as current).
    failed : bool, default False
        Add a visible "this report failed" notice.
    lang : str, default "en"

    Returns
    -------
    str
        An HTML fragment.
    """
    links = " ".join(
        f'<a href="{_e(href)}"{" class=current" if href == current else ""}>{_e(text)}</a>'
        for href, text in nav
    )
    meta = "".join(
        f"<div><dt>{_e(t(key, lang))}</dt><dd>{_e(value)}</dd></div>"
        for key, value in (
            ("header.as_of", as_of),
            ("header.dataset", dataset),
            ("header.run_id", run_id),
        )
    )
    notice = f'<p class="kam-failed">{_e(t("header.failed_notice", lang))}</p>' if failed else ""
    return (
        f'<header class="kam-header"><h1>{_e(title)}</h1><dl>{meta}</dl>'
        f"<nav>{links}</nav>{notice}</header>"
    )


def export_notebook_html(
    nb: nbformat.NotebookNode,
    *,
    title: str,
    header: str,
    resources_path: Path | None = None,
) -> str:
    """Render an executed notebook as a stakeholder page: no code, no prompts, offline.

    Parameters
    ----------
    nb : NotebookNode
        The executed notebook (not modified).
    title : str
        Page title (escaped by the template).
    header : str
        HTML fragment from :func:`report_header`, inserted at the top of the body.
    resources_path : Path, optional
        Folder against which relative Markdown image paths are resolved (the
        source notebook's folder), so they can be embedded.

    Returns
    -------
    str
        A self-contained HTML document.
    """
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        template_file=_TEMPLATE_NAME,
        extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    clean = prepare_for_export(nb)
    clean.metadata["title"] = title
    resources: dict[str, Any] = {
        "metadata": {"name": title, "path": str(resources_path or "")},
        "kam_header": header,
        "kam_css": REPORT_CSS,
    }
    body, _ = exporter.from_notebook_node(clean, resources=resources)
    return drop_unsafe_urls(strip_external_resources(body))


def _page(title: str, body: str, lang: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
        f"<title>{_e(title)}</title>\n<style>{_INDEX_CSS}</style>\n</head>\n<body>\n{body}\n"
        "</body>\n</html>\n"
    )


def _status(status: str | None, lang: str) -> str:
    key = f"status.{status}"
    try:
        text = t(key, lang)
    except KeyError:
        text = str(status)
    return f'<span class="status-{_e(status)}">{_e(text)}</span>'


def _unreadable_note(manifest: dict) -> str:
    """Why a run's manifest could not be read, under its status."""
    if manifest.get("status") != "unreadable" or not manifest.get("error"):
        return ""
    return f'<br><small class="kam-muted">{_e(manifest["error"])}</small>'


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.1f} s" if value < 120 else f"{value / 60:,.1f} min"


def run_index_page(manifest: dict, *, lang: str = "en") -> str:
    """The ``index.html`` of one run: every report and account plan with its status.

    Parameters
    ----------
    manifest : dict
        The run manifest (see :func:`kam_analysis.pipeline.run.run_reports`).
    lang : str, default "en"

    Returns
    -------
    str
        An HTML document; every value from the manifest is escaped.
    """
    notebooks = manifest.get("notebooks", [])
    header = report_header(
        title=f"{t('index.title', lang)} {manifest.get('run_id', '')}",
        as_of=manifest.get("as_of", ""),
        dataset=manifest.get("dataset", ""),
        run_id=manifest.get("run_id", ""),
        nav=[("../index.html", t("index.runs_title", lang))],
        failed=manifest.get("status") != "ok",
        lang=lang,
    )
    extra = ""
    if manifest.get("label"):
        extra += f"<p>{_e(t('index.label', lang))}: {_e(manifest['label'])}</p>"
    if manifest.get("error"):
        extra += f'<p class="error">{_e(manifest["error"])}</p>'

    def table(items: list[dict], first: str) -> str:
        with_errors = any(nb.get("error") for nb in items)
        heads = [
            t("index.account" if first == "account" else "index.report", lang),
            t("header.status", lang),
            t("index.duration", lang),
        ] + ([t("index.error", lang)] if with_errors else [])
        out = ["<table><tr>"]
        out += [
            f"<th{' class=num' if h == t('index.duration', lang) else ''}>{_e(h)}</th>"
            for h in heads
        ]
        out.append("</tr>")
        for nb in items:
            html_file = next((f for f in nb.get("outputs", []) if f.endswith(".html")), None)
            if first == "account":
                name = nb.get("account_name") or nb.get("account_id")
                note = (
                    f' <span class="muted">{_e(nb.get("account_id"))}</span>'
                    if nb.get("account_name")
                    else ""
                )
            else:
                name, note = nb.get("title"), ""
            cell = f'<a href="{_e(html_file)}">{_e(name)}</a>' if html_file else _e(name)
            out.append(
                f"<tr><td>{cell}{note}</td><td>{_status(nb.get('status'), lang)}</td>"
                f'<td class="num">{_e(_seconds(nb.get("duration_s")))}</td>'
            )
            if with_errors:
                out.append(f'<td class="error">{_e(nb.get("error") or "")}</td>')
            out.append("</tr>")
        return "".join(out) + "</table>"

    portfolio = [nb for nb in notebooks if not nb.get("account_id")]
    plans = [nb for nb in notebooks if nb.get("account_id")]
    body = header + extra
    if portfolio:
        body += f"<h2>{_e(t('index.reports', lang))}</h2>" + table(portfolio, "report")
    if plans:
        body += f'<h2 id="account-plans">{_e(t("index.account_plans", lang))}</h2>'
        body += table(plans, "account")
    return _page(f"{t('index.title', lang)} {manifest.get('run_id', '')}", body, lang)


def runs_index_page(runs: Sequence[dict], *, latest: str | None = None, lang: str = "en") -> str:
    """``reports/index.html``: every run, newest first.

    Parameters
    ----------
    runs : sequence of dict
        Run manifests, newest first.
    latest : str, optional
        Run id the ``latest`` link points to (marked).
    lang : str, default "en"

    Returns
    -------
    str
        An HTML document; every value is escaped.
    """
    title = t("index.runs_title", lang)
    rows = []
    for m in runs:
        run_id = str(m.get("run_id", ""))
        ok = sum(1 for nb in m.get("notebooks", []) if nb.get("status") == "ok")
        total = len(m.get("notebooks", []))
        mark = (
            f' <span class="latest">{_e(t("index.latest", lang))}</span>'
            if run_id == latest
            else ""
        )
        rows.append(
            f'<tr><td><a href="{_e(run_id)}/index.html">{_e(run_id)}</a>{mark}</td>'
            f"<td>{_status(m.get('status'), lang)}{_unreadable_note(m)}</td>"
            f"<td>{_e(m.get('label') or '')}</td>"
            f"<td>{_e(m.get('as_of', ''))}</td><td>{_e(m.get('dataset', ''))}</td>"
            f'<td class="num">{ok}/{total}</td>'
            f'<td class="num">{_e(_seconds(m.get("duration_s")))}</td></tr>'
        )
    if rows:
        table = (
            "<table><tr>"
            + "".join(
                f"<th>{_e(t(key, lang))}</th>"
                for key in ("header.run_id", "header.status", "index.label", "header.as_of")
            )
            + f"<th>{_e(t('header.dataset', lang))}</th>"
            + "".join(
                f'<th class="num">{_e(t(key, lang))}</th>'
                for key in ("index.reports", "index.duration")
            )
            + "</tr>"
            + "".join(rows)
            + "</table>"
        )
    else:
        table = f"<p>{_e(t('index.no_runs', lang))}</p>"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f'<header class="kam-header"><h1>{_e(title)}</h1>'
        f"<dl><div><dt>{_e(t('header.generated', lang))}</dt><dd>{_e(stamp)}</dd></div></dl></header>"
        + table
    )
    return _page(title, body, lang)
