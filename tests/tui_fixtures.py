"""The real Assistant the chat tests share (a pytest plugin, see conftest's pytest_plugins):
opening one costs seconds, so each test module opens one over its own copy of seeds/ and
every test gets a fresh ASSISTANT_HOME (saved conversations, exports) of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tui_helpers import SharedService, copy_seeds

from assistant.config import Config
from assistant.service import Assistant


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory, embedder: Any
           ) -> Iterator[tuple[Config, Assistant]]:
    """One real Assistant (the session's model, an index of its own) for the whole module:
    opening costs seconds."""
    root = tmp_path_factory.mktemp("tui")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        config = Config.resolve(corpus=copy_seeds(root / "seeds"), store=root / "store")
        service = Assistant.open(config, embedder=embedder)
    yield config, service
    service.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def service(opened: tuple[Config, Assistant], home: Path) -> SharedService:
    return SharedService(opened[1])


@pytest.fixture
def config(opened: tuple[Config, Assistant]) -> Config:
    return opened[0]
