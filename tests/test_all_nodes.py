"""Checks every registered node type must pass: declaration, schema round trip, migration, picklable compute."""
from __future__ import annotations

import pickle

import pytest
from pydantic import BaseModel

from engine.graph import default_settings
from engine.ports import PortType
from engine.registry import default_registry

NODE_TYPES = default_registry().all()


def test_builtin_nodes_are_discovered_through_the_entry_point():
    reg = default_registry()
    assert not reg.errors
    assert {"io.read_csv", "io.read_parquet", "io.write_csv", "io.write_parquet", "features.split",
            "automl.autogluon", "evaluate.evaluate", "automl.predict"} <= {c.type_id for c in NODE_TYPES}
    assert reg.provenance("io.read_csv").distribution == "ledgerflow"


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.type_id)
def test_declaration(cls):
    assert cls.title and cls.category and cls.description and cls.version >= 1
    for spec in [*cls.input_ports.values(), *cls.output_ports.values()]:
        assert issubclass(spec.type, PortType)
    assert issubclass(cls.Settings, BaseModel)
    assert cls.Settings.model_config.get("extra") == "forbid"


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.type_id)
def test_settings_schema_round_trip(cls):
    schema = cls.Settings.model_json_schema()
    assert schema["type"] == "object"
    for name, field in cls.Settings.model_fields.items():
        assert field.title, f"{cls.type_id}.{name} needs a title for the properties panel"
    required = {n: _example(schema["properties"][n], schema) for n in schema.get("required", [])}
    settings = cls.Settings.model_validate({**default_settings(cls), **required})
    dumped = settings.model_dump(mode="json")
    assert cls.Settings.model_validate(dumped).model_dump(mode="json") == dumped


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.type_id)
def test_migration_from_current_version_is_identity(cls):
    settings = default_settings(cls)
    assert cls.migrate(dict(settings), cls.version) == settings


@pytest.mark.parametrize("cls", NODE_TYPES, ids=lambda c: c.type_id)
def test_compute_is_picklable(cls):
    again = pickle.loads(pickle.dumps(cls))  # pickle-ok: our own classes, round trip in memory
    assert again is cls
    assert pickle.loads(pickle.dumps(cls().compute)).__func__ is cls.compute  # pickle-ok: same


def _example(prop: dict, root: dict):
    """A valid value for a JSON-schema property: honours enums, minimum list lengths and nested models."""
    if "$ref" in prop:
        model = root["$defs"][prop["$ref"].rsplit("/", 1)[-1]]
        return {n: _example(model["properties"][n], root) for n in model.get("required", [])}
    if "enum" in prop:
        return prop["enum"][0]
    kind = prop.get("type") or next((a.get("type") for a in prop.get("anyOf", []) if a.get("type") != "null"), None)
    if kind == "array":
        return [_example(prop.get("items", {"type": "string"}), root)] * prop.get("minItems", 0)
    return {"string": "x", "integer": 1, "number": 0.5, "boolean": True, "object": {}}.get(kind, "x")
