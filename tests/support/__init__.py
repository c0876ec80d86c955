"""Helpers shared by the tests and the benches, each written once.

ports: `free_port()`. processes: a child process with its own log file (`ChildProcess`), the
environment without `BLUEPULSE_*`, `/metrics` scraping. kafka_broker: the real broker's pytest
fixtures. The frame player is the relay emulator's own `relay.server.play`. `bench/` imports
ports and processes too (bench/_common.py puts the project root on sys.path), so those two
import nothing from pytest.
"""
