"""HTML pages of the report pipeline: export preparation and the run index."""

from __future__ import annotations

import re

from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
)

from kam_analysis.report import Page
from kam_analysis.report.html import (
    drop_unsafe_urls,
    export_notebook_html,
    prepare_for_export,
    run_index_page,
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def markdown_output(text: str):
    return new_output("display_data", data={"text/markdown": text, "text/plain": "<Markdown>"})


def test_displayed_title_is_dropped_but_the_rest_of_the_output_kept():
    nb = new_notebook(
        cells=[
            new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
            new_code_cell(
                "md(...)",
                outputs=[
                    markdown_output("# Account plan: Aoba\n\nRanked **2** of 2,000"),
                    markdown_output("# Second title stays"),
                ],
            ),
            new_code_cell("md('# later')", outputs=[markdown_output("# A later heading")]),
        ]
    )
    out = prepare_for_export(nb)
    first = out.cells[1].outputs
    assert first[0]["data"]["text/markdown"] == "\nRanked **2** of 2,000"
    assert first[1]["data"]["text/markdown"] == "# Second title stays"
    assert out.cells[2].outputs[0]["data"]["text/markdown"] == "# A later heading"
    assert nb.cells[1].outputs[0]["data"]["text/markdown"].startswith("# Account plan")


def test_title_only_output_is_removed_and_markdown_cell_title_dropped():
    only_title = new_notebook(
        cells=[new_code_cell("md", outputs=[markdown_output("# Valuation")]), new_code_cell("y")]
    )
    assert prepare_for_export(only_title).cells[0].outputs == []
    md_cell = new_notebook(cells=[new_markdown_cell("# Title\nIntro text"), new_code_cell("z")])
    assert prepare_for_export(md_cell).cells[0].source == "Intro text"


def test_title_kept_when_something_else_is_shown_first():
    nb = new_notebook(
        cells=[
            new_code_cell("print", outputs=[new_output("stream", name="stdout", text="hello\n")]),
            new_code_cell("md", outputs=[markdown_output("# Title")]),
        ]
    )
    assert prepare_for_export(nb).cells[1].outputs[0]["data"]["text/markdown"] == "# Title"
    h2 = new_notebook(cells=[new_markdown_cell("## Not a title")])
    assert prepare_for_export(h2).cells[0].source == "## Not a title"


def page_outputs(build) -> list:
    """The outputs a notebook cell gets from Page calls."""
    shown: list[dict] = []
    build(Page(lang="en", style=False, show=shown.append))
    return [new_output("display_data", data=bundle) for bundle in shown]


def test_page_title_element_is_dropped_like_a_markdown_title():
    outputs = page_outputs(
        lambda p: (p.h1("plan.title", name="Aoba"), p.say("plan.tier_reason", reason="x"))
    )
    later = page_outputs(lambda p: p.h1("ltv.title"))
    nb = new_notebook(
        cells=[
            new_code_cell("params", metadata={"tags": ["parameters"]}),
            new_code_cell("page.h1(...)", outputs=outputs),
            new_code_cell("page.h1(...)", outputs=later),
        ]
    )
    out = prepare_for_export(nb)
    kept = out.cells[1].outputs
    assert len(kept) == 1 and "Tier rule: x" in kept[0]["data"]["text/html"]
    assert out.cells[2].outputs[0]["data"]["text/html"].startswith('<h1 id="ltv-title"')
    assert len(nb.cells[1].outputs) == 2  # input not modified
    # a heading followed by more in the same output: only the heading goes
    mixed = new_output(
        "display_data", data={"text/html": '<h1 id="t">T</h1><p>rest</p>', "text/plain": "T"}
    )
    nb2 = new_notebook(cells=[new_code_cell("x", outputs=[mixed])])
    assert prepare_for_export(nb2).cells[0].outputs[0]["data"]["text/html"] == "<p>rest</p>"


def test_drop_unsafe_urls_removes_script_links_and_remote_images():
    page = (
        '<a href="javascript:alert(1)">a</a>'
        "<a href=' JaVa&#x09;Script:alert(2)' class=x>b</a>"
        "<a href=vbscript:msgbox(3)>c</a>"
        '<img src="https://host/p.png" alt="x">'
        "<IMG SRC=//host/q.png>"
        '<img alt="a > b" src="data:image/png;base64,AAAA" srcset="https://host/r.png 2x">'
        '<img src="x" onerror="alert(4)">'
        '<video poster="https://host/v.png"></video>'
        '<p onclick="alert(5)">keep</p>'
        '<a href="https://example.com/docs">docs</a><a href="#top">top</a><a href="02.html">02</a>'
    )
    assert drop_unsafe_urls(page) == (
        "<a>a</a><a class=x>b</a><a>c</a>"
        '<img alt="a > b" src="data:image/png;base64,AAAA">'
        "<video></video><p>keep</p>"
        '<a href="https://example.com/docs">docs</a><a href="#top">top</a><a href="02.html">02</a>'
    )


def test_export_keeps_no_script_url_and_no_remote_image():
    hostile = new_output(
        "display_data",
        data={
            "text/html": '<a href="javascript:alert(1)">x</a><img src="https://host/p.png">'
            f'<img src="data:image/png;base64,{PNG}" alt="chart">',
            "text/plain": "x",
        },
    )
    nb = new_notebook(
        cells=[
            new_markdown_cell("[Open](javascript:alert(1)) ![x](https://host/p.png)"),
            new_code_cell("x", outputs=[hostile]),
        ]
    )
    page = export_notebook_html(nb, title="T", header="<header>h</header>")
    assert "javascript:" not in page.lower()
    assert "https://host/p.png" not in page
    (image,) = re.findall(r"<img\b[^>]*>", page)  # nbconvert rewrites the tag
    assert f'src="data:image/png;base64,{PNG}"' in image and 'alt="chart"' in image
    assert ">Open<" in page  # the link text stays, without its target


def manifest(errors: bool) -> dict:
    return {
        "run_id": "20260101T000000Z-x",
        "status": "failed" if errors else "ok",
        "as_of": "2026-03-31",
        "dataset": "demo",
        "notebooks": [
            {
                "title": "Valuation",
                "status": "failed" if errors else "ok",
                "duration_s": 12.34,
                "outputs": ["01.html"],
                "error": "ValueError: <boom>" if errors else None,
            },
            {
                "title": "Plan",
                "account_id": "C1",
                "account_name": "Aoba & Sons",
                "status": "ok",
                "duration_s": 150.0,
                "outputs": ["10--C1.html"],
                "error": None,
            },
        ],
    }


def test_run_index_shows_error_column_only_when_a_report_failed():
    ok = run_index_page(manifest(errors=False))
    assert "Error" not in ok and "12.3 s" in ok and "2.5 min" in ok
    assert '<a href="10--C1.html">Aoba &amp; Sons</a> <span class="muted">C1</span>' in ok
    assert "<th class=num>Duration</th>" in ok
    failed = run_index_page(manifest(errors=True))
    assert "<th>Error</th>" in failed and "ValueError: &lt;boom&gt;" in failed
    # the plans table has no failure, so only the reports table carries the column
    assert failed.count("<th>Error</th>") == 1
