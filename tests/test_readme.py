"""The documentation's commands run as written: every ```sh block marked ``<!-- runnable -->`` in
README.md and docs/*.md is run by bash, from a scratch directory that has the repository's
``.venv``, against a gunicorn started as ``make serve`` starts it (the bundled samples, the
playground on), on a free port in place of 8000, with the purge token its purge example assumes
exported."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from .support.servers import REPO, Server, start_gunicorn

MARK = "<!-- runnable -->"
TOKEN = "readme-purge-token-0123456789"


def runnable_blocks(text: str) -> list[str]:
    """The ```sh blocks right after a MARK line."""
    return re.findall(rf"^{re.escape(MARK)}\n```sh\n(.*?)^```$", text, flags=re.M | re.S)


PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCKS = [
    pytest.param(block, id=f"{page.relative_to(REPO)}-{number}")
    for page in PAGES
    for number, block in enumerate(runnable_blocks(page.read_text()), 1)
]


def test_the_docs_mark_their_commands() -> None:
    readme = (REPO / "README.md").read_text()
    assert runnable_blocks(readme), "the README's own example is marked"
    assert len(BLOCKS) >= 5 and all(block.values[0].strip() for block in BLOCKS)
    assert "make serve" in readme.split("\n## ", 1)[0]  # the first screen


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    cache = tmp_path_factory.mktemp("cache")
    server = start_gunicorn(
        {"PROXY_PLAYGROUND": "1", "PROXY_PURGE_TOKEN": TOKEN, "PROXY_CACHE_DIR": str(cache)}, workers=2
    )
    yield server, cache
    server.stop()


@pytest.mark.integration
@pytest.mark.parametrize("block", BLOCKS)
def test_each_runnable_block_runs_as_written(served: tuple[Server, Path], tmp_path: Path, block: str) -> None:
    server, cache = served
    block = block.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),  # `python -m proxy` from elsewhere than the checkout's root
        "PROXY_CACHE_DIR": str(cache),  # the CLI's cache is the server's, as from one checkout
        "PROXY_PURGE_TOKEN": TOKEN,
    }
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{block}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    for expected in re.findall(r"^# (/image/\S+)$", block, flags=re.M):  # a documented output
        assert expected in done.stdout
    for name in re.findall(r"-f?o (\S+\.(?:jpg|png|webp)) ", block):  # every file it says it writes
        image = cv2.imdecode(np.frombuffer((tmp_path / name).read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.size > 0, name
    if "-D -" in block:
        assert "HTTP/1.1 200" in done.stdout
