"""The report notebooks: how they are written, and that they run clean.

Fast checks read the committed notebooks: one :class:`Page` per notebook and
no home-made text helpers (``T``, ``money``, ``table``, ``esc``,
``Markdown(...)``), Markdown cells for analysts only (tagged ``remove-cell``,
one before every section). (``test_packaging`` checks that no outputs are
committed.)

Slow checks execute every notebook with papermill (parameters injected like
``kam run`` does), in the ``kam-analysis`` kernel that ``make`` registers. A
notebook passes when no cell raised, every code cell ran (a ``sys.exit(0)``
would stop silently), and no warning or log line leaked into the outputs a
stakeholder would read. Account names that attack Markdown, HTML and mathtext
reach the page as text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "kam-analysis"
# per-notebook extra parameters for the smoke run
EXTRA_PARAMETERS: dict[str, dict] = {}

# what each notebook used to define for itself; Page provides all of it
HOME_MADE_HELPERS = re.compile(
    r"^(?:def\s+(?:T|money|table|esc|md|heading|tier_label|cols)\b"
    r"|(?:T|money|table|esc|md|heading|tier_label|cols|pct|skip)\s*=\s*lambda)",
    re.MULTILINE,
)
# text reaches the page only through Page: never through a Markdown renderer
RAW_DISPLAY = re.compile(r"\bMarkdown\(|\bHTML\(|\bdisplay\(|plt\.show\(|^import html$", re.M)


def _load(name: str) -> dict:
    return json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_uses_one_page_and_no_home_made_text_helpers(name):
    nb = _load(name)
    code = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    assert len(re.findall(r"\bpage = Page\(", code)) == 1
    assert HOME_MADE_HELPERS.findall(code) == []
    assert RAW_DISPLAY.findall(code) == []
    assert "set_report_style" not in code  # Page applies the report style
    long = [line for line in code.splitlines() if len(line) > 100]
    assert long == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_markdown_cells_are_for_analysts_and_precede_every_section(name):
    cells = _load(name)["cells"]
    markdown = [c for c in cells if c["cell_type"] == "markdown"]
    assert markdown and all("remove-cell" in _tags(c) for c in markdown)
    assert _source(markdown[0]).startswith("# ") and cells[0] is markdown[0]
    # every section (a page.h2 call) has an analyst note since the previous one
    note_since_section = True
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            note_since_section = True
        elif "page.h2(" in _source(cell):
            assert note_since_section, f"cell {i} starts a section without a Markdown cell"
            note_since_section = False


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    from kam_analysis.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("nb") / "demo"
    generate_dataset(out, n_accounts=400, seed=11)
    return out


def _executed_problems(nb: dict) -> list[str]:
    problems = []
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] != "code" or not source.strip():
            continue
        if cell.get("execution_count") is None:
            problems.append(f"cell {i} did not run")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i} raised {out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                problems.append(f"cell {i} wrote to stderr: {''.join(out.get('text', ''))[:300]}")
    return problems


def run_notebook(name: str, data_dir: Path, out_dir: Path, **parameters) -> dict:
    import papermill as pm

    output = out_dir / name
    pm.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(output),
        parameters={"data_dir": str(data_dir), **parameters},
        kernel_name=KERNEL,
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        execution_timeout=600,
    )
    return json.loads(output.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", NOTEBOOKS)
@pytest.mark.notebook
@pytest.mark.slow
def test_notebook_runs_clean(name, small_dataset, tmp_path):
    nb = run_notebook(name, small_dataset, tmp_path, **EXTRA_PARAMETERS.get(name, {}))
    assert _executed_problems(nb) == []


# names that attack Markdown (links, images, headings, emphasis), HTML and mathtext
HOSTILE_PREFIXES = [
    "[Open](javascript:alert(1))",
    "![x](https://host/p.png)",
    "**not bold** `not code`\n\n## Injected",
    "<script>alert(1)</script>",
]
MATHTEXT = r"$\unicode{x41}$"


@pytest.fixture(scope="session")
def hostile_dataset(tmp_path_factory) -> Path:
    """Generated data whose account names and plan texts carry Markdown/HTML and mathtext.

    Attacked: account names, stakeholder concerns, objective texts, free-text
    metrics, our team members and the objective owners.
    """
    import pandas as pd

    from kam_analysis.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("nb-hostile") / "demo"
    generate_dataset(out, n_accounts=300, seed=5)
    accounts = pd.read_parquet(out / "accounts.parquet")
    prefixes = [HOSTILE_PREFIXES[i % len(HOSTILE_PREFIXES)] for i in range(len(accounts))]
    accounts["name"] = [
        f"{p} {MATHTEXT} {n}" for p, n in zip(prefixes, accounts["name"], strict=True)
    ]
    accounts.to_parquet(out / "accounts.parquet", index=False)

    def attack(values, i0: int = 0) -> list:  # the free-text columns of the plan tables
        return [
            None
            if v is None
            else f"{HOSTILE_PREFIXES[(i0 + i) % len(HOSTILE_PREFIXES)]} {MATHTEXT} {v}"
            for i, v in enumerate(values)
        ]

    people = pd.read_parquet(out / "stakeholders.parquet")
    people["concerns"] = attack(people["concerns"])
    people.to_parquet(out / "stakeholders.parquet", index=False)
    goals = pd.read_parquet(out / "account_objectives.parquet")
    goals["objective"] = attack(goals["objective"])
    free = ~goals["metric"].isin(["revenue_12m"])
    goals.loc[free, "metric"] = attack(goals.loc[free, "metric"], 1)
    team = pd.read_parquet(out / "account_team.parquet")
    members = dict(zip(team["member"], attack(team["member"], 2), strict=True))
    team["member"] = team["member"].map(members)  # owners stay members of the team
    goals["owner"] = goals["owner"].map(members)
    team.to_parquet(out / "account_team.parquet", index=False)
    goals.to_parquet(out / "account_objectives.parquet", index=False)
    return out


def _shown_html(nb: dict) -> str:
    parts = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "remove-cell" in _tags(cell):
            continue
        for out in cell.get("outputs", []):
            markup = out.get("data", {}).get("text/html")
            if markup is not None:
                parts.append("".join(markup) if isinstance(markup, list) else markup)
            assert "text/markdown" not in out.get("data", {})  # Page never emits Markdown
    return "\n".join(parts)


@pytest.mark.parametrize("name", NOTEBOOKS)
@pytest.mark.notebook
@pytest.mark.slow
def test_hostile_account_names_reach_the_page_as_text(name, hostile_dataset, tmp_path):
    nb = run_notebook(name, hostile_dataset, tmp_path, **EXTRA_PARAMETERS.get(name, {}))
    assert _executed_problems(nb) == []  # mathtext in a name raised ParseFatalException
    page = _shown_html(nb)
    assert "<a " not in page and "href=" not in page  # the link syntax stayed text
    assert re.findall(r"<img\b[^>]*\bsrc=\"(?!data:)", page) == []
    assert "<script" not in page and "<strong>not bold</strong>" not in page
    assert re.findall(r"<h[1-6](?! id=\"[a-z0-9-]+\" class=\"tex2jax_ignore)", page) == []
    assert MATHTEXT in page  # shown as typed (and never typeset: see MATH_OFF_CLASSES)


# --------------------------------------------------------------------------- honest degradation

REAL_CDNOW = ROOT / "tests" / "data" / "real" / "cdnow"
# what no page may show (issue 12): missing or infinite numbers as code words, Markdown asterisks
FORBIDDEN_TEXT = {
    "nan": re.compile(r"\bnan\b", re.IGNORECASE),
    "inf": re.compile(r"\binf\b", re.IGNORECASE),
    "None": re.compile(r"\bNone\b"),
    "**": re.compile(r"\*\*"),
}
PERCENT = re.compile(r"([+-]?\d[\d,]*(?:\.\d+)?)\s?%")


def _shown_text(nb: dict) -> str:
    import html

    markup = re.sub(r'src="data:[^"]*"', "", _shown_html(nb))
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def _text_problems(text: str) -> list[str]:
    found = [label for label, pattern in FORBIDDEN_TEXT.items() if pattern.search(text)]
    found += [m.group(0) for m in PERCENT.finditer(text) if abs(float(m[1].replace(",", ""))) > 1e3]
    return found


@pytest.fixture
def cdnow_copy(tmp_path) -> Path:
    """The real CDNOW sample (no cost, no product line, no accounts file), copied."""
    import shutil

    return Path(
        shutil.copytree(REAL_CDNOW, tmp_path / "cdnow", ignore=shutil.ignore_patterns("_*"))
    )


# CDNOW as of its last line (gross profit unknown), and two years later (no account has
# revenue in the last 12 months): each page says what it cannot show and why
CDNOW_CASES = [
    (
        "03_ltv_forecasting.ipynb",
        "",
        "en",
        [
            "the data have no cost, so this LTV is revenue, not gross profit",
            "Expected discounted revenue over 5 years per account",
            "Backtest cut-off 1997-06-30 skipped",
        ],
    ),
    (
        "04_scenario_planning.ipynb",
        "",
        "en",
        [
            "gross profit is unknown (no cost data)",
            "Gross-profit concentration is unknown (no cost data).",
            "its gross margin is unknown (no cost data)",
            "Pricing schemes are compared on gross profit",
            "our expected revenue over 36 months for the whole book",
        ],
    ),
    (
        "10_account_plan.ipynb",
        "",
        "en",
        ["(revenue, no cost data)", "Price-cut effects are not shown", "Gross profit and margin"],
    ),
    (
        "02_segmentation.ipynb",
        "2000-06-30",
        "en",
        ["so revenue concentration cannot be measured"],
    ),
    (
        "03_ltv_forecasting.ipynb",
        "2000-06-30",
        "en",
        ["the data have no cost, so this LTV is revenue, not gross profit"],
    ),
    (
        "04_scenario_planning.ipynb",
        "2000-06-30",
        "en",
        [
            "there is no run-rate to project and no target to miss",
            "so concentration cannot be measured",
            "the account-loss table is skipped",
            "the negotiation, pricing and ROI sections are skipped",
        ],
    ),
    (
        "04_scenario_planning.ipynb",
        "2000-06-30",
        "ja",
        ["予測の起点となる売上水準も目標もありません"],
    ),
    (
        "10_account_plan.ipynb",
        "2000-06-30",
        "en",
        ["No revenue in the last 12 months.", "losing it now would cost nothing"],
    ),
]


@pytest.mark.parametrize(("name", "as_of", "lang", "expected"), CDNOW_CASES)
@pytest.mark.notebook
@pytest.mark.slow
def test_pages_without_cost_or_recent_revenue_say_why(
    name, as_of, lang, expected, cdnow_copy, tmp_path
):
    extra = {"draws": 300} if name.startswith("04") else {}
    nb = run_notebook(name, cdnow_copy, tmp_path, as_of=as_of, lang=lang, **extra)
    assert _executed_problems(nb) == []
    text = _shown_text(nb)
    assert _text_problems(text) == []
    for sentence in expected:
        assert sentence in text
