from dataclasses import replace
from decimal import Decimal

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
        ((("w", "9"), ("h", "9"), ("fit", "cover"), ("gravity", "top")), "gravity"),
        ((("w", "9"), ("h", "9"), ("fit", "cover"), ("gravity", "Center")), "gravity"),
        ((("fp", "0.5"),), "fp"),
        ((("fp", "0.5,1.1"),), "fp"),
        ((("fp", "-0.1,0.5"),), "fp"),
        ((("fp", "0.12345,0.5"),), "fp"),
        ((("fp", "0.5, 0.5"),), "fp"),
        ((("fp", "nan,0.5"),), "fp"),
        ((("fp", "0.3,0.3"), ("gravity", "north")), "fp"),
        ((("rect", "0,0,10"),), "rect"),
        ((("rect", "0,0,0,10"),), "rect"),
        ((("rect", "-1,0,10,10"),), "rect"),
        ((("rect", "0,0,10,10,10"),), "rect"),
        ((("rect", "0,0,1e3,10"),), "rect"),
    ],
)
def test_invalid_parameters_name_the_culprit(pairs: tuple[tuple[str, str], ...], culprit: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_pairs(*pairs)
    assert caught.value.parameter == culprit
    assert caught.value.status == 400


def test_unknown_gravity_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_pairs(("w", "9"), ("h", "9"), ("fit", "cover"), ("gravity", "faces"))
    for name in ("center", "north", "southwest", "entropy", "attention"):
        assert name in caught.value.message


def test_placement_is_canonical() -> None:
    cover = (("w", "100"), ("h", "100"), ("fit", "cover"))
    plain = parse_pairs(*cover)
    assert parse_pairs(*cover, ("gravity", "center")).canonical() == plain.canonical()
    assert parse_pairs(*cover, ("fp", "0.5,0.5")).canonical() == plain.canonical()
    assert parse_pairs(*cover, ("fp", "0.50,.5000")).canonical() == plain.canonical()
    assert (
        parse_pairs(*cover, ("fp", "0.25,1.0")).canonical()
        == parse_pairs(*cover, ("fp", ".25,1")).canonical()
    )
    assert parse_pairs(*cover, ("fp", "0.25,1")).focal == (Decimal("0.25"), Decimal("1"))
    assert parse_pairs(*cover, ("fp", "0.25,1")).gravity == "focal"
    distinct = {
        parse_pairs(*cover, *extra).canonical()
        for extra in [
            (),
            (("gravity", "north"),),
            (("gravity", "entropy"),),
            (("gravity", "attention"),),
            (("fp", "0.2,0.5"),),
            (("fp", "0.5,0.2"),),
            (("rect", "0,0,10,10"),),
        ]
    }
    assert len(distinct) == 7


def test_placement_only_counts_where_something_is_placed() -> None:
    """Without a cover crop or a contain canvas there is nothing to place; contain places by compass only."""
    assert (
        parse_pairs(("w", "100"), ("gravity", "north")).canonical() == parse_pairs(("w", "100")).canonical()
    )
    fill = (("w", "100"), ("h", "50"), ("fit", "fill"))
    assert parse_pairs(*fill, ("fp", "0.1,0.1")).canonical() == parse_pairs(*fill).canonical()
    contain = (("w", "100"), ("h", "50"), ("fit", "contain"))
    assert parse_pairs(*contain, ("gravity", "north")).gravity == "north"
    for placement in (("gravity", "attention"), ("gravity", "entropy"), ("fp", "0.1,0.1")):
        with pytest.raises(InvalidParameter, match="fit=contain .* needs fit=cover") as refused:
            parse_pairs(*contain, placement)  # it would be ignored: say so rather than serve the centre
        assert refused.value.parameter == placement[0]
    assert parse_pairs(*contain, ("fp", "0.5,0.5")).canonical() == parse_pairs(*contain).canonical()
    assert parse_pairs(("rect", "1,2,3,4")).rect == (1, 2, 3, 4)  # a cut matters whatever the fit


def test_presets_carry_placement_and_an_explicit_one_replaces_it() -> None:
    settings = replace(
        DEFAULTS,
        presets={"hero": (("w", "400"), ("h", "200"), ("fit", "cover"), ("gravity", "attention"))},
    )
    assert parse_params(MultiDict([("preset", "hero")]), settings).gravity == "attention"
    focal = parse_params(MultiDict([("preset", "hero"), ("fp", "0.2,0.3")]), settings)
    assert (focal.gravity, focal.focal) == ("focal", (Decimal("0.2"), Decimal("0.3")))
    north = parse_params(MultiDict([("preset", "hero"), ("gravity", "north")]), settings)
    assert north.gravity == "north"
    contain = parse_params(MultiDict([("preset", "hero"), ("fit", "contain")]), settings)
    assert contain.gravity == "center"  # the preset's crop does not apply to a whole image: no error


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


def test_a_version_is_accepted_and_changes_nothing_rendered() -> None:
    """v= makes another URL for browsers and fronts; the variant, and so the ETag, is the same."""
    plain = parse_pairs(("w", "100"), ("fmt", "webp"))
    assert parse_pairs(("w", "100"), ("fmt", "webp"), ("v", "3f2a9c01")) == plain
    presets = replace(DEFAULTS, presets={"thumb": (("w", "100"),)}, presets_only=True)
    assert parse_params(MultiDict([("preset", "thumb"), ("v", "2")]), presets).width == 100
    for bad in ("a b", "x" * 65, "é"):
        with pytest.raises(InvalidParameter) as refused:
            parse_pairs(("w", "100"), ("v", bad))
        assert refused.value.parameter == "v"
