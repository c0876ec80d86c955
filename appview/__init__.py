"""Bluesky's public AppView (XRPC over HTTP, no login): accounts, profiles and past posts.

actors: what people paste → a handle or DID; client: the async XRPC client (rate limits,
retries, batching, bounded concurrency); lookup: pasted accounts → profiles; history: an
author's posts of a period from getAuthorFeed; scenario + views + emulator: a local AppView
with known truth and injected faults (rate limits, 5xx, malformed JSON, latency).
"""
