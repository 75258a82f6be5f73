"""The docs: every route has an example in its service's page, every example a route; the README is a front
door whose links work; the benchmark table is what its one source says."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.exceptions import HTTPException

from benchmarks import report
from common.services import SERVICES
from harness.launch import REPO, RunningService
from tests.shared import DOCS, doc_code_blocks, doc_curls, doc_page, run_doc_curls

README = REPO / "README.md"
WRITTEN_ELSEWHERE = {"scale-out.md", "dependencies.md"}
"""Pages the README links to that other changes write; their links are checked once they exist."""


def _routes(app: Flask) -> list[tuple[str, str, str, bool]]:
    """(method, rule, endpoint, is a WebSocket) for every route of ``app``, HEAD and OPTIONS aside."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        if rule.websocket:
            routes.append(("GET", rule.rule, rule.endpoint, True))
            continue
        routes += [(method, rule.rule, rule.endpoint, False) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return routes


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_route_has_an_example_and_every_example_a_route(name: str, fake_app: Callable[..., Flask]) -> None:
    app = fake_app(name)
    port = app.extensions["suite"].settings.server.port
    adapter = app.url_map.bind("127.0.0.1")
    covered: set[tuple[str, str]] = set()
    for example in doc_curls(name, port):
        try:
            endpoint, _ = adapter.match(example.path, method=example.method)
        except HTTPException:
            pytest.fail(f"{doc_page(name).name}: no route for {example.method} {example.path}:\n{example.command}")
        covered.add((example.method, endpoint))
    # A WebSocket route cannot be a curl: its example is Python that names its URL.
    python = "\n".join(doc_code_blocks(name, "python"))
    missing = [
        f"{method} {rule}"
        for method, rule, endpoint, websocket in _routes(app)
        if (f"127.0.0.1:{port}{rule}" not in python if websocket else (method, endpoint) not in covered)
    ]
    assert not missing, f"{doc_page(name).name} has no example for {missing}"


def test_readme_is_a_short_front_door_with_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.encode()) <= 15_000
    for command in ("bash scripts/setup.sh", "bash scripts/start_all.sh", "bash scripts/test.sh"):
        assert command in text
    assert "```mermaid" in text


def test_every_readme_curl_is_a_tested_example_of_its_service_page() -> None:
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        port = int(re.search(r"127\.0\.0\.1:(\d+)", block).group(1))
        name = next(n for n in SERVICES if SERVICES[n].settings_class().load().server.port == port)
        assert block.strip() in [e.command for e in doc_curls(name, port)], f"not in docs/{name}.md:\n{block}"


def test_no_internal_issue_numbers_in_the_docs() -> None:
    for page in [README, *DOCS.glob("*.md")]:
        found = re.findall(r"issue [0-9]+|#[0-9]+", page.read_text())
        assert not found, f"{page.name}: {found}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


def test_links_between_the_pages_work() -> None:
    for page in [README, *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if file.name in WRITTEN_ELSEWHERE and not file.exists():
                continue
            assert file.exists(), f"{page.name} links to {target}"
            if anchor and file.suffix == ".md":
                assert anchor in _anchors(file), f"{page.name} links to {target}: no such heading"


def test_every_service_page_is_one_click_from_the_readme() -> None:
    text = README.read_text()
    for name in SERVICES:
        assert f"(docs/{name}.md)" in text


def test_the_benchmark_table_is_what_its_source_says() -> None:
    source = json.loads(report.SOURCE.read_text())
    assert report.PAGE.read_text() == report.render(report.PAGE.read_text(), source), (
        "docs/benchmarks.md's table differs from docs/benchmarks.json: run benchmarks/report.py"
    )


@pytest.mark.slow
def test_console_doc_curls_work_as_written(console_server: RunningService) -> None:
    assert run_doc_curls(console_server, 7200) == 9
