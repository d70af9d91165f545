"""The playground at /, in a real browser: Debian's chromium, driven by Playwright, against a real
gunicorn. .ci/run installs chromium; without it the browser tests are skipped, and say so."""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from proxy import create_app
from proxy.settings import Settings
from proxy.urls import image_url

from .support.browser import accessibility_violations, needs_axe, needs_browser, new_page, raw_statuses
from .support.images import decode
from .support.servers import REPO, Server, start_gunicorn


def test_off_by_default_and_then_a_404(client: FlaskClient) -> None:
    assert client.get("/").status_code == 404
    assert client.get("/playground/url?id=photo.jpg").status_code == 404
    assert client.get("/playground/static/playground.js").status_code == 404


@pytest.fixture
def playground(settings: Settings) -> FlaskClient:
    signing = {"secret": "a-secret-for-signing-urls", "playground_sign": True}
    return create_app(replace(settings, playground=True, **signing)).test_client()  # type: ignore[arg-type]


def test_with_a_secret_the_playground_signs_only_when_let(settings: Settings) -> None:
    """It would sign any parameters for anyone who can open it: the operator opts in."""
    client = create_app(replace(settings, playground=True, secret="a-secret-for-signing-urls")).test_client()
    refused = client.get("/playground/url?id=photo.jpg&w=200")
    assert refused.status_code == 403 and "PROXY_PLAYGROUND_SIGN=1" in refused.get_json()["error"]
    page = client.get("/").get_data(as_text=True)
    assert "PROXY_PLAYGROUND_SIGN=1" in page and "sig=" not in page


def test_the_markup_keeps_the_crop_at_every_candidate(playground: FlaskClient) -> None:
    """w=400&h=200&fit=cover: every srcset candidate is 2:1, as fetched."""
    body = playground.get("/playground/url?id=photo.jpg&w=400&h=200&fit=cover&widths=100,300").get_json()
    candidates = [entry.strip().split(" ")[0] for entry in body["srcset"].split(",")]
    assert len(candidates) == 2
    for candidate, width in zip(candidates, (100, 300), strict=True):
        answer = playground.get(candidate)
        assert answer.status_code == 200 and decode(answer.data).shape[:2] == (width // 2, width)
    picture = html.unescape(body["picture"])
    assert "h=50&" in picture and "h=150&" in picture


def test_the_urls_carry_the_originals_version(playground: FlaskClient, image_root: Path) -> None:
    """A replaced original gets new URLs: no browser or front holds them yet."""
    first = playground.get("/playground/url?id=photo.jpg&w=200").get_json()
    assert "&v=" in first["url"] and "&v=" in first["srcset"] and "&v=" in first["original_url"]
    (image_root / "photo.jpg").write_bytes((image_root / "quadrants.png").read_bytes())
    os.utime(image_root / "photo.jpg", (1, 1))
    again = playground.get("/playground/url?id=photo.jpg&w=200").get_json()
    assert again["url"] != first["url"]
    assert playground.get(again["url"]).status_code == playground.get(first["url"]).status_code == 200


def test_the_page_lists_originals_with_signed_thumbnails(playground: FlaskClient) -> None:
    page = playground.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "nested/deep.webp" in html and "photo.jpg" in html
    assert "a-secret-for-signing-urls" not in html  # signed by the server; the secret stays there
    thumb = image_url("photo.jpg", w=96, h=96, fit="cover", fmt="webp", secret="a-secret-for-signing-urls")
    assert thumb.replace("&", "&amp;") in html and playground.get(thumb).status_code == 200


def test_the_url_endpoint_builds_signed_urls_and_names_bad_parameters(playground: FlaskClient) -> None:
    body = playground.get("/playground/url?id=photo.jpg&w=200&fmt=webp&widths=100,300").get_json()
    assert re.fullmatch(r"/image/photo.jpg\?w=200&fmt=webp&v=[0-9a-f]{8}&sig=[\w-]+", body["url"])
    assert playground.get(body["url"]).status_code == 200
    assert body["original"] == {
        "format": "jpeg",
        "width": 600,
        "height": 400,
        "bytes": body["original"]["bytes"],
    }
    assert " 100w, " in body["srcset"] and "<picture>" in body["picture"] and "sig=" in body["img"]
    for query, parameter in (
        ("w=0", "w"),
        ("fit=crop", "fit"),
        ("widths=a,b", "widths"),
        ("gravity=up", "gravity"),
    ):
        bad = playground.get(f"/playground/url?id=photo.jpg&{query}")
        assert bad.status_code == 400 and bad.get_json()["parameter"] == parameter, query
    assert playground.get("/playground/url?id=missing.jpg").status_code == 404
    assert playground.get("/playground/url?id=../secret").status_code == 404


# --- in chromium ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    images = tmp_path_factory.mktemp("images")
    for name in ("rocket.jpg", "astronaut.png", "coffee-cutout.png"):
        shutil.copy(REPO / "samples" / name, images / name)
    env = {
        "PROXY_IMAGE_ROOT": str(images),
        "PROXY_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "PROXY_PLAYGROUND": "1",
        "PROXY_MAX_AGE": "0",  # browsers revalidate every time: the reload test sees 304s
    }
    server = start_gunicorn(env, workers=2)
    yield server
    server.stop()


def loaded(page: object, base: str) -> None:
    page.goto(base + "/")  # type: ignore[attr-defined]
    page.wait_for_function("document.getElementById('status').textContent === '200'")  # type: ignore[attr-defined]


@needs_browser
def test_the_page_loads_without_errors_and_every_control_changes_the_preview(
    chromium: object, server: Server
) -> None:
    base = f"http://127.0.0.1:{server.port}"
    page = new_page(chromium)
    loaded(page, base)
    controls = [
        ("input[name=w]", "fill", "150", "w=150"),
        ("input[name=h]", "fill", "90", "h=90"),
        ("select[name=fit]", "select", "cover", "fit=cover"),
        ("select[name=gravity]", "select", "attention", "gravity=attention"),
        ("input[name=fp]", "fill", "0.3,0.6", "fp=0.3,0.6"),
        ("input[name=rect]", "fill", "10,10,300,300", "rect=10,10,300,300"),
        ("select[name=dpr]", "select", "2", "dpr=2"),
        ("select[name=fmt]", "select", "webp", "fmt=webp"),
        ("input[name=q]", "fill", "55", "q=55"),
        ("input[name=bg]", "fill", "ff0000", "bg=ff0000"),
        ("input[name=trim]", "fill", "10", "trim=10"),
        ("select[name=rot]", "select", "90", "rot=90"),
        ("select[name=flip]", "select", "h", "flip=h"),
        ("input[name=blur]", "fill", "1.5", "blur=1.5"),
        ("input[name=sharpen]", "fill", "1", "sharpen=1"),
        ("input[name=pixelate]", "fill", "4", "pixelate=4"),
        ("input[name=mark_text]", "fill", "Shop", "mark_text=Shop"),
        ("select[name=mark_pos]", "select", "tile", "mark_pos=tile"),
        ("input[name=mark_scale]", "fill", "0.1", "mark_scale=0.1"),
        ("input[name=mark_alpha]", "fill", "60", "mark_alpha=60"),
        ("input[name=mark_pad]", "fill", "5", "mark_pad=5"),
    ]
    for selector, action, value, expected in controls:
        if selector == "input[name=fp]":
            page.select_option("select[name=gravity]", "")  # fp and gravity are exclusive
        before = page.eval_on_selector("#preview", "e => e.src")
        if action == "fill":
            page.fill(selector, value)
        else:
            page.select_option(selector, value)
        page.wait_for_function(
            "([expected, before]) => document.getElementById('url').textContent.includes(expected)"
            " && document.getElementById('preview').src !== before"
            " && document.getElementById('status').textContent === '200'",
            arg=[expected, before],
        )
    assert page.text_content("#type") == "image/webp"
    assert page.eval_on_selector("#preview", "e => [e.naturalWidth, e.naturalHeight]") == [300, 180]  # dpr 2
    page.click("button.original[data-id='rocket.jpg']")
    page.wait_for_function("document.getElementById('url').textContent.startsWith('/image/rocket.jpg?')")
    page.click("#original", position={"x": 10, "y": 10})  # a focal point near the top left
    page.wait_for_function("document.querySelector('input[name=fp]').value.startsWith('0.0')")
    assert page.errors == []  # nothing went wrong on the page


@needs_browser
def test_an_invalid_value_shows_the_servers_message_beside_its_field(
    chromium: object, server: Server
) -> None:
    page = new_page(chromium)
    loaded(page, f"http://127.0.0.1:{server.port}")
    page.fill("input[name=q]", "500")
    page.wait_for_function("document.querySelector('.error[data-for=q]').textContent.includes('1..100')")
    assert page.text_content(".error[data-for=w]") == ""
    page.fill("input[name=q]", "60")
    page.wait_for_function("document.querySelector('.error[data-for=q]').textContent === ''")


@needs_browser
def test_a_format_the_browser_cannot_show_is_said_so(chromium: object, server: Server) -> None:
    """Chromium shows no JPEG XL: the page says what came and why there is no picture."""
    page = new_page(chromium)
    loaded(page, f"http://127.0.0.1:{server.port}")
    page.select_option("select[name=fmt]", "jxl")
    page.wait_for_function("document.getElementById('result-info').textContent.includes('cannot display')")
    assert page.text_content("#type") == "image/jxl" and "image/jxl" in page.text_content("#result-info")
    assert page.errors == []


@pytest.mark.slow
@needs_browser
def test_a_reload_revalidates_cached_images_with_304s(chromium: object, server: Server) -> None:
    """max-age=0 here: on a reload Chromium asks again with If-None-Match for every image it holds,
    and gets 304s, read from its own network events (DevTools' raw status, not the cached 200)."""
    page = new_page(chromium)
    loaded(page, f"http://127.0.0.1:{server.port}")
    page.wait_for_load_state("networkidle")
    raw = raw_statuses(page)
    page.reload()
    page.wait_for_function("document.getElementById('status').textContent !== ''")
    page.wait_for_load_state("networkidle")
    assert raw.count(304) >= 4, raw  # three thumbnails and the original, at least
    assert set(raw) <= {200, 304}


@needs_browser
@pytest.mark.parametrize(("scale", "expected"), [(1, 640), (2, 960)])
def test_srcset_picks_the_width_the_viewport_and_scale_call_for(
    chromium: object, server: Server, scale: float, expected: int
) -> None:
    """A 400 px wide viewport, sizes=100vw: 400 device pixels want the 640w candidate, 800 the 960w."""
    base = f"http://127.0.0.1:{server.port}"
    page = new_page(chromium, scale=scale, width=400)
    page.goto(base + "/playground/url?id=rocket.jpg&widths=320,640,960,1280&sizes=100vw")
    markup = page.evaluate("JSON.parse(document.body.innerText).img")
    page.goto(base + "/playground/static/playground.css")  # any same-origin page to host the markup
    eager = markup.replace('loading="lazy" ', "")
    page.set_content("<!doctype html><body style='margin:0'>" + eager + "</body>")
    page.wait_for_function(
        "document.querySelector('img').complete && document.querySelector('img').naturalWidth > 0"
    )
    chosen = page.eval_on_selector("img", "e => e.currentSrc")
    assert f"w={expected}" in chosen, chosen


@needs_browser
@needs_axe
def test_the_page_has_no_serious_accessibility_violation(chromium: object, server: Server) -> None:
    """axe-core, the rules browsers' audits use, on the page once it has shown a result."""
    page = new_page(chromium)
    loaded(page, f"http://127.0.0.1:{server.port}")
    assert accessibility_violations(page) == []
