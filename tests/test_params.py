from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from proxy.errors import InvalidParameter
from proxy.params import DEFAULT_QUALITY, ImageParams, parse_params, query_parser
from proxy.settings import Settings

DEFAULTS = Settings()


def parse_pairs(*pairs: tuple[str, str], max_dimension: int = 8192) -> ImageParams:
    return parse_params(MultiDict(pairs), replace(DEFAULTS, max_dimension=max_dimension))


def test_defaults() -> None:
    params = parse_pairs()
    assert params == ImageParams()
    assert (params.width, params.height, params.fit, params.fmt) == (None, None, "inside", None)
    assert params.quality == DEFAULT_QUALITY
    assert params.background == (255, 255, 255, 255)


def test_full_request() -> None:
    params = parse_pairs(
        ("w", "400"), ("h", "300"), ("fit", "cover"), ("fmt", "webp"), ("q", "70"), ("bg", "0a0B0c")
    )
    assert params == ImageParams(400, 300, "cover", "webp", 70, (10, 11, 12, 255))


def test_equivalent_requests_are_one_canonical_transform() -> None:
    a = parse_pairs(("w", "0300"), ("fmt", "jpeg"), ("q", "082"))
    b = parse_pairs(("fmt", "jpeg"), ("w", "300"))
    assert a == b
    assert a.canonical() == b.canonical()


def test_different_requests_differ() -> None:
    seen = {
        parse_pairs(*pairs).canonical()
        for pairs in [
            (),
            (("w", "300"),),
            (("h", "300"),),
            (("w", "300"), ("h", "300")),
            (("w", "300"), ("h", "300"), ("fit", "cover")),
            (("fmt", "webp"),),
            (("fmt", "auto"),),
            (("q", "50"),),
            (("bg", "000"),),
        ]
    }
    assert len(seen) == 9


def test_dpr_multiplies_the_box() -> None:
    params = parse_pairs(("w", "200"), ("h", "101"), ("dpr", "1.5"))
    assert (params.width, params.height) == (300, 152)  # 151.5 rounds half up
    assert params == parse_pairs(("w", "300"), ("h", "152"))


def test_fit_is_irrelevant_without_a_box() -> None:
    assert parse_pairs(("w", "300"), ("fit", "cover")) == parse_pairs(("w", "300"))


def test_quality_is_irrelevant_for_png() -> None:
    assert parse_pairs(("fmt", "png"), ("q", "10")) == parse_pairs(("fmt", "png"))


@pytest.mark.parametrize(
    ("raw", "rgba"),
    [
        ("fff", (255, 255, 255, 255)),
        ("F00", (255, 0, 0, 255)),
        ("123456", (0x12, 0x34, 0x56, 255)),
        ("12345678", (0x12, 0x34, 0x56, 0x78)),
    ],
)
def test_background_forms(raw: str, rgba: tuple[int, int, int, int]) -> None:
    assert parse_pairs(("bg", raw)).background == rgba


@pytest.mark.parametrize(
    ("pairs", "culprit"),
    [
        ((("w", "0"),), "w"),
        ((("w", "-5"),), "w"),
        ((("w", "8193"),), "w"),
        ((("w", "9" * 5000),), "w"),
        ((("w", "1.5"),), "w"),
        ((("w", "٣٠٠"),), "w"),  # Arabic-Indic digits
        ((("w", " 300"),), "w"),
        ((("w", "3_00"),), "w"),
        ((("h", "abc"),), "h"),
        ((("w", "5000"), ("dpr", "2")), "w"),  # over the limit only after dpr
        ((("dpr", "0.5"),), "dpr"),
        ((("dpr", "4.01"),), "dpr"),
        ((("dpr", "1.234"),), "dpr"),
        ((("dpr", "nan"),), "dpr"),
        ((("fit", "crop"),), "fit"),
        ((("fmt", "gif"),), "fmt"),
        ((("fmt", "PNG"),), "fmt"),
        ((("q", "0"),), "q"),
        ((("q", "101"),), "q"),
        ((("bg", "ff"),), "bg"),
        ((("bg", "ggg"),), "bg"),
        ((("bg", "#fff"),), "bg"),
        ((("w", ""),), "w"),
        ((("w", "100"), ("w", "200")), "w"),
        ((("width", "100"),), "width"),
    ],
)
def test_invalid_parameters_name_the_culprit(pairs: tuple[tuple[str, str], ...], culprit: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_pairs(*pairs)
    assert caught.value.parameter == culprit
    assert caught.value.status == 400


def test_max_dimension_comes_from_settings() -> None:
    assert parse_pairs(("w", "100"), max_dimension=100).width == 100
    with pytest.raises(InvalidParameter, match=r"1\.\.100"):
        parse_pairs(("w", "101"), max_dimension=100)


@given(
    st.dictionaries(st.sampled_from(["w", "h", "fit", "dpr", "fmt", "q", "bg", "x"]), st.text(max_size=12))
)
def test_parser_accepts_or_rejects_cleanly(query: dict[str, str]) -> None:
    """Any query either parses into in-range values or raises InvalidParameter, nothing else."""
    try:
        params = parse_params(MultiDict(query), DEFAULTS)
    except InvalidParameter as error:
        assert error.parameter in query
        return
    for side in (params.width, params.height):
        assert side is None or 1 <= side <= 8192
    assert 1 <= params.quality <= 100
    assert params == parse_params(MultiDict(query), DEFAULTS)


@given(
    st.integers(1, 2000),
    st.integers(1, 2000),
    st.sampled_from(["inside", "cover", "fill", "contain"]),
    st.sampled_from(["1", "1.5", "2", "3.25", "4"]),
)
def test_padding_and_order_never_change_the_transform(w: int, h: int, fit: str, dpr: str) -> None:
    a = parse_pairs(("w", str(w)), ("h", str(h)), ("fit", fit), ("dpr", dpr))
    b = parse_pairs(("dpr", dpr + "0" if "." in dpr else dpr), ("fit", fit), ("h", f"00{h}"), ("w", f"0{w}"))
    assert a.canonical() == b.canonical()


def test_query_parser_remembers_what_it_accepted() -> None:
    parse = query_parser(DEFAULTS, size=2)
    first = parse("w=300&fmt=webp")
    assert first == parse_pairs(("w", "300"), ("fmt", "webp"))
    assert parse("w=300&fmt=webp") is first  # remembered: the same value, not parsed again
    assert parse("fmt=webp&w=0300") == first and parse("w=%33%30%30&fmt=webp") == first
    for _ in range(2):  # refusals are not remembered, and say the same each time
        with pytest.raises(InvalidParameter, match="w"):
            parse("w=%FF")
    parse("w=1")
    parse("w=2")
    assert parse("w=300&fmt=webp") is not first  # its size bounds it
