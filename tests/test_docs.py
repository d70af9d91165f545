"""The documentation holds together: every relative link in README.md, SECURITY.md and docs/*.md
leads to a file of the repository, every ``#anchor`` to a heading of its page (GitHub's slug of
it), every page of docs/ is linked from the README, and the README stays a front page."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

from .support.servers import REPO

PAGES = [REPO / "README.md", REPO / "SECURITY.md", *sorted((REPO / "docs").glob("*.md"))]
README_LINES = 250

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:|^//", re.I)


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks (``` or ~~~, indented or not), code spans blanked:
    a shell comment is no heading, and a link in code is no link."""
    lines, fence = [], ""
    for line in text.splitlines():
        marker = re.match(r"^\s*(`{3,}|~{3,})", line)
        if fence:
            if marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence):
                fence = ""
            lines.append("")
        elif marker:
            fence = marker.group(1)
            lines.append("")
        else:
            lines.append(CODE_SPAN.sub(lambda span: "`" * len(span.group(0)), line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; repeated headings get -1, -2, ... as on GitHub."""
    found: set[str] = set()
    seen: Counter[str] = Counter()
    text = page.read_text()
    for line, raw in zip(prose(text), text.splitlines(), strict=True):
        heading = HEADING.match(raw) if HEADING.match(line) else None  # the slug keeps code spans' text
        if heading:
            base = slug(heading.group(2))
            found.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


def links(page: Path) -> list[tuple[int, str]]:
    return [
        (number, target)
        for number, line in enumerate(prose(page.read_text()), 1)
        for target in LINK.findall(line)
    ]


def test_the_pages_exist() -> None:
    names = {page.name for page in PAGES}
    assert {"README.md", "SECURITY.md", "url.md", "performance.md", "architecture.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for number, target in links(page):
        if not target or SCHEME.match(target):
            continue  # the web is not checked here: only what the repository holds
        path, _, anchor = target.partition("#")
        destination = (page.parent / unquote(path)).resolve() if path else page
        where = f"{page.relative_to(REPO)}:{number}: {target}"
        if not destination.is_relative_to(REPO):
            broken.append(f"{where} leaves the repository")
        elif not destination.exists():
            broken.append(f"{where}: no such file")
        elif anchor and destination.suffix == ".md" and unquote(anchor) not in anchors(destination):
            broken.append(f"{where}: no heading with that anchor in {destination.relative_to(REPO)}")
    assert not broken, "\n".join(broken)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(REPO / target.partition("#")[0]).resolve() for _, target in links(REPO / "README.md")}
    assert [page.name for page in PAGES if page.parent.name == "docs" and page not in linked] == []


def test_the_readme_is_a_front_page() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Miss latency, in process", "miss-latency-in-process"),
        ("A request's life", "a-requests-life"),
        ("`PROXY_WEBP_EFFORT` and *why*", "proxy_webp_effort-and-why"),
        ("Links: [the URL](docs/url.md)", "links-the-url"),
        ("Bursts — and overload", "bursts--and-overload"),
    ],
)
def test_slugs_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_are_numbered(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Notes\n\n```sh\n# not a heading\n```\n\n## Notes\n\n## Notes\n")
    assert anchors(page) == {"notes", "notes-1", "notes-2"}
