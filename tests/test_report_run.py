"""End to end: ``kam run`` on generated data with the real notebooks, read in a browser.

One English run of every report plus two account plans on a 300-account
dataset whose account names carry an HTML payload, and one Japanese
account-plan run with personal data switched on. Checks what a stakeholder
receives: every page loads in headless Chromium without console messages and
has its header, navigation, tables and embedded charts; data is escaped; no
stakeholder name or e-mail is anywhere in the run folder unless switched on;
Japanese text renders without missing glyphs.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from kam_analysis.pipeline import browser_check, find_chromium
from kam_analysis.plots import t

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
# Markdown and math that survive HTML escaping: a link, a remote image, a heading, mathtext
MARKDOWN = (
    "[Open](javascript:alert(1)) ![x](https://example.invalid/p.png) "
    "**b** $\\unicode{x41}$\n\n## Injected"
)

pytestmark = [pytest.mark.notebook, pytest.mark.slow]
needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="Chromium not installed (apt-get install -y chromium)"
)


def kam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kam_analysis.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )


def _rewrite(path: Path, replace: str) -> None:
    tmp = path.with_suffix(".hostile.parquet")
    duckdb.sql(f"COPY (SELECT * REPLACE ({replace}) FROM '{path}') TO '{tmp}' (FORMAT parquet)")
    tmp.replace(path)


@pytest.fixture(scope="module")
def hostile_dataset(tmp_path_factory) -> Path:
    """Generated data; every text value shown on a page carries HTML and Markdown attacks.

    Account names start with a script tag and end with a Markdown link, image,
    emphasis, mathtext and a heading; industries, regions and product lines
    carry the Markdown payload too. The texts of the account plans' sections do
    both: objectives, their owners and free-text metrics, our team members
    (the same attacked names in ``account_team`` and as owners, so the data stay
    valid) and the stakeholders' concerns.
    """
    from kam_analysis.core.schemas import OBJECTIVE_METRICS
    from kam_analysis.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("e2e") / "demo"
    generate_dataset(out, n_accounts=300, seed=5)
    md = MARKDOWN.replace("'", "''")
    _rewrite(
        out / "accounts.parquet",
        f"'{PAYLOAD} ' || name || ' {md}' AS name, industry || ' {md}' AS industry, "
        f"region || ' {md}' AS region",
    )
    for table in ("transactions", "opportunities", "contracts"):
        _rewrite(out / f"{table}.parquet", f"product_line || ' {md}' AS product_line")

    def attack(column: str) -> str:
        return f"'{PAYLOAD} ' || {column} || ' {md}' AS {column}"

    _rewrite(
        out / "stakeholders.parquet",
        f"product_line || ' {md}' AS product_line, {attack('concerns')}",
    )
    measured = ", ".join(f"'{m}'" for m in OBJECTIVE_METRICS)
    _rewrite(
        out / "account_objectives.parquet",
        f"{attack('objective')}, {attack('owner')}, CASE WHEN metric IN ({measured}) "
        f"THEN metric ELSE '{PAYLOAD} ' || metric || ' {md}' END AS metric",
    )
    _rewrite(out / "account_team.parquet", attack("member"))
    return out


@pytest.fixture(scope="module")
def people(hostile_dataset) -> list[str]:
    frame = pd.read_parquet(hostile_dataset / "stakeholders.parquet")
    values = pd.concat([frame["name"], frame["email"]]).dropna().astype(str)
    return sorted(v for v in values.unique() if len(v) >= 4)


@pytest.fixture(scope="module")
def english_run(hostile_dataset, tmp_path_factory) -> Path:
    reports = tmp_path_factory.mktemp("reports")
    proc = kam(
        "run",
        "--data",
        str(hostile_dataset),
        "--reports-dir",
        str(reports),
        "--label",
        "e2e",
        "--jobs",
        "2",
        "--account-plans",
        "2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (reports / "latest").resolve()


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text(encoding="utf-8"))


def test_every_report_and_plan_published_and_checked(english_run):
    m = manifest(english_run)
    names = [nb["name"] for nb in m["notebooks"]]
    configured = ["01_account_valuation", "02_segmentation", "03_ltv_forecasting"]
    assert names[:3] == configured and len(names) == 7, names
    assert sum(n.startswith("10_account_plan--") for n in names) == 2
    assert m["status"] == "ok" and all(nb["status"] == "ok" for nb in m["notebooks"])
    assert m["personal_data_check"] == "passed"
    plans = [nb for nb in m["notebooks"] if nb["account_id"]]
    assert all(nb["account_name"].startswith(PAYLOAD) for nb in plans)
    for entry in m["notebooks"]:  # the header shows the title; the notebook's own is dropped
        page = (english_run / f"{entry['name']}.html").read_text(encoding="utf-8")
        assert page.count("<h1") == 1, entry["name"]


def test_the_portfolio_is_computed_once_per_run_and_read_by_every_page(english_run):
    # the run built its state (features, scored book, LTV fit) before the notebooks, and
    # every page's context read it instead of fitting the LTV models again
    m = manifest(english_run)
    state = m["state"]
    assert state["status"] == "ok", state
    assert {"features", "scored", "monthly"} <= set(state["tables"])
    assert "ltv_values" in state["objects"] and len(state["key"]) == 64
    used = {nb["name"]: (nb.get("recorded") or {}).get("run_state") for nb in m["notebooks"]}
    assert set(used.values()) == {"used"}, used
    # the state lived in the run's working folder, which is not published
    assert not (english_run / ".work").exists()


def test_data_is_escaped_everywhere(english_run):
    pages = sorted(english_run.glob("*.html"))
    assert len(pages) == 8  # 5 reports, 2 plans, the run index
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert PAYLOAD not in text, page.name
        assert "<script" not in text.lower(), page.name  # reports carry no script at all
    for name in ("01_account_valuation.html", "index.html"):
        assert ESCAPED in (english_run / name).read_text(encoding="utf-8"), name
    for plan in english_run.glob("10_account_plan--*.html"):
        assert f"<h1>Account plan: {ESCAPED}" in plan.read_text(encoding="utf-8")


def _page_text(page: Path) -> str:
    """The text a reader sees: tags dropped, entities unescaped, blanks collapsed."""
    markup = re.sub(r'src="data:[^"]*"', "", page.read_text(encoding="utf-8"))
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def test_plan_sections_show_attacked_texts_as_typed(english_run, hostile_dataset):
    goals = pd.read_parquet(hostile_dataset / "account_objectives.parquet")
    team = pd.read_parquet(hostile_dataset / "account_team.parquet")
    concerns = pd.read_parquet(hostile_dataset / "stakeholders.parquet")
    assert goals["objective"].str.startswith(PAYLOAD).all()
    assert team["member"].str.startswith(PAYLOAD).all()
    plans = [nb for nb in manifest(english_run)["notebooks"] if nb["account_id"]]
    assert len(plans) == 2
    for nb in plans:
        text = _page_text(english_run / f"{nb['name']}.html")
        acc = nb["account_id"]
        shown = {
            "objective": goals.loc[goals["account_id"] == acc, "objective"],
            "owner": goals.loc[goals["account_id"] == acc, "owner"],
            "metric": goals.loc[
                (goals["account_id"] == acc) & goals["metric"].str.startswith(PAYLOAD), "metric"
            ],
            "member": team.loc[team["account_id"] == acc, "member"],
            "concerns": concerns.loc[concerns["account_id"] == acc, "concerns"].dropna(),
        }
        for column, values in shown.items():
            assert len(values), (nb["name"], column)
            typed = [" ".join(str(v).split()) for v in values]
            assert any(v in text for v in typed), (nb["name"], column, typed[0])


def test_no_personal_data_anywhere_in_the_run_folder(english_run, people):
    assert len(people) > 100
    leaks = {}
    for path in english_run.rglob("*"):
        if path.is_file() and path.suffix != ".png":
            text = path.read_text(encoding="utf-8", errors="replace")
            found = [p for p in people if p in text]
            if found:
                leaks[path.name] = found[:3]
    assert leaks == {}


def test_markdown_in_data_is_shown_as_typed(english_run):
    for page in sorted(english_run.glob("*.html")):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"href\s*=\s*[\"']?\s*javascript:", text, re.I), page.name
        sources = re.findall(r"<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']*)", text, re.I)
        assert all(src.startswith("data:") for src in sources), page.name
        assert "example.invalid" not in re.findall(r'(?:src|href)="([^"]*)"', text), page.name
        assert not re.search(r"<h\d[^>]*>\s*Injected", text), page.name  # no heading from data
        assert "<em>b</em>" not in text and "<strong>b</strong>" not in text, page.name
    valuation = (english_run / "01_account_valuation.html").read_text(encoding="utf-8")
    assert "[Open](javascript:alert(1))" in html.unescape(valuation)  # shown as typed
    assert "$\\unicode{x41}$" in html.unescape(valuation)


@needs_chromium
def test_pages_load_in_chromium_without_console_messages(english_run):
    index = browser_check(english_run / "index.html")
    assert (index.error, index.console, index.requests) == (None, [], [])
    for entry in manifest(english_run)["notebooks"]:
        page = english_run / f"{entry['name']}.html"
        assert f'href="{page.name}"' in index.dom
        seen = browser_check(page)
        assert seen.error is None and seen.console == [], (page.name, seen)
        assert seen.requests == [], (page.name, seen.requests)  # no network, not even tried
        assert not re.search(r"href=\"javascript:", seen.dom, re.I), page.name
        dom = seen.dom
        assert 'class="kam-header"' in dom and "<nav>" in dom, page.name
        assert dom.count("<h1") == 1, page.name  # the header's title only
        assert 'src="data:image/png;base64,' in dom, page.name
        assert "<table" in dom and "<script" not in dom, page.name
        assert "hl-ipython3" not in dom and "import " not in dom, page.name  # no code
        assert "Traceback" not in dom and "Warning:" not in dom, page.name


def test_screenshot_reports_console_messages(tmp_path):
    if find_chromium() is None:
        pytest.skip("Chromium not installed")
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><h1>x</h1><script>console.error('boom'); nope();</script></body></html>",
        encoding="utf-8",
    )
    png = tmp_path / "broken.png"
    seen = browser_check(page, screenshot=png)
    assert seen.error is None and png.read_bytes()[:4] == b"\x89PNG"
    assert len(seen.console) == 2
    assert '"boom"' in seen.console[0] and "ReferenceError: nope" in seen.console[1]


def test_japanese_plan_with_personal_data_switched_on(hostile_dataset, people, tmp_path):
    proc = kam(
        "run",
        "--data",
        str(hostile_dataset),
        "--reports-dir",
        str(tmp_path),
        "--lang",
        "ja",
        "--only",
        "account_plan",
        "--account-plans",
        "1",
        "--show-personal-data",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = (tmp_path / "latest").resolve()
    m = manifest(run)
    assert m["personal_data_check"] == "disabled (show_personal_data)"
    (entry,) = m["notebooks"]
    page = (run / f"{entry['name']}.html").read_text(encoding="utf-8")
    assert 'lang="ja"' in (run / "index.html").read_text(encoding="utf-8")
    for key in ("plan.h.actions", "plan.h.value", "plan.h.exposure"):
        assert t(key, "ja") in page
    assert f"<h1>アカウントプラン: {ESCAPED}" in page
    assert any(p in page for p in people)  # names shown when switched on
    executed = json.loads((run / f"{entry['name']}.ipynb").read_text(encoding="utf-8"))
    stderr = [
        "".join(o.get("text", ""))
        for c in executed["cells"]
        for o in c.get("outputs", [])
        if o.get("name") == "stderr"
    ]
    assert not any("missing from font" in s for s in stderr), stderr
