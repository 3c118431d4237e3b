from __future__ import annotations

import pytest

import nodes
from engine.project import Project
from engine.registry import Provenance, Registry
from toynodes import TOY_NODES


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    for cls in nodes.NODES:
        reg.register(cls, Provenance("ledgerflow", "0.1.0"))
    for cls in TOY_NODES:
        reg.register(cls, Provenance("toy-plugin", "1.0"))
    return reg


@pytest.fixture
def project(tmp_path, registry) -> Project:
    return Project.new(tmp_path / "proj", "Test", registry)
