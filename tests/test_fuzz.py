"""Property-based and fuzz tests: whatever arrives, only documented statuses come back.

The decoder fuzz mutates real encoded images (bit flips, truncation, splices) and runs
the whole pipeline on them; CI runs a bounded number of examples, ``FUZZ_EXAMPLES``
raises it for a longer local run.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import create_app
from proxy.errors import ProxyError
from proxy.formats import SOURCE
from proxy.params import ImageParams
from proxy.pipeline import render
from proxy.settings import Settings

from .support.images import DATA, encode, photo

ALLOWED = {200, 304, 400, 403, 404, 413, 415}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))


@functools.cache
def seeds() -> dict[str, bytes]:
    image = photo(48, 32, seed=11)
    alpha = np.dstack((image, np.linspace(0, 255, 48 * 32).astype(np.uint8).reshape(32, 48)))
    return {
        "jpeg": encode(image, ".jpg"),
        "progressive": encode(image, ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        "png": encode(alpha, ".png"),
        "png16": encode(image.astype(np.uint16) * 257, ".png"),
        "webp": encode(alpha, ".webp"),
        "gif": encode(image, ".gif"),
        "bmp": encode(image, ".bmp"),
        "tiff": encode(image, ".tiff"),
        "heif": (DATA / "heif" / "photo.heic").read_bytes(),  # libheif and libde265 (pi_heif)
        "jxl": imagecodecs.jpegxl_encode(np.ascontiguousarray(alpha[..., [2, 1, 0, 3]])),  # libjxl
    }


@functools.cache
def workspace() -> tuple[Path, Settings]:
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    (root / "images").mkdir()
    (root / "images" / "ok.png").write_bytes(seeds()["png"])
    return root, Settings(image_root=root / "images", cache_dir=root / "cache")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(seeds()[draw(st.sampled_from(sorted(seeds())))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
    return bytes(data)


PARAMS = st.builds(
    ImageParams,
    width=st.none() | st.integers(1, 300),
    height=st.none() | st.integers(1, 300),
    fit=st.sampled_from(["inside", "cover", "fill", "contain"]),
    quality=st.integers(1, 100),
    background=st.tuples(*[st.integers(0, 255)] * 4),
)
TARGETS = st.sampled_from([SOURCE, "png", "jpeg", "webp", "jpeg|png"])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), PARAMS, TARGETS)
def test_decoder_fuzz(data: bytes, params: ImageParams, target: str) -> None:
    root, _ = workspace()
    path = root / "fuzzed"
    path.write_bytes(data)
    try:
        rendered = render(str(path), params, target)
    except ProxyError as error:
        assert error.status in ALLOWED
        return
    decoded = cv2.imdecode(np.frombuffer(rendered.data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None and decoded.size > 0


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.sampled_from(["a.jpg", "b.png", "c", "d.webp"]))
def test_arbitrary_bytes_as_an_image(data: bytes, name: str) -> None:
    root, config = workspace()
    (config.image_root / name).write_bytes(data)
    response = create_app(config).test_client().get(f"/image/{name}?w=20")
    assert response.status_code in ALLOWED
    if response.status_code != 200:
        assert response.mimetype == "application/json"


_QUERY_PIECES = st.sampled_from(
    [
        "w",
        "h",
        "fit",
        "dpr",
        "fmt",
        "q",
        "bg",
        "preset",
        "sig",
        "=",
        "&",
        "%",
        "%00",
        "%ff",
        "..",
        "1",
        "0",
        "-",
        ".",
        "x",
    ]
)


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(_QUERY_PIECES | st.text(max_size=6), max_size=12).map("".join), st.text(max_size=40))
def test_arbitrary_queries_and_ids(query: str, image_id: str) -> None:
    _, config = workspace()
    client = create_app(config).test_client()
    query = query.replace("#", "%23")
    assert client.get("/image/ok.png?" + query).status_code in ALLOWED
    response = client.get("/image/" + image_id.replace("?", "%3F").replace("#", "%23") + "?" + query)
    assert response.status_code in ALLOWED
