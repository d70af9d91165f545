"""The tables of docs/performance.md, in Markdown, from the benches' results.

    .venv/bin/python bench/doc_tables.py bench/out/transform.json [bench/out/formats.json ...]

bench/transform.py, bench/formats.py and bench/http_load.py write their results as JSON in
bench/out/ and, given ``--markdown``, print these tables at the end of a run; this prints them
again from a saved run. Only the standard library: nothing here needs the benches' packages.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FORMAT_NAMES = {"jpeg": "JPEG", "webp": "WebP", "png": "PNG", "avif": "AVIF", "jxl": "JPEG XL"}
QUALITY = {"jpeg": " q82", "webp": " q80"}  # bench/transform.py's QUALITY, as the table names it
HTTP_ROWS = {  # bench/http_load.py's scenario -> the table's wording, in the table's order
    "hit: origin": "hit ({size}), origin",
    "hit: bare Flask, same bytes": "same bytes from memory, bare Flask, same gunicorn",
    "hit: origin, sync workers": "same hit, origin with the earlier sync workers (3 per core)",
    "hit: nginx static file": "same bytes, nginx static file",
    "hit: through deploy/nginx.conf": "same hit through `deploy/nginx.conf` (nginx's cache)",
    "repeat: thumbor (result storage)": "same request repeated, thumbor (result storage)",
    "304: origin": "304 revalidation, origin",
    "miss storm: origin": "miss storm (a new variant of a 24 MP JPEG each request, w ≈ 400), origin",
    "miss storm: naive": "same storm, naive pipeline",
    "miss storm: thumbor": "same storm, thumbor",
}


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float) -> str:
    """An encode time: 0.6, 19.3, 235."""
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def latency(value: float) -> str:
    """A wrk percentile: 0.26, 4.0, 63."""
    return f"{value:.2f}" if value < 1 else f"{value:.1f}" if value < 10 else f"{value:.0f}"


def size(count: float) -> str:
    """Bytes as the tables write them: 37.3 KB, 255 KB, 3.2 MB (powers of 1000)."""
    if count >= 1e6:
        return f"{count / 1e6:.1f} MB"
    kilobytes = count / 1e3
    return f"{kilobytes:.1f} KB" if kilobytes < 100 else f"{kilobytes:.0f} KB"


def _present(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def source_name(name: str) -> str:
    """bench/transform.py's "png rgba 3000x2000" -> "6 MP RGBA PNG"."""
    words, dimensions = name.rsplit(" ", 1)
    width, height = (int(side) for side in dimensions.split("x"))
    kind, *qualifiers = words.split(" ")
    if kind == "progressive":  # "progressive jpeg"
        kind, qualifiers = qualifiers[0], [kind]
    described = [word if word[0].isdigit() or word == "progressive" else word.upper() for word in qualifiers]
    return " ".join([f"{round(width * height / 1e6)} MP", *described, FORMAT_NAMES.get(kind, kind.upper())])


def transform_table(rows: Sequence[dict[str, Any]]) -> str:
    """Miss latency, in process: every cell of a bench/transform.py run."""
    body = []
    for row in rows:
        output = f"{row['width']} px {FORMAT_NAMES[row['format']]}{QUALITY.get(row['format'], '')}"
        vips = row["vips_ms"]
        body.append(
            [
                f"{source_name(row['source'])} → {output}",
                f"{row['ours_ms']:.1f} ms",
                f"{row['naive_ms']:.1f} ms",
                f"{vips:.1f} ms" if _present(vips) else "",
                f"{row['ours_vs_vips']:.2f}" if _present(row["ours_vs_vips"]) else "",
                f"{row['ours_psnr']:.1f} / {row['vips_psnr']:.1f} dB"
                if _present(row["vips_psnr"])
                else f"{row['ours_psnr']:.1f} dB",
            ]
        )
    header = ["source → output", "ours", "naive", "vips", "ours / vips", "PSNR ours / vips"]
    return table(header, body)


def seen_table(rows: Sequence[dict[str, Any]]) -> str:
    """A new size of an original already seen: bench/transform.py's ``seen`` rows, one line per width."""
    columns = ["jpeg", "webp", "webp effort 2", "png", "avif", "jxl"]
    header = [
        "width",
        "JPEG ours / vips",
        "WebP ours / vips",
        "WebP, `PROXY_WEBP_EFFORT=2`",
        "PNG ours / vips",
        "AVIF ours / vips",
        "JPEG XL, ours",
    ]
    cells: dict[int, dict[str, dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault(row["width"], {})[row["format"]] = row
    body = []
    for width, by_format in cells.items():
        line = [str(width)]
        for column in columns:
            row = by_format.get(column)
            if row is None:
                line.append("")
            elif not _present(row["vips_ms"]):  # no libvips writer: ours alone
                line.append(f"{row['ours_ms']:.1f} ms")
            else:
                cell = f"{row['ours_ms']:.1f} / {row['vips_ms']:.1f} ms ({row['ours_vs_vips']:.2f})"
                base = by_format.get(column.split(" ")[0]) if " " in column else None
                if base is not None:  # another effort: its bytes against the default's
                    cell += f", {(row['ours_bytes'] / base['ours_bytes'] - 1) * 100:+.1f}% bytes"
                line.append(cell)
        body.append(line)
    return table(header, body)


def formats_table(rows: Sequence[dict[str, Any]]) -> str:
    """Encoding each output format: bench/formats.py's pipeline encoders, then the others it timed."""
    order = ["jpeg", "webp", "avif", "jxl", "png"]
    by_width: dict[int, dict[str, dict[str, Any]]] = {}
    extra = []
    for row in rows:
        if row["format"] in order:
            by_width.setdefault(row["width"], {})[row["format"]] = row
        else:
            extra.append(row)

    def cell(row: dict[str, Any] | None) -> str:
        if row is None:
            return ""
        parts = [f"{ms(row['ms'])} ms", size(row["bytes"])]
        if _present(row["psnr"]) and row["psnr"] < 100:  # lossless (OpenCV's PSNR says 361): none
            parts.append(f"{row['psnr']:.1f} dB")
        return ", ".join(parts)

    present = [name for name in order if any(name in cells for cells in by_width.values())]
    main = table(
        ["width", *(FORMAT_NAMES[name] for name in present)],
        [[str(width), *(cell(cells.get(name)) for name in present)] for width, cells in by_width.items()],
    )
    if not extra:
        return main
    others = table(["width", "encoder", "measured"], [[str(r["width"]), r["format"], cell(r)] for r in extra])
    note = "Other encoders timed in the same run (`avif-cv`: OpenCV's own AVIF writer):"
    return f"{main}\n\n{note}\n\n{others}"


def http_table(data: dict[str, Any]) -> str:
    """HTTP: bench/http_load.py's scenarios, then its ratios."""
    results = data["results"]
    hit = f"{data['hit_bytes'] / 1e3:.0f} KB WebP" if "hit_bytes" in data else "WebP"
    body = [
        [label.format(size=hit), f"{results[name]['rps']:,.0f}"]
        + [f"{latency(results[name][percentile])} ms" for percentile in ("p50_ms", "p99_ms")]
        for name, label in HTTP_ROWS.items()
        if name in results
    ]
    ratios = "; ".join(f"{name} {value:.2f}" for name, value in data.get("ratios", {}).items())
    text = table(["scenario", "req/s", "p50", "p99"], body)
    return f"{text}\n\nRatios from that run: {ratios}." if ratios else text


def render(data: dict[str, Any]) -> str:
    """The tables for one bench's JSON, whichever bench wrote it."""
    if "results" in data:
        return http_table(data)
    if "formats" in data:
        return formats_table(data["formats"])
    parts = []
    if data.get("rows"):
        parts.append("Miss latency, in process:\n\n" + transform_table(data["rows"]))
    if data.get("seen"):
        parts.append("A new size of an original already seen:\n\n" + seen_table(data["seen"]))
    return "\n\n".join(parts) or "(no table of docs/performance.md comes from this JSON)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, nargs="+", help="a bench's JSON, e.g. bench/out/transform.json")
    args = parser.parse_args()
    for path in args.json:
        # json.dumps writes NaN where libvips could not read a source; json.loads reads it back.
        print(f"{path}:\n\n{render(json.loads(path.read_text()))}\n")


if __name__ == "__main__":
    main()
