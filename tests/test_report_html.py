"""HTML pages of the report pipeline: export preparation and the run index."""

from __future__ import annotations

from nbformat.v4 import (
    new_code_cell,
    new_markdown_cell,
    new_notebook,
    new_output,
)

from kam_analysis.report_html import prepare_for_export, run_index_page


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
