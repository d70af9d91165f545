"""The same bytes for the same requests: a fingerprint of what the origin answers, to compare
before and after a change that must not change behaviour (a refactor).

    .venv/bin/python bench/identity.py [--json bench/out/identity.json] [--against before.json]

Every original of a corpus (the bundled samples, and files generated here deterministically in
each format the origin reads: alpha, 16-bit, grey, animated, AVIF, TIFF, BMP) is asked, through
the app in process, with each query of QUERIES and each Accept of ACCEPTS; for each answer the
table holds its status, the sha256 of its body and the headers a cache keys on (Content-Type,
ETag, Vary, Cache-Control; ETags named by which answers share them). With ``--against``, the
answers that differ from that earlier run are printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy import create_app  # noqa: E402
from proxy.settings import Settings  # noqa: E402

QUERIES = (
    "",
    "w=400",
    "w=400&fmt=webp",
    "w=300&fmt=avif",
    "w=300&fmt=jxl",
    "w=320&fmt=png",
    "w=200&h=200&fit=cover",
    "w=200&h=120&fit=cover&gravity=attention&fmt=webp",
    "w=200&h=120&fit=cover&gravity=entropy&fmt=jpeg",
    "w=200&h=120&fit=cover&fp=0.2,0.8",
    "w=240&h=240&fit=contain&bg=000&fmt=png",
    "w=150&h=300&fit=fill&fmt=jpeg&q=50",
    "rect=10,10,120,80&w=60",
    "w=100&dpr=2.5&fmt=webp",
    "w=2000&enlarge=1&fmt=jpeg",
    "frame=1&w=100&fmt=png",
    "w=500&fmt=auto",
    "w=abc",
)
ACCEPTS = ("*/*", "image/avif,image/webp,image/apng,image/*,*/*;q=0.8", "image/webp,*/*")
KEPT = ("Content-Type", "ETag", "Vary", "Cache-Control", "X-Error")


def corpus(directory: Path) -> None:
    """The samples, and one generated original per kind the samples lack."""
    for sample in sorted((REPO / "samples").iterdir()):
        if sample.suffix in (".jpg", ".png"):
            shutil.copy(sample, directory / sample.name)
    rng = np.random.default_rng(7)
    colour = cv2.resize(
        rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC
    )
    alpha = np.dstack((colour, np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))))
    deep = (colour.astype(np.uint16) * 257)[:, :, ::-1]
    files = {
        "alpha.png": cv2.imencode(".png", alpha)[1],
        "deep.png": cv2.imencode(".png", deep)[1],
        "grey.jpg": cv2.imencode(".jpg", cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))[1],
        "photo.webp": cv2.imencode(".webp", colour, [cv2.IMWRITE_WEBP_QUALITY, 90])[1],
        "photo.tiff": cv2.imencode(".tiff", colour)[1],
        "photo.bmp": cv2.imencode(".bmp", colour)[1],
        "photo.avif": cv2.imencode(".avif", colour)[1],
    }
    for name, data in files.items():
        (directory / name).write_bytes(data.tobytes())
    frames = [np.roll(colour, 40 * n, axis=1)[:240, :320] for n in range(4)]
    animation = cv2.Animation()
    animation.frames, animation.durations = frames, [40] * len(frames)
    ok, animated = cv2.imencodeanimation(".webp", animation)
    assert ok
    (directory / "animated.webp").write_bytes(animated.tobytes())
    for path in directory.iterdir():  # a file's version is its size and mtime: the same in every run
        os.utime(path, (1_700_000_000, 1_700_000_000))


def fingerprint(images: Path) -> dict[str, dict[str, object]]:
    cache = Path(tempfile.mkdtemp(prefix="identity-cache-"))
    try:
        client = create_app(Settings(image_root=images, cache_dir=cache, max_age=3600)).test_client()
        table: dict[str, dict[str, object]] = {}
        for name in sorted(os.listdir(images)):
            for query in QUERIES:
                for accept in ACCEPTS:
                    response = client.get(f"/image/{name}?{query}", headers={"Accept": accept})
                    table[f"{name}?{query} [{accept}]"] = {
                        "status": response.status_code,
                        "sha256": hashlib.sha256(response.data).hexdigest(),
                        **{header: response.headers.get(header) for header in KEPT},
                    }
        return _named_etags(table)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _named_etags(table: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """ETags named in order of first appearance: a file's version holds its inode, which differs
    from run to run, so what must hold is which answers share an ETag, not its digits."""
    names: dict[object, str] = {}
    for key in sorted(table):
        etag = table[key]["ETag"]
        if etag is not None:
            table[key]["ETag"] = names.setdefault(etag, f"etag-{len(names) + 1}")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("bench/out/identity.json"))
    parser.add_argument(
        "--against", type=Path, help="an earlier run's JSON: print what differs, exit 1 if any"
    )
    args = parser.parse_args()
    images = Path(tempfile.mkdtemp(prefix="identity-images-"))
    try:
        corpus(images)
        table = fingerprint(images)
    finally:
        shutil.rmtree(images, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(table, indent=1, sort_keys=True))
    statuses = sorted({str(row["status"]) for row in table.values()})
    digest = hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()
    print(f"{len(table)} answers (statuses {', '.join(statuses)}); table sha256 {digest}")
    if args.against is None:
        return 0
    before = json.loads(args.against.read_text())
    differ = sorted(key for key in before.keys() | table.keys() if before.get(key) != table.get(key))
    for key in differ:
        print(f"differs: {key}\n  before {before.get(key)}\n  after  {table.get(key)}")
    print(f"{len(differ)} of {len(table)} answers differ from {args.against}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
