"""The event contract shared by streamer and aggregator."""

from schemas.event import (
    FIELD_NAMES,
    RELAY,
    SCHEMA_HEADER,
    SCHEMA_VERSION,
    Action,
    Direction,
    Event,
    Kind,
    decode,
    encode,
    from_dict,
)

__all__ = [
    "FIELD_NAMES",
    "RELAY",
    "SCHEMA_HEADER",
    "SCHEMA_VERSION",
    "Action",
    "Direction",
    "Event",
    "Kind",
    "decode",
    "encode",
    "from_dict",
]
