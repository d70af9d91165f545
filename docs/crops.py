"""Draw docs/url.md's cropping pictures: one sample photo as a 400x160 banner, three ways.

    .venv/bin/python docs/crops.py

Writes docs/img/crop-*.webp through the real pipeline (``render``), so the pictures show what
the origin serves for the same query.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy.params import ImageParams  # noqa: E402
from proxy.pipeline import render  # noqa: E402

PHOTO = REPO / "samples" / "astronaut.png"
BANNER = ImageParams(width=400, height=160, fit="cover", quality=70)
VARIANTS = {
    "center": BANNER,
    "attention": replace(BANNER, gravity="attention"),
    "fp": replace(BANNER, gravity="focal", focal=(Decimal("0.3"), Decimal("0.75"))),  # the mission patch
}


def main() -> None:
    out = REPO / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    for name, params in VARIANTS.items():
        rendered = render(str(PHOTO), params, "webp")
        (out / f"crop-{name}.webp").write_bytes(rendered.data)
        print(f"docs/img/crop-{name}.webp: {len(rendered.data)} bytes")


if __name__ == "__main__":
    main()
