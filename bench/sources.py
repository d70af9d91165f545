"""Remote originals against local ones: an S3-backed origin (moto's S3 server on loopback) and a
file-backed one, both gunicorn as shipped, measured side by side in one run.

    .venv/bin/python bench/sources.py [--seconds 6] [--json bench/out/sources.json]

Twenty new sizes of one 24 MP JPEG, one after another, three rounds of new sizes with the two
origins alternating: how many GETs reached S3 (one is the goal), the very first request's time,
and the median time of sizes 2..20 against the file-backed origin's.
Then hits and 304s with wrk (when installed), S3-backed against file-backed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import boto3
import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from backpressure import camera_like  # noqa: E402
from http_load import wrk  # noqa: E402

from tests.support.load import timed_get  # noqa: E402
from tests.support.servers import start_gunicorn  # noqa: E402
from tests.support.upstreams import S3Server  # noqa: E402

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
SIZES = [300 + 100 * n for n in range(20)]
ROUNDS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--json", type=Path, default=Path("bench/out/sources.json"))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-sources-"))
    (scratch / "images").mkdir()
    ok, jpeg = cv2.imencode(".jpg", camera_like(6000, 4000, 3), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    (scratch / "images" / "camera.jpg").write_bytes(jpeg.tobytes())
    s3 = S3Server()
    s3.start()
    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    bucket = session.client("s3", endpoint_url=s3.endpoint)
    bucket.create_bucket(Bucket="bench-images")
    bucket.put_object(Bucket="bench-images", Key="camera.jpg", Body=jpeg.tobytes())
    common = {**CREDENTIALS, "AWS_ENDPOINT_URL": s3.endpoint, "GUNICORN_JSON_ACCESSLOG": "0"}
    servers = {
        "file": start_gunicorn(
            {**common, "PROXY_IMAGE_ROOT": str(scratch / "images"), "PROXY_CACHE_DIR": str(scratch / "c1")},
            workers=None,
        ),
        "s3": start_gunicorn(
            {**common, "PROXY_SOURCE": "s3://bench-images/", "PROXY_CACHE_DIR": str(scratch / "c2")},
            workers=None,
        ),
    }
    out: dict[str, dict[str, float]] = {}
    try:
        rounds: dict[str, list[list[float]]] = {name: [] for name in servers}
        for round_ in range(ROUNDS):  # new sizes each round, the two origins alternating
            for name in sorted(servers, reverse=round_ % 2 == 1):
                timings = []
                for width in SIZES:
                    url = f"/image/camera.jpg?w={width + round_}&fmt=jpeg"
                    status, _, seconds = timed_get(servers[name].port, url)
                    assert status == 200, (name, url, status)
                    timings.append(seconds)
                rounds[name].append(timings)
        for name, runs in rounds.items():
            rest = statistics.median(sum(run[1:]) for run in runs)  # sizes 2..20 of each round
            out[name] = {"first_ms": runs[0][0] * 1000, "rest_ms": rest * 1000}
        out["s3"]["upstream_gets"] = s3.gets("bench-images", "camera.jpg")
        if shutil.which("wrk"):
            for name, server in servers.items():
                hit = "/image/camera.jpg?w=400&fmt=jpeg"
                etag = server.request("GET", hit)[1]["etag"]
                out[name]["hit_rps"] = wrk(server.port, hit, args.seconds, 8, {}, None)["rps"]
                out[name]["304_rps"] = wrk(server.port, hit, args.seconds, 8, {"If-None-Match": etag}, None)[
                    "rps"
                ]
    finally:
        for server in servers.values():
            server.stop()
        s3.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    gets = out["s3"]["upstream_gets"]
    print(f"{ROUNDS} x 20 sizes of a 24 MP JPEG, one after another; GETs that reached S3: {gets:.0f}")
    print(f"{'':24} {'file':>10} {'s3':>10} {'s3 / file':>10}")
    for metric in ("first_ms", "rest_ms", "hit_rps", "304_rps"):
        if metric in out["file"]:
            file, remote = out["file"][metric], out["s3"][metric]
            print(f"{metric:24} {file:10.1f} {remote:10.1f} {remote / file:10.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
