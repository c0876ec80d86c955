"""Transports between streamer and aggregator: in-process queue (bluepulse run) and Kafka."""
