import pytest

from proxy.formats import FORMATS, LEGACY, SOURCE, negotiate, pick


def accept(*pairs: tuple[str, float]) -> str:
    return ", ".join(f"{name};q={quality}" for name, quality in pairs)


AVIF_WRITABLE = "avif" in FORMATS


def test_explicit_format_ignores_accept() -> None:
    assert negotiate("png", accept(("image/webp", 1))) == "png"
    assert negotiate(None, accept(("image/webp", 1))) == SOURCE


def test_auto_prefers_avif_then_webp() -> None:
    both = accept(("image/avif", 1), ("image/webp", 1), ("*/*", 0.8))
    assert negotiate("auto", both) == ("avif" if AVIF_WRITABLE else "webp")
    assert negotiate("auto", accept(("image/webp", 0.5), ("*/*", 0.8))) == "webp"


@pytest.mark.parametrize(
    "header",
    [
        accept(("*/*", 1)),
        accept(("image/*", 1)),
        accept(("image/webp", 0), ("image/avif", 0), ("*/*", 1)),
        accept(("text/html", 1)),
        accept(),
    ],
)
def test_wildcards_and_refusals_never_select_modern_formats(header: str) -> None:
    assert negotiate("auto", header) == LEGACY


def test_pick_resolves_targets_after_decoding() -> None:
    assert pick(LEGACY, "png", has_alpha=True).name == "png"
    assert pick(LEGACY, "png", has_alpha=False).name == "jpeg"
    assert pick(SOURCE, "jpeg", has_alpha=False).name == "jpeg"
    assert pick(SOURCE, "webp", has_alpha=True).name == "webp"
    assert pick(SOURCE, "bmp", has_alpha=False).name == "png"
    assert pick(SOURCE, "tiff", has_alpha=True).name == "png"
    assert pick("webp", "png", has_alpha=True).name == "webp"


def test_mime_types() -> None:
    assert {f.name: f.mime for f in FORMATS.values()}.items() >= {
        "png": "image/png",
        "jpeg": "image/jpeg",
        "webp": "image/webp",
    }.items()
