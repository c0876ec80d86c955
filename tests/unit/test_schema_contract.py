"""The Python model and event.v1.json are one contract: held equal here."""

from __future__ import annotations

import json
import typing
from dataclasses import fields, replace
from importlib import resources

import jsonschema
import pytest

from schemas import Action, Direction, Event, Kind, decode, encode
from schemas.errors import SchemaError
from schemas.event import _REQUIRED

SCHEMA = json.loads(resources.files("schemas").joinpath("event.v1.json").read_text())
JSON_TYPES = {int: "integer", str: "string", bool: "boolean"}


def _example(kind: Kind) -> Event:
    return Event(
        seq=31527015322,
        idx=0,
        kind=kind,
        action=Action.CREATE,
        direction=Direction.TO,
        subject_did="did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        actor_did="did:plc:xxxxxxxxxxxxxxxxxxxxxxxx",
        time="2026-07-04T14:38:07.517Z",
        uri="at://did:plc:xxxxxxxxxxxxxxxxxxxxxxxx/app.bsky.feed.like/3k",
        subject_uri="at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/app.bsky.feed.post/3j",
        handle="chu.example.fr" if kind is Kind.HANDLE else None,
        active=False if kind is Kind.ACCOUNT else None,
    )


def test_model_fields_equal_schema_properties() -> None:
    assert {f.name for f in fields(Event)} == set(SCHEMA["properties"])
    assert set(_REQUIRED) | {"v"} == set(SCHEMA["required"])


def test_model_types_equal_schema_types() -> None:
    hints = typing.get_type_hints(Event)
    for name, prop in SCHEMA["properties"].items():
        hint = hints[name]
        if "enum" in prop:
            assert sorted(m.value for m in hint) == sorted(prop["enum"]), name
            continue
        if "const" in prop:
            continue
        args = typing.get_args(hint) or (hint,)
        expected = {JSON_TYPES[a] for a in args if a is not type(None)}
        if type(None) in args:
            expected.add("null")
        declared = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        assert expected == set(declared), name


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_encodes_to_a_valid_document_and_back(kind: Kind) -> None:
    event = _example(kind)
    wire = encode(event)
    jsonschema.validate(json.loads(wire), SCHEMA)
    assert decode(wire) == event


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"v": 2}, "unknown_version"),
        ({"v": 1, "seq": 1}, "missing_field"),
        ({"v": 1, "extra": 1}, "unknown_field"),
        ({**json.loads(encode(_example(Kind.LIKE))), "kind": "poke"}, "bad_field"),
        ({**json.loads(encode(_example(Kind.LIKE))), "seq": "12"}, "bad_field"),
    ],
)
def test_bad_events_are_refused_with_a_reason(doc: dict[str, object], reason: str) -> None:
    with pytest.raises(SchemaError) as caught:
        decode(json.dumps(doc))
    assert caught.value.reason == reason
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_not_json_is_refused() -> None:
    with pytest.raises(SchemaError) as caught:
        decode(b"\xff{")
    assert caught.value.reason == "not_json"


def test_source_defaults_to_the_relay_and_is_written_only_for_other_firehoses() -> None:
    relay = _example(Kind.LIKE)
    assert relay.source == "relay"
    assert b'"source"' not in encode(relay)  # byte-identical to events of before issue 13
    old = {k: v for k, v in json.loads(encode(relay)).items() if k != "source"}
    assert decode(json.dumps(old)).source == "relay"
    jet = replace(relay, seq=12, source="jetstream2@jetstream1.us-east.bsky.network")
    wire = encode(jet)
    jsonschema.validate(json.loads(wire), SCHEMA)
    assert json.loads(wire)["source"] == jet.source
    assert decode(wire) == jet


@pytest.mark.parametrize("source", ["", 7])
def test_a_bad_source_is_refused(source: object) -> None:
    doc = {**json.loads(encode(_example(Kind.LIKE))), "source": source}
    with pytest.raises(SchemaError) as caught:
        decode(json.dumps(doc))
    assert caught.value.reason == "bad_field"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
