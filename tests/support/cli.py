"""python -m proxy's commands run in this process: ``main(argv)`` with the PROXY_* environment an
operator would set and what it printed captured, without starting an interpreter (and importing
OpenCV) for each command. tests/conftest.py's ``cli`` fixture runs them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pytest

from proxy.__main__ import main

from .servers import REPO


@dataclass(frozen=True)
class Ran:
    """What a command did: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Ran]  # cli(*args, **env): ``python -m proxy *args`` with ``env``


def run_main(
    args: Sequence[str],
    env: Mapping[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Ran:
    """``python -m proxy *args`` from the repository with ``env`` as its only PROXY_* variables."""
    with monkeypatch.context() as patch:
        patch.chdir(REPO)
        for name in os.environ:
            if name.startswith("PROXY_"):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        capsys.readouterr()  # what was printed before is not this command's
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse refusing the arguments
            code = exit.code if isinstance(exit.code, int) else 2
        out, err = capsys.readouterr()
    return Ran(code, out, err)
