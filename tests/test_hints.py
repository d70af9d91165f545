"""Client hints and Save-Data (params.hint_reader, PROXY_CLIENT_HINTS=1): a URL without w takes
the slot's width from Sec-CH-Width, rounded up to the step; without dpr, the density from
Sec-CH-DPR; without q, Save-Data's quality; the answer varies on what the URL leaves to the client
and has the ETag of the explicit URL it equals. Off by default: hints change nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask

from proxy import create_app
from proxy.params import Hints, hint_reader
from proxy.settings import Settings
from proxy.settings.parsers import parse_presets

from .support.images import decode


@pytest.fixture
def hinted(settings: Settings) -> Flask:
    return create_app(replace(settings, client_hints=True))


def get(app: Flask, url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    with app.test_client() as client:
        answer = client.get(url, headers={k.replace("_", "-"): v for k, v in headers.items()})
        return answer.status_code, dict(answer.headers), answer.data


def test_sec_ch_width_sizes_a_url_without_w_rounded_up_to_the_step(hinted: Flask) -> None:
    status, headers, body = get(hinted, "/image/photo.jpg", Sec_CH_Width="437")
    assert status == 200 and decode(body).shape[1] == 500
    explicit = get(hinted, "/image/photo.jpg?w=500")
    assert headers["ETag"] == explicit[1]["ETag"] and body == explicit[2]
    assert headers["Vary"] == "Sec-CH-Width, Sec-CH-DPR, Save-Data"
    assert explicit[1]["Vary"] == "Sec-CH-DPR, Save-Data"  # w given: only what it leaves open
    assert decode(get(hinted, "/image/photo.jpg", Sec_CH_Width="9000")[2]).shape[1] == 600  # never enlarged


def test_sec_ch_dpr_multiplies_an_explicit_w_rounded_up_to_a_half(hinted: Flask) -> None:
    status, headers, body = get(hinted, "/image/photo.jpg?w=100", Sec_CH_DPR="2.625")
    assert status == 200 and decode(body).shape[1] == 300  # dpr 3
    assert headers["ETag"] == get(hinted, "/image/photo.jpg?w=100&dpr=3")[1]["ETag"]
    assert decode(get(hinted, "/image/photo.jpg?w=100", Sec_CH_DPR="0.75")[2]).shape[1] == 100
    # A width from Sec-CH-Width is device pixels already: the density is not applied again.
    assert decode(get(hinted, "/image/photo.jpg", Sec_CH_Width="200", Sec_CH_DPR="2")[2]).shape[1] == 200


def test_save_data_lowers_the_quality_unless_the_url_names_one(hinted: Flask, settings: Settings) -> None:
    saving = get(hinted, "/image/photo.jpg?w=300", Save_Data="on")
    plain = get(hinted, "/image/photo.jpg?w=300")
    assert len(saving[2]) < len(plain[2]) * 0.8
    assert (
        saving[1]["ETag"] == get(hinted, f"/image/photo.jpg?w=300&q={settings.save_data_quality}")[1]["ETag"]
    )
    named = get(hinted, "/image/photo.jpg?w=300&q=90", Save_Data="on")
    assert named[2] == get(hinted, "/image/photo.jpg?w=300&q=90")[2] and "Save-Data" not in named[1]["Vary"]


def test_hints_are_ignored_unless_turned_on(app: Flask) -> None:
    status, headers, body = get(app, "/image/photo.jpg", Sec_CH_Width="200", Sec_CH_DPR="2", Save_Data="on")
    assert decode(body).shape[1] == 600 and "Vary" not in headers


def test_a_bad_hint_is_ignored_not_an_error(hinted: Flask) -> None:
    for headers in (
        {"Sec_CH_Width": "wide"},
        {"Sec_CH_Width": "-5"},
        {"Sec_CH_DPR": "NaN"},
        {"Sec_CH_DPR": "x"},
    ):
        status, _, body = get(hinted, "/image/photo.jpg?h=100", **headers)
        assert status == 200 and decode(body).shape[0] == 100


def test_negotiated_formats_vary_on_accept_and_the_hints(hinted: Flask) -> None:
    _, headers, _ = get(hinted, "/image/photo.jpg?fmt=auto", Accept="image/webp", Sec_CH_Width="300")
    assert headers["Vary"] == "Accept, Sec-CH-Width, Sec-CH-DPR, Save-Data"
    assert headers["Content-Type"] == "image/webp"


def test_presets_fix_what_they_set(settings: Settings) -> None:
    presets = parse_presets("PROXY_PRESETS", "thumb=w:120,q:70")
    app = create_app(replace(settings, client_hints=True, presets=presets))
    _, headers, body = get(
        app, "/image/photo.jpg?preset=thumb", Sec_CH_Width="400", Save_Data="on", Sec_CH_DPR="2"
    )
    assert decode(body).shape[1] == 240 and headers["Vary"] == "Sec-CH-DPR"
    only = create_app(replace(settings, client_hints=True, presets=presets, presets_only=True))
    _, headers, body = get(only, "/image/photo.jpg?preset=thumb", Sec_CH_DPR="2")
    assert decode(body).shape[1] == 120 and "Vary" not in headers  # nothing may be added to a preset


def test_the_reader_adds_parameters_and_names_what_varies() -> None:
    read = hint_reader(Settings(width_step=50))
    assert read("", Hints("437", "2.2", "on")) == ("w=450&q=50", ("Sec-CH-Width", "Sec-CH-DPR", "Save-Data"))
    assert read("w=10&dpr=1&q=1", Hints("437", "2.2", "on")) == ("w=10&dpr=1&q=1", ())
    assert read("h=10", Hints(None, "2.2", None)) == (
        "h=10&dpr=2.5",
        ("Sec-CH-Width", "Sec-CH-DPR", "Save-Data"),
    )
