"""The SDK's wire types against spec/openapi.json, the contract the server's routes generate.

Fails when the server adds, removes or retypes a field of a schema that ``mags.types.WIRE_SCHEMAS``
mirrors, or changes the error code list: update mags/types.py (or mags/errors.py) to match."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, get_args, get_type_hints

import pytest

from mags import errors, types

SPEC_PATH = Path(__file__).resolve().parents[3] / "spec" / "openapi.json"


@pytest.fixture(scope="module")
def schemas() -> Dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())["components"]["schemas"]


def _types_of(prop: Dict[str, Any]) -> List[str]:
    if "anyOf" in prop:
        return [t for option in prop["anyOf"] for t in _types_of(option)]
    kind = prop.get("type")
    return kind if isinstance(kind, list) else [kind]


def expected_annotation(prop: Dict[str, Any]) -> Any:
    """The Python annotation a property of the spec has in mags/types.py."""
    by_schema = {schema: getattr(types, name) for name, schema in types.WIRE_SCHEMAS.items()}
    kinds = _types_of(prop)
    nullable = "null" in kinds
    kind = next(k for k in kinds if k != "null")
    # A nullable enum is anyOf [{enum}, {null}]: the enum sits in the non-null member.
    members = [m for m in prop.get("anyOf", []) if m.get("type") != "null"]
    if len(members) == 1 and "enum" in members[0]:
        prop = {**prop, "enum": members[0]["enum"]}
    if "const" in prop:
        base: Any = Literal[prop["const"]]
    elif "enum" in prop:
        base = Literal[tuple(prop["enum"])]
    elif kind == "array":
        ref = prop["items"]["$ref"].rsplit("/", 1)[-1]
        base = List[by_schema[ref]]
    else:
        base = {"string": str, "integer": int, "number": float, "boolean": bool, "object": Dict[str, Any]}[kind]
    return Optional[base] if nullable else base


@pytest.mark.parametrize("name", sorted(types.WIRE_SCHEMAS))
def test_typed_dict_fields_match_the_spec(name: str, schemas: Dict[str, Any]) -> None:
    schema = schemas[types.WIRE_SCHEMAS[name]]
    hints = get_type_hints(getattr(types, name))
    spec_fields = set(schema["properties"])
    assert set(hints) == spec_fields, (
        f"mags/types.py {name} vs spec schema {types.WIRE_SCHEMAS[name]}: "
        f"missing {sorted(spec_fields - set(hints))}, not in the spec {sorted(set(hints) - spec_fields)}"
    )
    for field, prop in schema["properties"].items():
        assert hints[field] == expected_annotation(prop), f"{name}.{field}: spec says {prop}"


def test_error_codes_match_the_spec_enum(schemas: Dict[str, Any]) -> None:
    assert list(get_args(errors.ErrorCode)) == schemas["Error"]["properties"]["code"]["enum"]

