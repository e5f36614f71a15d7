#!/usr/bin/env python3
"""Regenerates www/data/large.bin: 1 MiB of reproducible pseudo-random bytes
(a fixed-seed xorshift), so throughput tests move data that does not compress.
The file is committed; this script documents how it was made."""
import pathlib

out = pathlib.Path(__file__).resolve().parent.parent / "www" / "data" / "large.bin"
out.parent.mkdir(parents=True, exist_ok=True)
state = 0x9E3779B97F4A7C15
buf = bytearray()
mask = (1 << 64) - 1
while len(buf) < 1 << 20:
    state ^= (state << 13) & mask
    state ^= state >> 7
    state ^= (state << 17) & mask
    buf += state.to_bytes(8, "little")
out.write_bytes(bytes(buf[: 1 << 20]))
print(f"wrote {out} ({len(buf)} bytes)")
