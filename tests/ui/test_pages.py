"""The web UI end to end: a real server on a localhost port, Debian's headless Chromium.

One server per module (SQLite and files under a temporary LEPTONIC_HOME), seeded
through the REST API with a workspace, a generated applicants dataset, a finished
training run and its registered model. Each test drives a fresh browser context
and checks, on teardown, that no request left the server and that the page logged
no script errors or Content-Security-Policy violations.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "the UI tests need Debian's Chromium: apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the UI tests need Playwright: pip install playwright"
)
import uvicorn  # noqa: E402

from leptonic import Settings  # noqa: E402
from leptonic.api import create_app  # noqa: E402
from leptonic.api.auth import BOOTSTRAP_TOKEN_FILE  # noqa: E402
from leptonic.synthetic import write_applicants_csv  # noqa: E402

expect = sync_api.expect
expect.set_options(timeout=20_000)
Page = sync_api.Page

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TRAIN = {"target": "default", "candidates": ["logistic"], "trials": 2}
WAIT_MS = 30_000


@dataclass
class LiveServer:
    """A server on ``url`` with its admin token and the ids of the seeded objects."""

    url: str
    home: Path
    token: str
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    def api(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=60,
        )


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, ws="none", http="h11", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    host, port = sock.getsockname()
    return server, thread, sock, f"http://{host}:{port}"


def _wait_for_run(client: httpx.Client, ws: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"/workspaces/{ws}/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} did not finish")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("home")
    app = create_app(Settings.for_home(home), workers=1, poll_interval=0.05)
    uv, thread, sock, url = _serve(app)
    try:
        token = (home / BOOTSTRAP_TOKEN_FILE).read_text().strip()
        live = LiveServer(url, home, token)
        _seed(live, tmp_path_factory.mktemp("data"))
        yield live
    finally:
        uv.should_exit = True
        thread.join(30)
        sock.close()


def _seed(live: LiveServer, data: Path) -> None:
    csv = write_applicants_csv(data / "applicants.csv", n=1500)
    with live.api() as admin:
        admin.post(
            "/workspaces", json={"name": "credit", "description": "Credit risk team"}
        ).raise_for_status()
        admin.post(
            "/workspaces/credit/datasets/applicants/versions",
            params={"target": "default", "filename": csv.name},
            content=csv.read_bytes(),
        ).raise_for_status()
        r = admin.post(
            "/workspaces/credit/runs",
            json={"dataset": "applicants", "spec": TRAIN, "model": "scorecard"},
        )
        r.raise_for_status()
        run = _wait_for_run(admin, "credit", r.json()["run_id"])
        assert run["status"] == "succeeded", run
        live.ids["run"] = run["id"]
        live.ids["test_auc"] = run["metrics"]["test"]["auc"]
        admin.post("/users", json={"name": "vera"}).raise_for_status()
        admin.put("/workspaces/credit/members/vera", json={"role": "viewer"}).raise_for_status()
        r = admin.post("/users/vera/tokens", json={"name": "ui-test"})
        r.raise_for_status()
        live.tokens["vera"] = r.json()["secret"]
        admin.post("/users", json={"name": "dave"}).raise_for_status()
        admin.put("/workspaces/credit/members/dave", json={"role": "developer"}).raise_for_status()
        r = admin.post("/users/dave/tokens", json={"name": "ui-test"})
        r.raise_for_status()
        live.tokens["dave"] = r.json()["secret"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: LiveServer) -> Iterator[Page]:
    """A fresh browser tab that records every request and every script problem."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=server.url, locale="en-US"
    )
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    tab.on("request", lambda r: requests.append(r.url))
    tab.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))

    def on_console(msg: Any) -> None:
        text = msg.text
        if "Content Security Policy" in text or (
            msg.type == "error" and not text.startswith("Failed to load resource")
        ):
            problems.append(f"console {msg.type}: {text}")

    tab.on("console", on_console)
    yield tab
    context.close()
    outside = [
        u for u in requests if not u.startswith((server.url + "/", "data:", "blob:", "about:"))
    ]
    assert not outside, f"requests left the server: {outside}"
    assert not problems, problems


def sign_in(page: Page, token: str, route: str = "") -> None:
    page.goto(f"/{route}")
    expect(page.get_by_role("heading", name="Sign in to Leptonic")).to_be_visible()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def banner(page: Page) -> Any:
    return page.locator("#banner")


# -- tests ------------------------------------------------------------------------------
def test_sign_in_rejects_a_bad_token_then_signs_in_and_out(page: Page, server: LiveServer) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"#/signin"))
    page.get_by_label("API token").fill("lep_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(banner(page)).to_be_visible()
    expect(banner(page)).to_contain_text("unknown API token")

    page.get_by_label("API token").fill(server.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Workspaces", exact=True)).to_be_visible()
    expect(banner(page)).to_be_hidden()
    row = page.get_by_role("row").filter(has_text="credit")
    expect(row).to_contain_text("Credit risk team")
    expect(page.locator("#account")).to_contain_text("Platform admin")
    assert page.evaluate("sessionStorage.getItem('leptonic.token')") == server.token

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Leptonic")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('leptonic.token')") is None


def test_sign_in_refuses_a_token_with_a_stray_character(page: Page, server: LiveServer) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to Leptonic")).to_be_visible()
    for pasted, code in ((server.token + "\u200b", "U+200B"), ("lep_\u2026", "U+2026")):
        page.get_by_label("API token").fill(pasted)
        page.get_by_role("button", name="Sign in").click()
        expect(banner(page)).to_contain_text("not plain ASCII")
        expect(banner(page)).to_contain_text(code)
        expect(banner(page)).not_to_contain_text("cannot reach")
        expect(page.get_by_role("heading", name="Sign in to Leptonic")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('leptonic.token')") is None

    page.get_by_label("API token").fill(f"  {server.token}  ")  # surrounding spaces are trimmed
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('leptonic.token')") == server.token

    # A stored token the browser cannot put in a header: back to sign-in, saying why.
    page.evaluate("sessionStorage.setItem('leptonic.token', 'lep_x\\u200b')")
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to Leptonic")).to_be_visible()
    expect(banner(page)).to_contain_text("invalid API token")
    expect(banner(page)).not_to_contain_text("cannot reach")


def test_a_malformed_address_shows_the_not_found_page(page: Page, server: LiveServer) -> None:
    sign_in(page, server.token, "#/w/credit%/datasets")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.locator("#main")).to_contain_text("malformed %-escape")

    page.goto("/#/w/credit/datasets")
    expect(page.get_by_role("link", name="applicants")).to_be_visible()


def test_a_deep_link_signs_in_then_opens_and_api_errors_show_in_the_banner(
    page: Page, server: LiveServer
) -> None:
    sign_in(page, server.token, "#/w/nope/datasets")
    expect(banner(page)).to_contain_text("workspace 'nope' not found")
    expect(page).to_have_url(re.compile(r"#/w/nope/datasets$"))

    response = page.request.get(f"{server.url}/ui/anything")
    assert response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_dataset_page_shows_schema_quality_pii_preview_and_lineage(
    page: Page, server: LiveServer
) -> None:
    sign_in(page, server.token, "#/w/credit/datasets")
    page.get_by_role("link", name="applicants").click()
    expect(page.get_by_role("heading", name="applicants v1")).to_be_visible()

    schema = page.get_by_role("region", name="Schema")
    expect(schema.locator("tbody tr")).to_have_count(24)
    email = schema.get_by_role("row").filter(has=page.get_by_text("email", exact=True))
    expect(email).to_contain_text("PII · email")
    expect(schema.get_by_role("row").filter(has_text="default")).to_contain_text("target")

    quality = page.get_by_role("region", name="Quality report")
    expect(quality).to_contain_text("monthly_debt")
    expect(quality).to_contain_text("1.5 x IQR")
    expect(quality.get_by_role("row").filter(has_text="employment_years")).to_contain_text("5.3%")

    pii = page.get_by_role("region", name="PII map")
    expect(pii.locator("tbody tr")).to_have_count(4)
    expect(pii).to_contain_text("national_id")

    preview = page.locator("section").filter(has=page.get_by_role("heading", name="Preview"))
    expect(preview).to_contain_text("Personal data is masked")
    expect(preview.locator("tbody tr")).to_have_count(20)
    masked = preview.locator(".masked")
    expect(masked.first).to_be_visible()
    cells = masked.all_inner_texts()
    assert len(cells) == 20 * 4
    assert all(re.fullmatch(r"[0-9a-f]{16}", c) for c in cells), cells[:4]
    preview.get_by_role("button", name="Show raw personal data").click()
    expect(preview).to_contain_text("@")

    lineage = page.locator("section").filter(has=page.get_by_role("heading", name="Lineage"))
    run_link = lineage.get_by_role("link", name=f"run {server.ids['run'][:8]}")
    expect(run_link).to_have_attribute("href", f"#/w/credit/runs/{server.ids['run']}")
    expect(lineage.get_by_role("link", name="model scorecard v1")).to_be_visible()


def test_run_page_shows_metrics_and_the_report_plots(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    sign_in(page, server.token, "#/w/credit/runs")
    page.get_by_role("link", name=server.ids["run"][:8]).click()
    expect(page.locator("#run-status")).to_have_text("succeeded")

    metrics = page.get_by_role("region", name="Metrics", exact=True)
    auc = metrics.get_by_role("row").filter(has=page.get_by_text("auc", exact=True))
    expect(auc).to_contain_text(f"{server.ids['test_auc']:.4f}".rstrip("0"))
    expect(metrics.get_by_role("columnheader")).to_have_text(["Metric", "valid", "test"])

    plots = page.locator(".plots img")
    expect(plots).to_have_count(4)
    alts = [plots.nth(k).get_attribute("alt") or "" for k in range(4)]
    for name in ("ROC", "KS", "Calibration", "Score distribution"):
        assert any(name in alt for alt in alts), (name, alts)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.plots img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(page.get_by_role("region", name="Leaderboard")).to_contain_text("logistic")
    lineage = page.get_by_role("region", name="Lineage")
    expect(lineage.get_by_role("link", name="dataset applicants v1")).to_be_visible()

    shot = tmp_path / "run-page.png"
    page.screenshot(path=str(shot), full_page=True, caret="initial")
    assert shot.stat().st_size > 10_000


def test_training_started_in_the_ui_shows_live_progress_until_it_succeeds(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    sign_in(page, server.token, "#/w/credit/datasets/applicants")
    form = page.get_by_role("region", name="Train a model")
    expect(form.get_by_label("Target column")).to_have_value("default")
    form.get_by_label("Trials").fill("2")
    form.get_by_label("Register as model").fill("ui-scorecard")
    form.get_by_role("button", name="Start training").click()

    expect(page).to_have_url(re.compile(r"#/w/credit/runs/[0-9a-f]{32}$"))
    expect(banner(page)).to_contain_text("queued")
    expect(page.locator("#run-progress")).to_be_attached()
    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=90_000)
    expect(page.locator("#run-progress")).to_have_attribute("value", "2")
    expect(page.locator(".log")).to_contain_text("registered ui-scorecard v1")
    expect(page.locator(".plots img")).to_have_count(4)
    page.screenshot(path=str(tmp_path / "trained-run.png"), full_page=True)


def test_model_page_renders_the_card_and_promotes_through_the_form(
    page: Page, server: LiveServer
) -> None:
    sign_in(page, server.token, "#/w/credit/models")
    page.get_by_role("link", name="scorecard", exact=True).click()
    card = page.get_by_role("article", name="Model card")
    expect(card.get_by_role("heading", name="Model card: scorecard", level=1)).to_be_visible()
    expect(card.get_by_role("heading", name="Performance", level=2)).to_be_visible()
    expect(card.get_by_role("columnheader", name="auc", exact=True)).to_be_visible()
    expect(card.locator("li code").first).to_have_text("age")
    expect(page.locator("#model-stage")).to_have_text("candidate")

    form = page.get_by_role("form", name="Change stage")
    form.get_by_label("New stage").select_option("staging")
    form.get_by_label("Reason").fill("Validated on the Q3 holdout <b>not bold</b>")
    form.get_by_role("button", name="Change stage").click()

    expect(banner(page)).to_contain_text("scorecard v1 is now in staging")
    expect(page.locator("#model-stage")).to_have_text("staging")
    history = page.get_by_role("region", name="Stage history")
    row = history.locator("tbody tr").first
    expect(row).to_contain_text("Validated on the Q3 holdout <b>not bold</b>")
    expect(row).to_contain_text("admin")
    expect(row).to_contain_text("candidate → staging")

    form = page.get_by_role("form", name="Change stage")
    form.get_by_label("New stage").select_option("production")
    form.get_by_role("button", name="Change stage").click()  # no reason: the browser refuses
    expect(page.locator("#model-stage")).to_have_text("staging")


_NEXT_STAGE = {
    "candidate": "staging",
    "staging": "production",
    "production": "archived",
    "archived": "candidate",
}


def _move_scorecard_to(server: LiveServer, target: str) -> None:
    """Move scorecard v1 (as the admin) along allowed transitions until it is in ``target``."""
    url = "/workspaces/credit/models/scorecard/versions/1"
    with server.api() as admin:
        stage = admin.get(url).json()["stage"]
        while stage != target:
            r = admin.post(
                f"{url}/stage", json={"stage": _NEXT_STAGE[stage], "reason": "UI test setup"}
            )
            r.raise_for_status()
            stage = r.json()["stage"]


def test_a_developer_is_offered_only_the_stage_changes_the_server_allows(
    page: Page, server: LiveServer
) -> None:
    dave = server.tokens["dave"]
    try:
        _move_scorecard_to(server, "production")
        sign_in(page, dave, "#/w/credit/models/scorecard/1")
        for stage in ("production", "archived"):
            if stage == "archived":
                _move_scorecard_to(server, "archived")
                page.reload()
            expect(page.locator("#model-stage")).to_have_text(stage)
            expect(page.get_by_role("form", name="Change stage")).to_have_count(0)
            note = page.get_by_role("region", name="Change stage", exact=True)
            expect(note).to_contain_text(f"Moving v1 out of {stage} needs the admin role")
            with server.api(dave) as dev:  # the server refuses what the form no longer offers
                back = "staging" if stage == "production" else "candidate"
                r = dev.post(
                    "/workspaces/credit/models/scorecard/versions/1/stage",
                    json={"stage": back, "reason": "try"},
                )
                assert r.status_code == 403, r.text

        _move_scorecard_to(server, "candidate")
        page.reload()
        expect(page.locator("#model-stage")).to_have_text("candidate")
        form = page.get_by_role("form", name="Change stage")
        expect(form.get_by_label("New stage").locator("option")).to_have_text(["staging"])
    finally:
        _move_scorecard_to(server, "candidate")


def test_audit_log_filters_and_pages(page: Page, server: LiveServer) -> None:
    sign_in(page, server.token, "#/audit?limit=3")
    events = page.get_by_role("region", name="Events")
    expect(events.locator("tbody tr")).to_have_count(3)
    expect(events).to_contain_text("Showing 1–3")
    events.get_by_role("link", name="Next →").click()
    expect(events).to_contain_text("Showing 4–6")
    expect(page).to_have_url(re.compile(r"offset=3"))

    page.goto("/#/audit")
    page.get_by_label("Action").fill("dataset.add")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=dataset\.add"))
    rows = page.get_by_role("region", name="Events").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("dataset applicants v1")
    expect(rows.first.get_by_role("link", name="dataset applicants v1")).to_have_attribute(
        "href", "#/w/credit/datasets/applicants/1"
    )

    page.goto("/#/w/credit/audit")
    rows = page.get_by_role("region", name="Events").locator("tbody tr")
    expect(rows.filter(has_text="run.train").first).to_be_visible()
    expect(rows.filter(has_text="token.create")).to_have_count(0)


def test_a_viewer_sees_masked_data_and_no_forms(page: Page, server: LiveServer) -> None:
    sign_in(page, server.tokens["vera"], "#/w/credit/datasets/applicants")
    expect(page.get_by_role("region", name="Schema")).to_be_visible()
    expect(page.get_by_text("Personal data is masked")).to_be_visible()
    expect(page.get_by_role("button", name="Show raw personal data")).to_have_count(0)
    expect(page.get_by_role("region", name="Train a model")).to_have_count(0)
    expect(page.get_by_role("region", name="Upload a new version")).to_have_count(0)

    page.goto("/#/w/credit/models/scorecard")
    expect(page.get_by_role("article", name="Model card")).to_be_visible()
    expect(page.get_by_role("form", name="Change stage")).to_have_count(0)

    page.goto("/#/audit")
    expect(banner(page)).to_contain_text("admin role")


MARKDOWN = """\
# Card <script>window.pwned = 1</script>

Some *emphasis*, **strong**, `a < b` and [a link](https://example.org/x).
A [bad link](javascript:window.pwned=2) and <img src=x onerror="window.pwned=3">.

- one
- two
  - nested **bold**
1. first
2. second

| a | b |
|---|--:|
| <b>x</b> | 2 |

```python
print("<not html>")
```
"""


def test_markdown_renderer_builds_safe_dom(page: Page, server: LiveServer) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to Leptonic")).to_be_visible()
    html = page.evaluate(
        """async (text) => {
            const { renderMarkdown } = await import('/ui/static/markdown.js');
            const box = document.createElement('article');
            box.append(renderMarkdown(text));
            document.body.append(box);
            await new Promise((r) => setTimeout(r, 50));
            return { html: box.innerHTML, pwned: window.pwned ?? null };
        }""",
        MARKDOWN,
    )
    assert html["pwned"] is None
    out = html["html"]
    assert "<h1>Card &lt;script&gt;window.pwned = 1&lt;/script&gt;</h1>" in out
    assert "<em>emphasis</em>" in out and "<strong>strong</strong>" in out
    assert "<code>a &lt; b</code>" in out
    assert '<a href="https://example.org/x" rel="noopener noreferrer" target="_blank">' in out
    assert "bad link" in out and "javascript:" not in out
    assert "&lt;img src=x onerror=" in out
    assert "<ul><li>one</li><li>two<ul><li>nested <strong>bold</strong></li></ul></li></ul>" in out
    assert "<ol><li>first</li><li>second</li></ol>" in out
    assert '<th scope="col" class="align-right">b</th>' in out
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in out
    assert '<pre><code class="language-python">print("&lt;not html&gt;")</code></pre>' in out


def test_model_card_links_cannot_leave_the_site(page: Page, server: LiveServer) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to Leptonic")).to_be_visible()
    # Browsers read a backslash in a URL as a slash: "/\host" is another site.
    assert page.evaluate("new URL('/\\\\evil.example/x', location.href).host") == "evil.example"
    sources = {
        "[x](/\\evil.example/login)": None,
        "[x](//evil.example/login)": None,
        "[x](/docs\\..\\x)": None,
        "[x](https://ok.example\\@evil.example/)": None,
        "[x](/docs/x)": "/docs/x",
        "[x](#/w/credit/models)": "#/w/credit/models",
        "[x](https://example.org/y)": "https://example.org/y",
        "[x](mailto:team@example.org)": "mailto:team@example.org",
    }
    hrefs = page.evaluate(
        """async (sources) => {
            const { renderMarkdown } = await import('/ui/static/markdown.js');
            return sources.map((text) => {
                const box = document.createElement('div');
                box.append(renderMarkdown(text));
                return box.querySelector('a')?.getAttribute('href') ?? null;
            });
        }""",
        list(sources),
    )
    assert dict(zip(sources, hrefs, strict=True)) == sources
