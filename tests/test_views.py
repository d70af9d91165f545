"""The HTTP interface through Flask's test client: statuses, headers, bodies."""

from dataclasses import replace
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image as PILImage

from proxy import create_app
from proxy.formats import FORMATS
from proxy.keys import kind_key
from proxy.settings import Settings
from proxy.sources.files import FileStore

from .support.images import decode


def assert_json_error(response, status: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers
    body = response.get_json()
    assert body["status"] == status and body["error"]
    return body  # type: ignore[no-any-return]


def test_resize_and_convert(client: FlaskClient) -> None:
    response = client.get("/image/photo.jpg?w=300&fmt=webp")
    assert response.status_code == 200
    assert response.mimetype == "image/webp"
    assert response.data[8:12] == b"WEBP"
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert decode(response.data).shape == (200, 300, 3)


def test_caching_headers(client: FlaskClient) -> None:
    response = client.get("/image/photo.jpg?w=100")
    assert (
        response.headers["Cache-Control"]
        == "public, max-age=3600, stale-while-revalidate=60, stale-if-error=86400"
    )
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert response.headers["Last-Modified"].endswith("GMT")
    assert "Vary" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_nested_ids(client: FlaskClient) -> None:
    response = client.get("/image/nested/deep.webp?h=60")
    assert response.status_code == 200 and response.mimetype == "image/webp"
    assert decode(response.data).shape[:2] == (60, 80)


def test_no_parameters_returns_the_source_size_in_its_format(client: FlaskClient) -> None:
    response = client.get("/image/quadrants.png")
    assert response.mimetype == "image/png"
    assert decode(response.data).shape == (200, 300, 3)


def test_dpr(client: FlaskClient) -> None:
    response = client.get("/image/photo.jpg?w=100&dpr=2.5")
    assert decode(response.data).shape[:2] == (167, 250)


def test_equivalent_urls_share_an_etag(client: FlaskClient) -> None:
    a = client.get("/image/photo.jpg?w=0300&fmt=jpeg").headers["ETag"]
    b = client.get("/image/photo.jpg?fmt=jpeg&w=300").headers["ETag"]
    c = client.get("/image/photo.jpg?fmt=jpeg&w=301").headers["ETag"]
    assert a == b != c


@pytest.mark.parametrize(
    ("accept", "mime"),
    [
        ("image/webp,*/*;q=0.8", "image/webp"),
        ("image/avif,image/webp,*/*", "image/avif" if "avif" in FORMATS else "image/webp"),
        ("*/*", "image/jpeg"),
        ("image/*", "image/jpeg"),
        ("image/webp;q=0, */*", "image/jpeg"),
        ("", "image/jpeg"),
    ],
)
def test_auto_negotiates_from_accept(client: FlaskClient, accept: str, mime: str) -> None:
    response = client.get("/image/photo.jpg?w=100&fmt=auto", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == mime
    assert response.headers["Vary"] == "Accept"
    decode(response.data)


def test_auto_picks_png_for_alpha(client: FlaskClient) -> None:
    response = client.get("/image/alpha.png?w=100&fmt=auto", headers={"Accept": "*/*"})
    assert response.mimetype == "image/png"
    out = decode(response.data)
    assert out.shape == (67, 100, 4) and out[30, 10, 3] == 0 and out[30, 90, 3] == 255


def test_different_negotiations_have_different_etags(client: FlaskClient) -> None:
    webp = client.get("/image/photo.jpg?fmt=auto", headers={"Accept": "image/webp"}).headers["ETag"]
    jpeg = client.get("/image/photo.jpg?fmt=auto", headers={"Accept": "*/*"}).headers["ETag"]
    assert webp != jpeg


def test_jpeg_flattens_onto_bg(client: FlaskClient) -> None:
    out = decode(client.get("/image/alpha.png?fmt=jpeg&bg=00ff00").data)
    assert out.shape == (200, 300, 3)
    assert np.all(np.abs(out[100, 20].astype(int) - (0, 255, 0)) < 12)
    assert np.all(np.abs(out[100, 280].astype(int) - (0, 0, 255)) < 12)


def test_head_has_the_get_headers_and_no_body(client: FlaskClient) -> None:
    get = client.get("/image/photo.jpg?w=120&fmt=png")
    head = client.head("/image/photo.jpg?w=120&fmt=png")
    assert head.status_code == 200 and head.data == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control"):
        assert head.headers[name] == get.headers[name]


def test_if_none_match_answers_304(client: FlaskClient) -> None:
    first = client.get("/image/photo.jpg?w=100&fmt=auto", headers={"Accept": "image/webp"})
    etag = first.headers["ETag"]
    for header in (etag, f'"nope", {etag}', "*", f"W/{etag}"):
        response = client.get(
            "/image/photo.jpg?w=100&fmt=auto", headers={"If-None-Match": header, "Accept": "image/webp"}
        )
        assert response.status_code == 304, header
        assert response.data == b""
        assert response.headers["ETag"] == etag
        assert response.headers["Cache-Control"] == first.headers["Cache-Control"]
        assert response.headers["Last-Modified"] == first.headers["Last-Modified"]
        assert response.headers["Vary"] == "Accept"
        assert "Content-Type" not in response.headers and "Content-Length" not in response.headers
    changed = client.get("/image/photo.jpg?w=100", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


def test_if_modified_since(client: FlaskClient) -> None:
    first = client.get("/image/photo.jpg?w=50")
    stamp = first.headers["Last-Modified"]
    assert client.get("/image/photo.jpg?w=50", headers={"If-Modified-Since": stamp}).status_code == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get("/image/photo.jpg?w=50", headers={"If-Modified-Since": old}).status_code == 200
    # If-None-Match wins over If-Modified-Since when both are present
    both = {"If-Modified-Since": stamp, "If-None-Match": '"other"'}
    assert client.get("/image/photo.jpg?w=50", headers=both).status_code == 200


def test_replaced_original_gets_a_new_etag_and_image(client: FlaskClient, image_root: Path) -> None:
    first = client.get("/image/quadrants.png?w=30")
    (image_root / "quadrants.png").write_bytes((image_root / "alpha.png").read_bytes())
    second = client.get("/image/quadrants.png?w=30", headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert second.headers["ETag"] != first.headers["ETag"]
    assert decode(second.data).shape == (20, 30, 4)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("w=abc", "w"),
        ("w=0", "w"),
        ("w=99999", "w"),
        ("fit=crop&w=1&h=1", "fit"),
        ("fmt=gif", "fmt"),
        ("q=101", "q"),
        ("bg=xyz", "bg"),
        ("dpr=5", "dpr"),
        ("w=1&w=2", "w"),
        ("size=3", "size"),
        ("w=", "w"),
        ("w=9&h=9&fit=cover&gravity=up", "gravity"),
        ("w=9&h=9&fit=cover&fp=0.5", "fp"),
        ("w=9&h=9&fit=cover&fp=0.5,0.5&gravity=north", "fp"),
        ("rect=0,0,601,400", "rect"),  # the original is 600x400
        ("rect=10,10,10", "rect"),
    ],
)
def test_bad_parameters_are_400(client: FlaskClient, query: str, parameter: str) -> None:
    body = assert_json_error(client.get(f"/image/photo.jpg?{query}"), 400)
    assert body["parameter"] == parameter
    assert parameter in str(body["error"])


def test_a_rect_outside_the_original_says_how_large_it_is(client: FlaskClient) -> None:
    body = assert_json_error(client.get("/image/photo.jpg?rect=500,0,200,100"), 400)
    assert "600x400" in str(body["error"])
    good = client.get("/image/photo.jpg?rect=100,50,200,100&fmt=png")
    assert good.status_code == 200 and decode(good.data).shape == (100, 200, 3)


@pytest.mark.parametrize(
    "path",
    [
        "/image/missing.jpg",
        "/image/../conftest.py",
        "/image/%2e%2e/secret.jpg",
        "/image/nested/%2e%2e/%2e%2e/secret.jpg",
        "/image/nested%2f..%2f..%2fsecret.jpg",
        "/image//etc/passwd",
        "/image/photo.jpg%00.png",
        "/image/nested%5cdeep.webp",
        "/image/" + "a" * 2000,
        "/image/",
        "/nothing-here",
    ],
)
def test_unknown_and_escaping_paths_are_404(client: FlaskClient, image_root: Path, path: str) -> None:
    (image_root.parent / "secret.jpg").write_bytes((image_root / "photo.jpg").read_bytes())
    assert_json_error(client.get(path), 404)


@pytest.mark.parametrize("name", ["empty.jpg", "text.jpg"])
def test_undecodable_sources_are_415(client: FlaskClient, name: str) -> None:
    assert_json_error(client.get(f"/image/{name}?w=10"), 415)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405(client: FlaskClient, method: str) -> None:
    response = client.open("/image/photo.jpg", method=method)
    assert_json_error(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_errors_never_get_validators_even_with_conditionals(client: FlaskClient) -> None:
    response = client.get("/image/missing.jpg", headers={"If-None-Match": "*"})
    assert_json_error(response, 404)


def test_unexpected_errors_are_json_500_without_internals(client: FlaskClient, app) -> None:  # type: ignore[no-untyped-def]
    app.extensions["proxy"].cache.fetch = None  # sabotage: the view now fails where nothing expects it
    response = client.get("/image/photo.jpg")
    body = assert_json_error(response, 500)
    assert body["error"] == "internal error" and "request_id" in body
    assert "Traceback" not in response.get_data(as_text=True)


def test_second_request_is_a_cache_hit_with_identical_bytes(client: FlaskClient) -> None:
    first = client.get("/image/photo.jpg?w=200&fmt=webp")
    second = client.get("/image/photo.jpg?w=200&fmt=webp")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert first.data == second.data
    for name in ("ETag", "Last-Modified", "Content-Type", "Content-Length", "Cache-Control"):
        assert first.headers[name] == second.headers[name]


def test_large_hits_stream_from_the_cache_file(client: FlaskClient) -> None:
    first = client.get("/image/photo.jpg?fmt=png")  # ~500 KB: stored as a file of its own
    assert len(first.data) > 100_000
    second = client.get("/image/photo.jpg?fmt=png", buffered=True)
    assert second.headers["X-Cache"] == "HIT"
    assert second.data == first.data
    assert int(second.headers["Content-Length"]) == len(first.data)
    head = client.head("/image/photo.jpg?fmt=png")
    assert head.data == b"" and head.headers["Content-Length"] == second.headers["Content-Length"]


def test_explicit_and_negotiated_webp_share_one_cached_variant(client: FlaskClient) -> None:
    explicit = client.get("/image/photo.jpg?w=90&fmt=webp")
    negotiated = client.get("/image/photo.jpg?w=90&fmt=auto", headers={"Accept": "image/webp"})
    assert negotiated.headers["X-Cache"] == "HIT"
    assert negotiated.headers["ETag"] == explicit.headers["ETag"]
    assert negotiated.headers["Vary"] == "Accept" and "Vary" not in explicit.headers


@pytest.mark.parametrize(
    ("name", "queries", "mime"),
    [
        ("photo.jpg", ["w=300", "w=300&fmt=jpeg", "w=0300&fmt=auto"], "image/jpeg"),
        ("alpha.png", ["w=120", "w=120&fmt=png", "w=120&fmt=auto"], "image/png"),
        ("moving.gif", ["w=40", "w=40&fmt=webp"], "image/webp"),  # an animation stays one, as WebP
        ("moving.gif", ["w=40&frame=1", "w=40&frame=1&fmt=png"], "image/png"),
    ],
)
def test_one_variant_per_format_produced_however_it_was_asked_for(
    app,
    image_root: Path,
    name: str,
    queries: list[str],
    mime: str,  # type: ignore[no-untyped-def]
) -> None:
    """No fmt (the original's format), fmt=auto for a client that takes neither AVIF nor WebP,
    and the format named: one render, one entry, one ETag, and the later ones hit."""
    frames = [PILImage.new("RGB", (80, 60), colour) for colour in ("red", "blue", "green")]
    frames[0].save(image_root / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    client = app.test_client()
    answers = [client.get(f"/image/{name}?{query}", headers={"Accept": "*/*"}) for query in queries]
    assert {a.status_code for a in answers} == {200} and {a.mimetype for a in answers} == {mime}
    assert len({a.headers["ETag"] for a in answers}) == 1
    assert [a.headers["X-Cache"] for a in answers] == ["MISS"] + ["HIT"] * (len(queries) - 1)
    numbers = app.extensions["proxy"].cache.stats()
    assert numbers["entries"] == 1 and numbers["renders"] == 1


def test_a_non_image_is_refused_before_any_render(client: FlaskClient, app, image_root: Path) -> None:  # type: ignore[no-untyped-def]
    """Its kind is remembered like an image's, refusal and all: the second request reads no header."""
    cache = app.extensions["proxy"].cache
    for _ in range(2):
        assert_json_error(client.get("/image/text.jpg?w=10"), 415)
    assert cache.stats()["renders"] == 0
    source = FileStore(image_root).resolve("text.jpg")
    remembered = cache.get_value(kind_key(source.id, source.version))
    assert isinstance(remembered, str) and remembered.startswith("!")  # the refusal, shared by workers


def test_a_304_does_not_touch_the_cache(client: FlaskClient, app) -> None:  # type: ignore[no-untyped-def]
    cache = app.extensions["proxy"].cache
    etag = client.get("/image/photo.jpg?w=64").headers["ETag"]
    before = cache.stats()
    for _ in range(5):
        assert client.get("/image/photo.jpg?w=64", headers={"If-None-Match": etag}).status_code == 304
    after = cache.stats()
    assert (after["hits"], after["misses"]) == (before["hits"], before["misses"])


def test_errors_are_not_cached(client: FlaskClient, app) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        assert client.get("/image/text.jpg?w=10").status_code == 415
    assert app.extensions["proxy"].cache.stats()["entries"] == 0


def test_replaced_original_is_rendered_again(client: FlaskClient, image_root: Path) -> None:
    client.get("/image/quadrants.png?w=30")
    (image_root / "quadrants.png").write_bytes((image_root / "alpha.png").read_bytes())
    again = client.get("/image/quadrants.png?w=30")
    assert again.headers["X-Cache"] == "MISS"
    assert decode(again.data).shape == (20, 30, 4)


# --- what browsers need: CORS and timing headers, visible errors, enlarging -----------------


def test_images_304s_and_errors_carry_cors_and_timing_headers(client: FlaskClient) -> None:
    image = client.get("/image/photo.jpg?w=50", headers={"Origin": "https://shop.example"})
    again = client.get("/image/photo.jpg?w=50", headers={"If-None-Match": image.headers["ETag"]})
    error = client.get("/image/photo.jpg?w=abc")
    for response in (image, again, error):
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Timing-Allow-Origin"] == "*"
        assert "X-Error" in response.headers["Access-Control-Expose-Headers"]
    assert again.status_code == 304 and "Origin" not in image.headers.get("Vary", "")


def test_a_list_of_origins_answers_with_the_matching_one(settings: Settings) -> None:
    allowed = ("https://shop.example", "https://blog.example")
    client = create_app(replace(settings, cors_origins=allowed)).test_client()
    listed = client.get("/image/photo.jpg?w=50&fmt=auto", headers={"Origin": "https://blog.example"})
    assert listed.headers["Access-Control-Allow-Origin"] == "https://blog.example"
    assert listed.headers["Vary"] == "Accept, Origin"  # both: the format and the CORS answer vary
    other = client.get("/image/photo.jpg?w=50", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers and other.headers["Vary"] == "Origin"
    off = create_app(replace(settings, cors_origins=())).test_client().get("/image/photo.jpg?w=50")
    assert "Access-Control-Allow-Origin" not in off.headers and "Timing-Allow-Origin" not in off.headers
    assert (
        Settings.from_env(
            {"PROXY_IMAGE_ROOT": str(settings.image_root), "PROXY_CORS_ORIGINS": ""}
        ).cors_origins
        == ()
    )


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [("/image/photo.jpg?w=abc", 400, "w: expected an integer"), ("/image/nope.jpg", 404, "no such image")],
)
def test_errors_say_why_in_a_header_too(client: FlaskClient, path: str, status: int, reason: str) -> None:
    response = client.get(path)
    assert response.status_code == status and response.headers["X-Error"].startswith(reason)
    assert response.get_json()["error"] == response.headers["X-Error"]


def test_enlarge_returns_the_asked_size_and_is_its_own_variant(client: FlaskClient) -> None:
    plain = client.get("/image/photo.jpg?w=900&fmt=png")  # the original is 600 wide
    enlarged = client.get("/image/photo.jpg?w=900&enlarge=1&fmt=png")
    assert decode(plain.data).shape[:2] == (400, 600)
    assert decode(enlarged.data).shape[:2] == (600, 900) and enlarged.headers["ETag"] != plain.headers["ETag"]
    plain.close()  # large enough to be streamed from their cache files
    enlarged.close()
    covered = client.get("/image/photo.jpg?w=1000&h=1000&fit=cover&enlarge=1&fmt=jpeg")
    assert decode(covered.data).shape[:2] == (1000, 1000)
    covered.close()
    same = client.get("/image/photo.jpg?enlarge=1&fmt=png")  # no size: nothing to enlarge to
    again = client.get("/image/photo.jpg?fmt=png")
    assert same.headers["ETag"] == again.headers["ETag"] and again.headers["X-Cache"] == "HIT"
    same.close()
    again.close()
    assert client.get("/image/photo.jpg?w=10&enlarge=yes").status_code == 400


def test_auto_formats_follow_the_operators_order(settings: Settings) -> None:
    accept = {"Accept": "image/avif,image/webp,*/*"}
    default = create_app(settings).test_client().get("/image/photo.jpg?w=50&fmt=auto", headers=accept)
    assert default.headers["Content-Type"] == "image/avif"
    webp_first = create_app(replace(settings, auto_formats=("webp", "avif"))).test_client()
    assert (
        webp_first.get("/image/photo.jpg?w=50&fmt=auto", headers=accept).headers["Content-Type"]
        == "image/webp"
    )
    avif_only = {"Accept": "image/avif,*/*"}
    assert (
        webp_first.get("/image/photo.jpg?w=50&fmt=auto", headers=avif_only).headers["Content-Type"]
        == "image/avif"
    )


SAFARI = {"Accept": "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,*/*;q=0.5"}


@pytest.mark.parametrize(("name", "channels"), [("photo.jpg", 3), ("alpha.png", 4)])
def test_jpeg_xl_on_request(client: FlaskClient, name: str, channels: int) -> None:
    """libjxl through imagecodecs: the asked size, the pixels (alpha too), its own type on a hit."""
    first = client.get(f"/image/{name}?w=150&fmt=jxl")
    second = client.get(f"/image/{name}?w=150&fmt=jxl")
    assert [first.status_code, second.status_code] == [200, 200]
    assert first.mimetype == second.mimetype == "image/jxl" and second.headers["X-Cache"] == "HIT"
    assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
    pixels = imagecodecs.jpegxl_decode(first.data)
    assert pixels.shape == (100, 150, channels)
    reference = decode(client.get(f"/image/{name}?w=150&fmt=png").data)  # BGR(A)
    reference = cv2.cvtColor(reference, cv2.COLOR_BGRA2RGBA if channels == 4 else cv2.COLOR_BGR2RGB)
    assert cv2.PSNR(pixels[:, 80:], reference[:, 80:]) > 30  # (colour under alpha 0 is the encoder's)
    if channels == 4:  # the left half of alpha.png is transparent, the right half opaque
        assert pixels[50, 10, 3] < 8 and pixels[50, 140, 3] > 247


def test_jpeg_xl_is_negotiated_only_when_the_operator_lists_it(settings: Settings) -> None:
    default = create_app(settings).test_client().get("/image/photo.jpg?w=50&fmt=auto", headers=SAFARI)
    assert default.mimetype == "image/avif"  # Safari names JPEG XL too, but it is not in the order
    jxl_first = create_app(replace(settings, auto_formats=("jxl", "avif", "webp"))).test_client()
    answer = jxl_first.get("/image/photo.jpg?w=50&fmt=auto", headers=SAFARI)
    assert answer.mimetype == "image/jxl" and answer.headers["Vary"] == "Accept"
    chrome = {"Accept": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"}
    assert jxl_first.get("/image/photo.jpg?w=50&fmt=auto", headers=chrome).mimetype == "image/avif"
    parsed = Settings.from_env(
        {"PROXY_IMAGE_ROOT": str(settings.image_root), "PROXY_AUTO_FORMATS": "jxl,webp"}
    )
    assert parsed.auto_formats == ("jxl", "webp")


@pytest.mark.parametrize("name", ["photo.jpg", "alpha.png"])
def test_webp_effort_trades_bytes_for_time_under_its_own_etag(settings: Settings, name: str) -> None:
    """PROXY_WEBP_EFFORT=0 (libwebp's fastest method; OpenCV's is fixed at 4): other bytes, so
    another ETag and cache entry; the same size, the same picture within lossy coding, alpha kept."""
    query = f"/image/{name}?w=200&fmt=webp&q=80"
    default = create_app(settings).test_client().get(query)
    fast = (
        create_app(replace(settings, cache_dir=settings.cache_dir / "fast", webp_effort=0))
        .test_client()
        .get(query)
    )
    assert default.mimetype == fast.mimetype == "image/webp"
    assert fast.headers["ETag"] != default.headers["ETag"] and fast.data != default.data
    ours, theirs = decode(fast.data), decode(default.data)
    assert ours.shape == theirs.shape and ours.shape[1] == 200
    assert cv2.PSNR(ours[..., :3], theirs[..., :3]) > 30
    if name == "alpha.png":
        assert ours[60, 10, 3] == 0 and ours[60, 190, 3] == 255


# --- what an operator found: claims the code now keeps ---------------------------------------


@pytest.mark.parametrize("path", ["/image/nested%2fdeep.webp", "/image/nested%2Fdeep.webp?w=10"])
def test_an_encoded_slash_is_a_404(client: FlaskClient, path: str) -> None:
    assert client.get("/image/nested/deep.webp?w=10").status_code == 200
    body = assert_json_error(client.get(path), 404)
    assert body["error"] == "no such image"


def test_every_404_says_the_same(client: FlaskClient) -> None:
    bodies = [
        assert_json_error(client.get(path), 404)
        for path in ("/image//etc/passwd", "/image/nope.jpg", "/nothing")
    ]
    assert {body["error"] for body in bodies} == {"no such image"}


@pytest.mark.parametrize(
    "condition", [{"If-None-Match": "*"}, {"If-Modified-Since": "Wed, 01 Jan 2031 00:00:00 GMT"}]
)
def test_only_images_get_304s(client: FlaskClient, condition: dict[str, str]) -> None:
    """text.jpg is not an image: its GET is 415, and so is a conditional GET, never a 304."""
    assert_json_error(client.get("/image/text.jpg", headers=condition), 415)
    assert client.get("/image/photo.jpg?w=10", headers=condition).status_code == 304


def test_an_error_image_for_browsers_when_asked_for(settings: Settings) -> None:
    client = create_app(replace(settings, error_image=True)).test_client()
    browser = {"Accept": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"}
    response = client.get("/image/photo.jpg?w=abc", headers=browser)
    assert response.status_code == 400 and response.headers["Content-Type"] == "image/png"
    assert decode(response.data).shape[:2] == (90, 160) and response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Error"].startswith("w: expected an integer")
    assert client.get("/image/nope.jpg", headers=browser).status_code == 404
    assert_json_error(client.get("/image/photo.jpg?w=abc", headers={"Accept": "*/*"}), 400)  # fetch, curl
    plain = create_app(settings).test_client().get("/image/photo.jpg?w=abc", headers=browser)
    assert_json_error(plain, 400)  # off by default
