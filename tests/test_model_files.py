"""Every way a model is found: catalog name, offline packages, the Hub (a local stand-in), a path."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chmocoder.model_files import ModelResolutionError, resolve_model
from chmocoder.settings import Settings

from .conftest import HUB_PORT, TEST_MODEL
from .fake_hub import FakeHub

PAYLOAD = b"GGUF" + bytes(range(256)) * 4000
SHA = hashlib.sha256(PAYLOAD).hexdigest()
PARTS = [PAYLOAD[:300_000], PAYLOAD[300_000:700_000], PAYLOAD[700_000:]]

CATALOG = f"""
[models.hub-model]
repo = "acme/coder-GGUF"
file = "coder.gguf"
size = {len(PAYLOAD)}
sha256 = "{SHA}"

[models.tampered]
repo = "acme/coder-GGUF"
file = "tampered.gguf"
sha256 = "{SHA}"

[models.parts-model]
file = "parts.gguf"
sha256 = "{SHA}"
offline_parts = {{ distribution = "fakemodel-part{{n}}", path = "fakemodel_part{{n}}/data/part{{n:02d}}.bin", \
count = 3 }}

[models.unavailable]
file = "nowhere.gguf"
offline_file = {{ distribution = "not-installed-anywhere", path = "x/nowhere.gguf" }}
"""


@pytest.fixture()
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(CATALOG)
    return path


@pytest.fixture()
def hub() -> Iterator[FakeHub]:
    with FakeHub(HUB_PORT) as server:
        server.files[("acme/coder-GGUF", "coder.gguf")] = PAYLOAD
        server.files[("acme/coder-GGUF", "tampered.gguf")] = PAYLOAD[:-1] + b"!"
        server.files[("acme/coder-GGUF", "readme.gguf")] = b"# not a model"
        yield server


def install_fake_parts(root: Path, numbers: list[int]) -> None:
    """Make installed distributions fakemodel-partN carrying one chunk each, as the real mirror does."""
    for n in numbers:
        dist = root / f"fakemodel_part{n}-0.1.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakemodel-part{n}\nVersion: 0.1\n")
        data = root / f"fakemodel_part{n}" / "data"
        data.mkdir(parents=True)
        (data / f"part{n:02d}.bin").write_bytes(PARTS[n - 1])


def test_catalog_name_uses_the_package_that_ships_the_test_model(tmp_path: Path) -> None:
    settings = Settings()
    path = resolve_model(TEST_MODEL, tmp_path / "models", settings.catalog_file)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and "site-packages" in str(path)
    assert not (tmp_path / "models").exists(), "a model shipped whole is used in place, not copied"


def test_hub_download_lands_in_models_dir_once(tmp_path: Path, catalog: Path, hub: FakeHub) -> None:
    models = tmp_path / "models"
    path = resolve_model("hub-model", models, catalog)
    assert path == models / "coder.gguf" and path.read_bytes() == PAYLOAD
    assert resolve_model("hub-model", models, catalog) == path
    assert hub.downloads == ["acme/coder-GGUF:coder.gguf"], "the second start must not download again"


def test_hub_spec_picks_up_the_catalog_hash(tmp_path: Path, catalog: Path, hub: FakeHub) -> None:
    with pytest.raises(ModelResolutionError, match="sha256 mismatch.*deleted"):
        resolve_model("acme/coder-GGUF:tampered.gguf", tmp_path / "m", catalog)
    assert not (tmp_path / "m" / "tampered.gguf").exists()
    assert resolve_model("acme/coder-GGUF:coder.gguf", tmp_path / "m", catalog).read_bytes() == PAYLOAD


def test_hub_hash_mismatch_is_refused_and_deleted(tmp_path: Path, catalog: Path, hub: FakeHub) -> None:
    with pytest.raises(ModelResolutionError, match=r"^sha256 mismatch for tampered.gguf"):
        resolve_model("tampered", tmp_path / "models", catalog)
    assert not (tmp_path / "models" / "tampered.gguf").exists()


def test_hub_file_that_is_not_gguf(tmp_path: Path, catalog: Path, hub: FakeHub) -> None:
    with pytest.raises(ModelResolutionError, match="not a GGUF"):
        resolve_model("acme/coder-GGUF:readme.gguf", tmp_path / "models", catalog)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("acme/other-GGUF:coder.gguf", "no such repository"), ("acme/coder-GGUF:missing.gguf", "has no such file")],
)
def test_hub_missing_repo_or_file(tmp_path: Path, catalog: Path, hub: FakeHub, spec: str, message: str) -> None:
    with pytest.raises(ModelResolutionError, match=message):
        resolve_model(spec, tmp_path / "models", catalog)


def test_no_network_and_no_offline_copy(tmp_path: Path, catalog: Path) -> None:
    with pytest.raises(ModelResolutionError, match="no network"):
        resolve_model("hub-model", tmp_path / "models", catalog)


def test_offline_parts_are_assembled_and_verified(
    tmp_path: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    install_fake_parts(site, [1, 2, 3])
    monkeypatch.syspath_prepend(str(site))
    models = tmp_path / "models"
    path = resolve_model("parts-model", models, catalog)
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in models.iterdir()) == [".parts.gguf.verified", "parts.gguf"]


def test_incomplete_offline_mirror(tmp_path: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    install_fake_parts(site, [1, 3])
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ModelResolutionError, match="parts 2 of 3 are not installed"):
        resolve_model("parts-model", tmp_path / "models", catalog)


def test_corrupt_file_in_models_dir(tmp_path: Path, catalog: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "coder.gguf").write_bytes(PAYLOAD[:-10] + b"0123456789")
    with pytest.raises(ModelResolutionError, match="sha256 mismatch.*delete it"):
        resolve_model("hub-model", models, catalog)
    (models / "coder.gguf").write_bytes(PAYLOAD[:1000])
    with pytest.raises(ModelResolutionError, match="expected 1,024,004"):
        resolve_model("hub-model", models, catalog)


def test_unavailable_catalog_model(tmp_path: Path, catalog: Path) -> None:
    with pytest.raises(ModelResolutionError, match="offline package is not installed"):
        resolve_model("unavailable", tmp_path / "models", catalog)


def test_local_paths(tmp_path: Path, catalog: Path) -> None:
    good = tmp_path / "mine.gguf"
    good.write_bytes(PAYLOAD)
    assert resolve_model(str(good), tmp_path / "models", catalog) == good
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(ModelResolutionError, match="not a GGUF"):
        resolve_model(str(bad), tmp_path / "models", catalog)
    with pytest.raises(ModelResolutionError, match="not a file, not a catalog name"):
        resolve_model(str(tmp_path / "absent.gguf"), tmp_path / "models", catalog)


def test_the_app_refuses_to_start_with_a_clear_line(tmp_path: Path) -> None:
    """What a user sees when the model cannot be had: one line, no traceback."""
    import subprocess

    from chmocoder.settings import PROJECT_ROOT

    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "app.py")],
        env={"PATH": "/usr/bin:/bin", "CHMOCODER_MODEL": str(tmp_path / "absent.gguf"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("chmocoder: cannot start: model")
