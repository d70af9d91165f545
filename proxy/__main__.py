"""Operator commands, configured by the same PROXY_* variables as the service.

python -m proxy cache stats              entries, bytes, hit/miss/render counts
python -m proxy cache clear              empty the cache
python -m proxy cache purge <id>...      drop every variant of these originals from this instance,
                                         and from the shared result tier (PROXY_RESULT_STORE)
                                         (an id, or url:<URL> for an original fetched by /url/)
python -m proxy purge --instances URL,URL <id>...
                                         PURGE them on every instance (PROXY_PURGE_TOKEN)
python -m proxy tag <id>...              the cache tags a CDN purges these originals by
python -m proxy warm <id> [--sizes 200,400,800] [--fmt webp,jpeg]
                                         render variants ahead of the first request
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence
from urllib.parse import quote, urlencode

import urllib3

from .cache import HIT, MISS, SHARED, VariantCache
from .errors import ProxyError
from .keys import tags_for
from .origin import ImageRequest, Origin, open_origin
from .params import check_presets
from .settings import Settings, SettingsError, unknown_variables
from .signing import sign
from .sources import open_copies
from .sources.urls import PREFIX

WORDS = {HIT: "cached", MISS: "rendered", SHARED: "from the shared result tier"}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for warning in unknown_variables():
        print(warning, file=sys.stderr)
    try:
        settings = Settings.from_env()
        check_presets(settings)  # as the service checks them at boot
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "sign":
        if not settings.secret:
            print("error: PROXY_SECRET is not set", file=sys.stderr)
            return 2
        if not args.url.startswith(("/image/", "/url/", "/info/")):
            print(
                "error: give the path and query as the origin sees them, starting /image/, /url/ or"
                ' /info/ (e.g. "/image/a.jpg?w=300"), not a full URL: the host is not signed',
                file=sys.stderr,
            )
            return 2
        print(sign(settings.secret, args.url))
        return 0
    if args.command == "cache" and (args.action == "purge") != bool(args.ids):
        print("error: cache purge takes image ids, and only purge does", file=sys.stderr)
        return 2
    if args.command == "tag":
        for image_id in args.ids:
            print(" ".join(tags_for(image_id, [mount.prefix for mount in settings.mounts])))
        return 0
    if args.command == "purge":
        return _purge_instances(settings, args.instances, args.ids)
    cache = VariantCache(settings.cache_dir, settings.cache_size)
    copies = open_copies(settings)
    try:
        if args.command == "cache" and args.action == "stats":
            stats: dict[str, object] = {**cache.stats()}
            if copies is not None:
                copied = copies.stats()  # local copies of remote originals: a render there is a fetch
                stats["sources"] = {
                    ("fetches" if name == "renders" else name): n for name, n in copied.items()
                }
            print(json.dumps(stats, indent=2))
        elif args.command == "cache" and args.action == "purge":
            origin = open_origin(settings, cache, copies)
            for image_id in args.ids:
                print(f"{image_id}: purged {origin.purge(image_id)} entries")
        elif args.command == "cache":
            removed = f"removed {cache.clear()} entries, and reset the hit, miss and render counts"
            print(removed if copies is None else f"{removed} and {copies.clear()} source copies")
        else:
            return _warm(open_origin(settings, cache, copies), args)
    finally:
        cache.close()
        if copies is not None:
            copies.close()
    return 0


def _purge_instances(settings: Settings, instances: list[str], ids: list[str]) -> int:
    """PURGE each id on each instance; one line per answer; 1 if any instance did not purge."""
    if not settings.purge_token:
        print("error: PROXY_PURGE_TOKEN is not set", file=sys.stderr)
        return 2
    http = urllib3.PoolManager(timeout=urllib3.Timeout(total=10.0), retries=False)
    headers = {"Authorization": f"Bearer {settings.purge_token}"}
    failed = 0
    for base in instances:
        for image_id in ids:
            url = f"{base.rstrip('/')}{_path(image_id)}"
            try:
                answer = http.request("PURGE", url, headers=headers)
                body = json.loads(answer.data) if answer.status == 200 else {}
                outcome = f"purged {body.get('purged')}" if answer.status == 200 else f"HTTP {answer.status}"
            except (urllib3.exceptions.HTTPError, ValueError) as error:
                answer, outcome = None, f"failed: {error}"
            failed += answer is None or answer.status != 200
            print(f"{base} {image_id}: {outcome}")
    return 1 if failed else 0


def _path(image_id: str) -> str:
    """``/image/<id>``, or ``/url/<base64url>`` for the ``url:<URL>`` id of an arbitrary URL."""
    if image_id.startswith(PREFIX):
        encoded = base64.urlsafe_b64encode(image_id.removeprefix(PREFIX).encode()).rstrip(b"=").decode()
        return f"/url/{encoded}"
    return f"/image/{quote(image_id)}"


def _warm(origin: Origin, args: argparse.Namespace) -> int:
    """Ask the origin for each size x format, exactly as ``/image/<id>?w=<size>&fmt=<format>``
    does: the same variant, rendered (in a transform slot of the instance) unless cached."""
    jobs = [(size, fmt) for size in args.sizes for fmt in args.fmt]
    failures = 0
    for done, (size, fmt) in enumerate(jobs, 1):
        try:
            query = urlencode([("w", size), ("fmt", fmt)])
            variant = origin.serve(ImageRequest(origin.store, args.id, query)).variant
            assert variant is not None  # an unconditional request gets the image
            if not isinstance(variant.body, bytes):
                variant.body.close()
            outcome = f"{WORDS[variant.outcome]}, {variant.length} bytes"
        except ProxyError as error:
            failures += 1
            outcome = f"error {error.status}: {error.message}"
        _progress(done, len(jobs), f"w={size} {fmt}: {outcome}")
    if origin.results is not None:
        origin.results.flush()  # the renders' writes to the shared tier, before the process ends
    return 1 if failures else 0


def _progress(done: int, total: int, label: str, width: int = 30) -> None:
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}\x1b[K")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m proxy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cache = commands.add_parser("cache", help="inspect, empty or purge the variant cache")
    cache.add_argument("action", choices=("stats", "clear", "purge"))
    cache.add_argument("ids", nargs="*", help="purge: image ids, as in /image/<id>, or url:<URL> for /url/")
    purger = commands.add_parser("purge", help="PURGE originals on every instance")
    purger.add_argument("--instances", type=_csv, required=True, help="base URLs: http://10.0.0.1:8000,...")
    purger.add_argument("ids", nargs="+", help="image ids, as in /image/<id>, or url:<URL> for /url/")
    tagger = commands.add_parser("tag", help="print the cache tags of originals")
    tagger.add_argument("ids", nargs="+", help="image ids, as in /image/<id>")
    warm = commands.add_parser("warm", help="pre-render variants of one original")
    warm.add_argument("id", help="image id, as in /image/<id>")
    warm.add_argument(
        "--sizes", type=_csv, default=["200", "400", "800"], help="widths (default 200,400,800)"
    )
    warm.add_argument("--fmt", type=_csv, default=["webp", "jpeg"], help="formats, default webp,jpeg")
    signer = commands.add_parser("sign", help="sign a URL with PROXY_SECRET")
    signer.add_argument("url", help='path and query, e.g. "/image/a.jpg?w=300"')
    return parser


if __name__ == "__main__":
    sys.exit(main())
