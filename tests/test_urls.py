"""proxy.urls: canonical, signed URLs and srcset markup that the origin accepts as they are."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser

import pytest

from proxy import create_app
from proxy.settings import Settings
from proxy.urls import image_url, img_tag, picture_tag, srcset

from .support.images import decode

SECRET = "a-secret-for-signing-urls"


def test_parameters_go_out_in_one_order_and_none_is_left_out() -> None:
    assert image_url("a.jpg", fmt="webp", w=400, h=None) == "/image/a.jpg?w=400&fmt=webp"
    assert image_url("a.jpg", q=70, w=400, fit="cover", h=300) == image_url(
        "a.jpg", w=400, h=300, fit="cover", q=70
    )
    assert image_url("sub dir/é.jpg") == "/image/sub%20dir/%C3%A9.jpg"
    assert image_url("a.jpg", fp="0.3,0.7", rect="0,0,10,10") == "/image/a.jpg?fp=0.3,0.7&rect=0,0,10,10"
    assert (
        image_url("a.jpg", w=10, base="https://img.example.com/")
        == "https://img.example.com/image/a.jpg?w=10"
    )
    with pytest.raises(TypeError, match="width"):
        image_url("a.jpg", width=10)


def test_signed_urls_are_accepted_by_the_origin_and_nothing_else_is(settings: Settings) -> None:
    client = create_app(replace(settings, secret=SECRET)).test_client()
    signed = image_url("photo.jpg", w=120, fmt="png", secret=SECRET)
    response = client.get(signed)
    assert response.status_code == 200 and decode(response.data).shape[1] == 120
    assert client.get(image_url("photo.jpg", w=120, fmt="png")).status_code == 403
    assert client.get(signed.replace("w=120", "w=121")).status_code == 403
    assert (
        client.get(image_url("photo.jpg", w=120, fmt="png", secret="another-secret-entirely")).status_code
        == 403
    )


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(markup)
    return parser.tags


def test_srcset_and_img_markup_work_against_the_origin(settings: Settings) -> None:
    client = create_app(replace(settings, secret=SECRET)).test_client()
    assert (
        srcset("a.jpg", [320, 640], fmt="auto")
        == "/image/a.jpg?w=320&fmt=auto 320w, /image/a.jpg?w=640&fmt=auto 640w"
    )
    ((tag, attrs),) = parse(
        img_tag("photo.jpg", [480, 120, 240], sizes="50vw", alt='A "chair"', secret=SECRET)
    )
    assert tag == "img" and attrs["alt"] == 'A "chair"' and attrs["sizes"] == "50vw"
    assert attrs["src"] == image_url("photo.jpg", w=240, secret=SECRET)  # the middle width
    candidates = [item.rsplit(" ", 1) for item in str(attrs["srcset"]).split(", ")]
    assert [width for _, width in candidates] == ["120w", "240w", "480w"]
    for url, width in candidates:
        response = client.get(url)
        assert response.status_code == 200 and decode(response.data).shape[1] == int(width[:-1])


def test_picture_markup_has_a_source_per_format_and_a_fallback(settings: Settings) -> None:
    client = create_app(settings).test_client()
    tags = parse(picture_tag("photo.jpg", [100, 200], sizes="100vw", alt="x"))
    assert [tag for tag, _ in tags] == ["picture", "source", "source", "img"]
    for (_, attrs), mime in zip(tags[1:3], ("image/avif", "image/webp"), strict=True):
        assert attrs["type"] == mime
        url = str(attrs["srcset"]).split(" ")[0]
        assert client.get(url).headers["Content-Type"] == mime
    assert client.get(str(tags[3][1]["src"])).headers["Content-Type"] == "image/jpeg"


def test_a_ratio_keeps_a_crops_shape_at_every_width() -> None:
    assert srcset("a.jpg", [100, 300], ratio=0.5, fit="cover") == (
        "/image/a.jpg?w=100&h=50&fit=cover 100w, /image/a.jpg?w=300&h=150&fit=cover 300w"
    )
