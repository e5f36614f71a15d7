#!/usr/bin/env python3
"""netrun's cache policies against libCacheSim's, request by request.

Writes one seeded Zipf trace with `netrun trace zipf --size 1`, replays it
through netrun's proxy (timing = "fast", concurrency = 1, capacity_objects)
for each policy and capacity, and feeds the same trace to libCacheSim
(`pip install libcachesim`), every object size 1. Prints a Markdown table
of hit ratios; exits 1 when LRU or FIFO differ at all, or SIEVE or S3-FIFO
by more than 1 percentage point.

    NETRUN=target/debug/netrun python3 bench/libcachesim_compare.py
    REQUESTS=20000 OBJECTS=2000 ALPHA=0.8 CAPACITIES=100,500 python3 bench/...

Hit ratios do not depend on the build, so a debug binary is fine.
"""

import csv
import re
import os
import subprocess
import sys
import tempfile

import libcachesim as lcs

NETRUN = os.environ.get("NETRUN", "target/debug/netrun")
REQUESTS = int(os.environ.get("REQUESTS", "20000"))
OBJECTS = int(os.environ.get("OBJECTS", "2000"))
ALPHA = os.environ.get("ALPHA", "0.8")
SEED = os.environ.get("SEED", "7")
CAPACITIES = [int(c) for c in os.environ.get("CAPACITIES", "100,500").split(",")]
POLICIES = {"lru": lcs.LRU, "fifo": lcs.FIFO, "sieve": lcs.Sieve, "s3fifo": lcs.S3FIFO}
# Exact for LRU and FIFO; within this many points for SIEVE and S3-FIFO.
ALLOWED = {"lru": 0.0, "fifo": 0.0, "sieve": 1.0, "s3fifo": 1.0}


def libcachesim_hits(keys, policy, capacity):
    cache = POLICIES[policy](capacity)
    return sum(1 for k in keys if cache.get(lcs.Request(obj_size=1, obj_id=k)))


def netrun_hits(work, trace):
    scenario = os.path.join(work, "compare.toml")
    with open(scenario, "w") as f:
        f.write(
            f"""name = "compare"
[topology]
www = "."
[origin]
max_age = "24h"
[cache]
capacity_objects = {CAPACITIES[0]}
[matrix]
"cache.policy" = {list(POLICIES)!r}
"cache.capacity_objects" = {CAPACITIES!r}
[[workload]]
name = "replay"
kind = "http"
trace = "{os.path.basename(trace)}"
timing = "fast"
concurrency = 1
""".replace("'", '"')
        )
    out = os.path.join(work, "results")
    subprocess.run([NETRUN, "run", scenario, "-q", "--out", out], check=True,
                   stdout=subprocess.DEVNULL)
    hits = {}
    with open(os.path.join(out, "compare.csv")) as f:
        for row in csv.DictReader(f):
            # Variant labels: cache.capacity_objects=100 cache.policy=lru
            parts = dict(re.findall(r"([\w.]+)=([\w]+)", row["variant"]))
            key = (parts["cache.policy"], int(parts["cache.capacity_objects"]))
            hits[key] = (int(row["cache_hits"]), int(row["requests"]))
    return hits


def main():
    with tempfile.TemporaryDirectory() as work:
        trace = os.path.join(work, "zipf.csv")
        subprocess.run([NETRUN, "trace", "zipf", "--objects", str(OBJECTS), "--alpha", ALPHA,
                        "--requests", str(REQUESTS), "--size", "1", "--seed", SEED,
                        "-o", trace], check=True, stderr=subprocess.DEVNULL)
        with open(trace) as f:
            keys = [int(r["key"]) for r in csv.DictReader(f)]
        ours = netrun_hits(work, trace)
    print(f"Zipf alpha {ALPHA}, {OBJECTS} objects, {REQUESTS} requests, seed {SEED}; "
          "hit ratio in %, netrun vs libCacheSim (every object size 1)\n")
    print("| policy | capacity (objects) | netrun hits | libCacheSim hits | netrun % | libCacheSim % | difference (points) |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for policy in POLICIES:
        for capacity in CAPACITIES:
            h, n = ours[(policy, capacity)]
            ref = libcachesim_hits(keys, policy, capacity)
            diff = 100.0 * (h - ref) / n
            ok &= abs(diff) <= ALLOWED[policy]
            print(f"| {policy} | {capacity} | {h} | {ref} | {100*h/n:.2f} | {100*ref/n:.2f} | {diff:+.2f} |")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
