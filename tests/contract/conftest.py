"""Each contract runs once per implementation. Transports: memory always, Kafka (marked
`kafka`) on the real broker; scripts/test runs each half in its own pytest invocation.
Firehose sources: the relay (a Jetstream source joins FIREHOSES)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.contract.firehoses import FIREHOSES, FirehoseUnderTest
from tests.contract.transports import TransportUnderTest, transport_for


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
def transport(request: pytest.FixtureRequest) -> TransportUnderTest:
    return transport_for(request.param, request)


@pytest.fixture(params=sorted(FIREHOSES))
async def firehose(request: pytest.FixtureRequest) -> AsyncIterator[FirehoseUnderTest]:
    hose = FIREHOSES[request.param]()
    try:
        yield hose
    finally:
        await hose.close()
