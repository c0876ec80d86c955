"""Local relay emulator: real `subscribeRepos` frames, capture files, a websocket relay, a recorder.

car: build frames; capture: read/write/loop capture files; emulator: the relay (cursor rules,
faults); server: play/serve a capture; recorder: record a relay to a capture file.
"""
