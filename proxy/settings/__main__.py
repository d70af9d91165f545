"""``python -m proxy.settings --markdown`` or ``--env``: the configuration reference, on stdout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .reference import COMMANDS, ENV, MARKDOWN, render_env, render_markdown


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.settings", description=__doc__)
    output = parser.add_mutually_exclusive_group(required=True)
    output.add_argument("--markdown", action="store_true", help=f"{MARKDOWN}: {COMMANDS[MARKDOWN]}")
    output.add_argument("--env", action="store_true", help=f"{ENV}: {COMMANDS[ENV]}")
    args = parser.parse_args(argv)
    sys.stdout.write(render_markdown() if args.markdown else render_env())
    return 0


if __name__ == "__main__":
    sys.exit(main())
