import os
import time
from pathlib import Path

import pytest

from proxy.errors import NotFound
from proxy.sources import MAX_ID_LENGTH
from proxy.sources.files import FileStore


@pytest.fixture
def store(image_root: Path) -> FileStore:
    return FileStore(image_root)


def test_resolves_nested_ids(store: FileStore, image_root: Path) -> None:
    source = store.resolve("nested/deep.webp")
    assert source.id == "nested/deep.webp"
    assert Path(source.path) == (image_root / "nested" / "deep.webp").resolve()
    assert source.last_modified.timestamp() == pytest.approx(os.stat(source.path).st_mtime, abs=1)


def test_version_changes_when_the_file_is_replaced(store: FileStore, image_root: Path) -> None:
    before = store.resolve("photo.jpg").version
    assert store.resolve("photo.jpg").version == before  # stable while unchanged
    replacement = image_root / "replacement.tmp"
    replacement.write_bytes((image_root / "photo.jpg").read_bytes())
    stat = os.stat(image_root / "photo.jpg")
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime, like cp -p
    os.replace(replacement, image_root / "photo.jpg")
    assert store.resolve("photo.jpg").version != before


def test_version_changes_on_rewrite_in_place(store: FileStore, image_root: Path) -> None:
    before = store.resolve("quadrants.png").version
    time.sleep(0.01)
    path = image_root / "quadrants.png"
    path.write_bytes(path.read_bytes() + b"\0")
    assert store.resolve("quadrants.png").version != before


@pytest.mark.parametrize(
    "image_id",
    [
        "missing.jpg",
        "nested",  # a directory
        "../images/photo.jpg",
        "nested/../photo.jpg",
        "./photo.jpg",
        "/etc/passwd",
        "nested//deep.webp",
        "photo.jpg\0.png",
        "nested\\deep.webp",
        ".hidden.jpg",
        "a" * (MAX_ID_LENGTH + 1),
        "",
    ],
)
def test_unknown_and_escaping_ids_are_not_found(store: FileStore, image_root: Path, image_id: str) -> None:
    (image_root / ".hidden.jpg").write_bytes((image_root / "photo.jpg").read_bytes())
    with pytest.raises(NotFound):
        store.resolve(image_id)


def test_symlink_out_of_the_root_is_not_found(store: FileStore, image_root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((image_root / "photo.jpg").read_bytes())
    (image_root / "escape.jpg").symlink_to(secret)
    (image_root / "escape_dir").symlink_to(tmp_path)
    with pytest.raises(NotFound):
        store.resolve("escape.jpg")
    with pytest.raises(NotFound):
        store.resolve("escape_dir/secret.jpg")


def test_symlink_inside_the_root_is_followed(store: FileStore, image_root: Path) -> None:
    (image_root / "alias.jpg").symlink_to(image_root / "photo.jpg")
    assert store.resolve("alias.jpg").path == str((image_root / "photo.jpg").resolve())


def test_symlink_loop_is_not_found(store: FileStore, image_root: Path) -> None:
    (image_root / "loop.jpg").symlink_to(image_root / "loop.jpg")
    with pytest.raises(NotFound):
        store.resolve("loop.jpg")
