from pathlib import Path

import pytest

from proxy.settings import SAMPLES_DIR, Settings, SettingsError, parse_size


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
            "PROXY_MAX_AGE": "60",
            "PROXY_MAX_DIMENSION": "4000",
            "UNRELATED": "x",
        }
    )
    assert settings.image_root == tmp_path
    assert settings.cache_dir == tmp_path / "c"
    assert settings.cache_size == 500 * 10**6
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
        ("PROXY_MAX_AGE", "-1"),
        ("PROXY_MAX_AGE", "1.5"),
        ("PROXY_MAX_DIMENSION", "0"),
        ("PROXY_MAX_DIMENSION", "100000"),
        ("PROXY_IMAGE_ROOT", "/nonexistent/dir"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.max_age = 1  # type: ignore[misc]
