import difflib
import re
from dataclasses import Field, fields
from pathlib import Path
from typing import Any

import pytest

from proxy.settings import (
    SAMPLES_DIR,
    Settings,
    SettingsError,
    opencv_limits,
    parse_presets,
    parse_size,
    reference,
)
from proxy.settings.__main__ import main as settings_main
from proxy.settings.base import env_name, spec_of


def test_defaults_serve_the_bundled_samples() -> None:
    settings = Settings.from_env({})
    assert settings.image_root == SAMPLES_DIR
    assert any(SAMPLES_DIR.iterdir())
    assert settings.cache_dir == Path("cache_dir")
    assert settings.cache_size == 2**30
    assert settings.max_age == 86400
    assert settings.max_dimension == 8192


def test_environment_overrides(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "PROXY_IMAGE_ROOT": str(tmp_path),
            "PROXY_CACHE_DIR": str(tmp_path / "c"),
            "PROXY_CACHE_SIZE": "500MB",
            "PROXY_MEMORY_CACHE_SIZE": "0",
            "PROXY_MAX_AGE": "60",
            "PROXY_MAX_DIMENSION": "4000",
            "UNRELATED": "x",
        }
    )
    assert settings.image_root == tmp_path
    assert settings.cache_dir == tmp_path / "c"
    assert settings.cache_size == 500 * 10**6
    assert settings.memory_cache_size == 0  # off
    assert (settings.max_age, settings.max_dimension) == (60, 4000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1048576", 2**20),
        ("500MB", 500 * 10**6),
        ("2GiB", 2 * 2**30),
        ("64 kib", 64 * 1024),
        ("3GB", 3 * 10**9),
    ],
)
def test_parse_size(raw: str, expected: int) -> None:
    assert parse_size("PROXY_CACHE_SIZE", raw) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROXY_CACHE_SIZE", "lots"),
        ("PROXY_CACHE_SIZE", "5XB"),
        ("PROXY_CACHE_SIZE", "15MiB"),  # below 16 MiB
        ("PROXY_MEMORY_CACHE_SIZE", "-1MB"),
        ("PROXY_MAX_AGE", "-1"),
        ("PROXY_MAX_AGE", "1.5"),
        ("PROXY_MAX_DIMENSION", "0"),
        ("PROXY_MAX_DIMENSION", "100000"),
        ("PROXY_IMAGE_ROOT", "/nonexistent/dir"),
        ("PROXY_RESULT_STORE", "https://renders.example/"),
        ("PROXY_RESULT_STORE", "file://relative/path/"),
        ("PROXY_RESULT_STORE", "file:///srv/../etc/"),
        ("PROXY_RESULT_STORE", "s3:///no-bucket"),
        ("PROXY_RESULT_TIMEOUT", "0"),
        ("PROXY_RESULT_TTL", "-1"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("", ""),
        ("s3://renders", "s3://renders"),
        ("s3://renders/origin", "s3://renders/origin/"),
        ("s3://renders/origin/", "s3://renders/origin/"),
        ("file:///mnt/renders", "file:///mnt/renders/"),
    ],
)
def test_the_result_store_is_a_bucket_prefix_or_a_directory(raw: str, parsed: str) -> None:
    assert Settings.from_env({"PROXY_RESULT_STORE": raw}).result_store == parsed


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.max_age = 1  # type: ignore[misc]


def test_safety_settings_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "PROXY_MAX_SOURCE_PIXELS": "1000000",
            "PROXY_MAX_SOURCE_BYTES": "5MB",
            "PROXY_MAX_OUTPUT_PIXELS": "250000",
            "PROXY_SECRET": "k1-0123456789abcdef",
            "PROXY_SECRET_PREVIOUS": "k0-0123456789abcdef",
            "PROXY_PRESETS": "thumb=w:200,h:200,fit:cover ; hero=w:1600,q:75",
            "PROXY_PRESETS_ONLY": "1",
            "PROXY_MAX_TRANSFORMS": "3",
            "PROXY_TRANSFORM_QUEUE": "0",
            "PROXY_TRANSFORM_WAIT": "0.5",
            "PROXY_TRANSFORM_DEADLINE": "7",
        }
    )
    assert (settings.max_source_pixels, settings.max_source_bytes, settings.max_output_pixels) == (
        1_000_000,
        5_000_000,
        250_000,
    )
    assert (settings.secret, settings.secret_previous) == ("k1-0123456789abcdef", "k0-0123456789abcdef")
    assert dict(settings.presets) == {
        "thumb": (("w", "200"), ("h", "200"), ("fit", "cover")),
        "hero": (("w", "1600"), ("q", "75")),
    }
    assert settings.presets_only
    assert (settings.max_transforms, settings.transform_queue) == (3, 0)
    assert (settings.transform_wait, settings.transform_deadline) == (0.5, 7.0)
    assert "k1-" not in repr(settings)  # secrets stay out of logs


def test_preset_values_may_hold_commas() -> None:
    presets = parse_presets("PROXY_PRESETS", "hero=w:1600,h:600,fit:cover,fp:0.3,0.7,q:75;cut=rect:0,0,80,60")
    assert presets["hero"] == (("w", "1600"), ("h", "600"), ("fit", "cover"), ("fp", "0.3,0.7"), ("q", "75"))
    assert presets["cut"] == (("rect", "0,0,80,60"),)
    with pytest.raises(SettingsError, match="PROXY_PRESETS"):
        parse_presets("PROXY_PRESETS", "bad=0.3,w:100")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROXY_MAX_SOURCE_PIXELS", "0"),
        ("PROXY_MAX_SOURCE_BYTES", "tiny"),
        ("PROXY_PRESETS_ONLY", "maybe"),
        ("PROXY_PRESETS_ONLY", "1"),  # without presets
        ("PROXY_SECRET_PREVIOUS", "an-old-secret-long-enough"),  # without a current secret
        ("PROXY_SECRET", ""),  # set, but empty: a template that failed to fill it in
        ("PROXY_SECRET", "   "),
        ("PROXY_SECRET", "short-secret"),
        ("PROXY_PURGE_TOKEN", ""),
        ("PROXY_CORS_ORIGINS", "example.com"),
        ("PROXY_CORS_ORIGINS", "*,https://a.example"),
        ("PROXY_AUTO_FORMATS", "jpeg"),
        ("PROXY_WEBP_EFFORT", "7"),
        ("PROXY_WEBP_EFFORT", "fast"),
        ("PROXY_TRANSFORM_WAIT", "soon"),
        ("PROXY_TRANSFORM_DEADLINE", "0"),
        ("PROXY_MAX_TRANSFORMS", "0"),
        ("PROXY_PRESETS", "a=w"),
    ],
)
def test_bad_safety_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_opencv_limits_agree_with_ours() -> None:
    assert opencv_limits({})["OPENCV_IO_MAX_IMAGE_PIXELS"] == str(Settings.max_source_pixels)
    assert opencv_limits({"PROXY_MAX_SOURCE_PIXELS": "1234"})["OPENCV_IO_MAX_IMAGE_PIXELS"] == "1234"
    explicit = {"PROXY_MAX_SOURCE_PIXELS": "1234", "OPENCV_IO_MAX_IMAGE_PIXELS": "99"}
    assert opencv_limits(explicit)["OPENCV_IO_MAX_IMAGE_PIXELS"] == "99"  # the deployer's own wins


REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("known", fields(Settings), ids=lambda known: known.name)
def test_every_setting_has_a_parser_a_doc_and_a_section(known: Field[Any]) -> None:
    spec = spec_of(known)  # a KeyError here: the field was declared with field(), not setting()
    assert callable(spec.parse)
    assert spec.doc.endswith(".") and len(spec.doc) > 20
    assert spec.group in reference.GROUPS
    default = reference.literal(known)  # the default as the references write it reads back as itself
    if default is not None:
        assert spec.parse(env_name(known), default) == known.default
    if spec.example is not None:
        spec.parse(env_name(known), spec.example)  # and the example file's value parses


@pytest.mark.parametrize("path", [reference.MARKDOWN, reference.ENV])
def test_the_references_are_generated_from_the_settings(path: str) -> None:
    expected = reference.render_markdown() if path == reference.MARKDOWN else reference.render_env()
    committed = (REPO / path).read_text() if (REPO / path).exists() else ""
    if committed != expected:
        diff = difflib.unified_diff(
            committed.splitlines(), expected.splitlines(), path, "generated", lineterm=""
        )
        pytest.fail(
            f"{path} differs from the settings' docs; regenerate it with\n    {reference.COMMANDS[path]}\n"
            + "\n".join(list(diff)[:40])
        )


def test_the_generator_writes_the_references(capsys: pytest.CaptureFixture[str]) -> None:
    assert settings_main(["--env"]) == 0
    assert capsys.readouterr().out == reference.render_env()
    assert settings_main(["--markdown"]) == 0
    assert capsys.readouterr().out == reference.render_markdown()


def test_every_gunicorn_variable_is_described_once() -> None:
    read = set(re.findall(r"GUNICORN_[A-Z_]+", (REPO / "gunicorn.conf.py").read_text()))
    described = [entry.name for entry in reference.GUNICORN]
    assert sorted(described) == sorted(read)


def test_the_references_links_lead_somewhere() -> None:
    for target in re.findall(r"\]\(([^)]+)\)", reference.render_markdown()):
        page, _, anchor = target.partition("#")
        path = (REPO / reference.MARKDOWN).parent / page
        assert path.is_file(), target
        headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)
        slugs = {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}
        assert not anchor or anchor in slugs, target
