#!/usr/bin/env python3
"""The soak's Python half (bench/soak.sh starts it; not run alone).

`vary-upstream PORT`: a small HTTP upstream whose answers vary on
Accept-Language (max-age 30 s, 16 KiB bodies that name the path and language).

`drive ...`: the checked part of the load (Range, conditional and Vary
requests, slow and stalled readers), a sample of every service's RSS, open
fds and threads every 10 s with the load's latency, and the verdict.
"""

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INTERVAL = 10.0
LANGUAGES = [f"l{i:03d}" for i in range(50)]
VARY_PATHS = [f"/v/{i}" for i in range(20)]
BODY = 16384
# Pipelined requests for the 1 MiB file of a stalled reader: more than the
# kernel's socket buffers hold, so the proxy's writes really stop.
STALLED_REQUESTS = 32


def vary_body(path, lang):
    line = f"{path} {lang}\n".encode()
    return (line * (BODY // len(line) + 1))[:BODY]


class VaryHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        lang = self.headers.get("Accept-Language", "none")
        body = vary_body(self.path, lang)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=30")
        self.send_header("Vary", "Accept-Language")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def vary_upstream(port):
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), VaryHandler).serve_forever()


class Tally:
    """What the checked load saw in the current interval and in total."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.counts = {}
        self.errors = []

    def ok(self, kind, seconds):
        with self.lock:
            self.latencies.append(seconds * 1000.0)
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def count(self, kind):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def error(self, kind, what):
        with self.lock:
            self.counts[kind + "_errors"] = self.counts.get(kind + "_errors", 0) + 1
            if len(self.errors) < 50:
                self.errors.append(f"{kind}: {what}")

    def take_latencies(self):
        with self.lock:
            out, self.latencies = self.latencies, []
        return out


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def request(addr, path, headers, timeout=20):
    host, port = split(addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def paced(stop, rate, work):
    """Calls `work()` `rate` times a second until `stop` is set."""
    period = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        work()
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()


def range_load(stop, tally, proxy, large):
    rng = random.Random(1)

    def one():
        start = rng.randrange(len(large))
        end = min(len(large) - 1, start + rng.randrange(1, 65536))
        t = time.monotonic()
        try:
            status, _, body = request(proxy, "/data/large.bin", {"Range": f"bytes={start}-{end}"})
        except Exception as e:  # noqa: BLE001 - every failure is reported
            tally.error("range", repr(e))
            return
        if status == 206 and body == large[start : end + 1]:
            tally.ok("range", time.monotonic() - t)
        elif status == 200 and body == large:
            tally.ok("range_whole", time.monotonic() - t)
        else:
            tally.error("range", f"{start}-{end}: {status}, {len(body)} bytes")

    paced(stop, 10, one)


def conditional_load(stop, tally, proxy):
    paths = ["/index.html", "/style.css", "/hello.txt", "/data/info.json"]
    validators = {}
    rng = random.Random(2)

    def one():
        path = rng.choice(paths)
        known = validators.get(path)
        headers = {}
        if known and known[0]:
            headers["If-None-Match"] = known[0]
        elif known and known[1]:
            headers["If-Modified-Since"] = known[1]
        t = time.monotonic()
        try:
            status, h, body = request(proxy, path, headers)
        except Exception as e:  # noqa: BLE001
            tally.error("conditional", repr(e))
            return
        if status == 200 and body:
            validators[path] = (h.get("etag"), h.get("last-modified"))
            tally.ok("conditional_200", time.monotonic() - t)
        elif status == 304 and known:
            tally.ok("conditional_304", time.monotonic() - t)
        else:
            tally.error("conditional", f"{path} {headers}: {status}")

    paced(stop, 10, one)


def vary_load(stop, tally, proxy):
    rng = random.Random(3)

    def one():
        path, lang = rng.choice(VARY_PATHS), rng.choice(LANGUAGES)
        t = time.monotonic()
        try:
            status, h, body = request(proxy, path, {"Accept-Language": lang})
        except Exception as e:  # noqa: BLE001
            tally.error("vary", repr(e))
            return
        if status == 200 and body == vary_body(path, lang):
            kind = "vary_hit" if h.get("x-cache", "").startswith("HIT") else "vary_miss"
            tally.ok(kind, time.monotonic() - t)
        else:
            tally.error("vary", f"{path} {lang}: {status}, {body[:40]!r}")

    paced(stop, 30, one)


def slow_reader(stop, tally, proxy, large):
    """Reads the 1 MiB file at ~40 KB/s: slow, but always making progress."""
    host, port = split(proxy)
    while not stop.is_set():
        try:
            s = socket.create_connection((host, port), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            s.sendall(b"GET /data/large.bin HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            got = bytearray()
            while not stop.is_set():
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
                stop.wait(0.1)
            s.close()
            if stop.is_set():
                return
            head, _, body = bytes(got).partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 200") and body == large:
                tally.count("slow_read")
            else:
                tally.error("slow_read", f"{head[:40]!r}, {len(body)} bytes")
        except Exception as e:  # noqa: BLE001
            tally.error("slow_read", repr(e))
            stop.wait(1)


def stalled_reader(stop, tally, proxy):
    """Asks for the 1 MiB file 32 times on one connection and stops reading:
    the proxy's write timeout must close the connection (a load-caused cut,
    counted, not an error)."""
    host, port = split(proxy)
    while not stop.is_set():
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"GET /data/large.bin HTTP/1.1\r\nHost: soak\r\n\r\n" * STALLED_REQUESTS)
            s.recv(1024)
            t = time.monotonic()
            stop.wait(40)
            if stop.is_set():
                s.close()
                return
            # Drain what the kernel buffered; the server must have closed by now.
            s.settimeout(10)
            try:
                while s.recv(1 << 20):
                    pass
                closed = True
            except socket.timeout:
                # The whole body came once read again: nobody cut it.
                closed = False
            except ConnectionError:
                closed = True
            s.close()
            tally.count("stalled_cut" if closed else "stalled_kept")
            if not closed:
                tally.error("stalled", f"still open {time.monotonic() - t:.0f}s after the reader stopped")
        except Exception as e:  # noqa: BLE001
            tally.error("stalled", repr(e))
            stop.wait(1)


def proc_sample(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds, threads
    except (OSError, AttributeError):
        return None


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q / 100.0 * len(s)))]


def flat(samples, name, duration):
    """(ok, text): the last minute's median within 10 % of the second's."""
    second = [v for t, v in samples if 60 <= t < 120]
    last = [v for t, v in samples if t >= duration - 60]
    if not second or not last:
        return True, f"{name}: too few samples to judge"
    a, b = statistics.median(second), statistics.median(last)
    change = (b - a) / a if a else 0.0
    ok = abs(change) <= 0.10
    return ok, f"{name}: second minute {a:g}, last minute {b:g} ({change:+.1%}) {'ok' if ok else 'NOT FLAT'}"


def read_probe(path, limit):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(1)
    return None


def drive(a):
    pids = dict(kv.split("=") for kv in a.pids.split(","))
    probes = dict(kv.split("=") for kv in a.probes.split(","))
    logs = dict(kv.split("=") for kv in a.logs.split(","))
    with open(os.path.join(a.www, "data/large.bin"), "rb") as f:
        large = f.read()
    tally, stop = Tally(), threading.Event()
    workers = [
        threading.Thread(target=range_load, args=(stop, tally, a.proxy_a, large)),
        threading.Thread(target=conditional_load, args=(stop, tally, a.proxy_a)),
        threading.Thread(target=vary_load, args=(stop, tally, a.proxy_b)),
        threading.Thread(target=stalled_reader, args=(stop, tally, a.proxy_a)),
    ] + [threading.Thread(target=slow_reader, args=(stop, tally, a.proxy_a, large)) for _ in range(3)]
    for w in workers:
        w.daemon = True
        w.start()

    header = ["t_s", "load1"] + [f"{n}_{m}" for n in pids for m in ("rss_kb", "fds", "threads")]
    header += ["requests", "p50_ms", "p99_ms", "errors"]
    rows, series = [], {n: {"rss": [], "fds": []} for n in pids}
    out = open(a.csv, "w")
    out.write(",".join(header) + "\n")
    print(" ".join(f"{h:>14}" if i > 1 else f"{h:>6}" for i, h in enumerate(header)), flush=True)
    start = time.monotonic()
    errors_seen = 0
    gone = []
    while True:
        next_at = start + (len(rows) + 1) * INTERVAL
        time.sleep(max(0.0, next_at - time.monotonic()))
        t = round(time.monotonic() - start)
        row = [t, float(open("/proc/loadavg").read().split()[0])]
        for n, pid in pids.items():
            s = proc_sample(pid)
            if s is None:
                gone.append(n)
                s = (0, 0, 0)
            row += list(s)
            series[n]["rss"].append((t, s[0]))
            series[n]["fds"].append((t, s[1]))
        lat = tally.take_latencies()
        with tally.lock:
            errors_now = sum(v for k, v in tally.counts.items() if k.endswith("_errors"))
        row += [len(lat), round(percentile(lat, 50), 2), round(percentile(lat, 99), 2), errors_now - errors_seen]
        errors_seen = errors_now
        rows.append(row)
        out.write(",".join(str(v) for v in row) + "\n")
        out.flush()
        print(" ".join(f"{v:>14}" if i > 1 else f"{v:>6}" for i, v in enumerate(row)), flush=True)
        if gone or t >= a.duration:
            break
    stop.set()
    out.close()

    verdict, notes = True, []
    if gone:
        verdict = False
        notes.append(f"FAIL: exited during the soak: {', '.join(sorted(set(gone)))}")
    if a.duration < 180:
        notes.append(f"{a.duration}s is too short to judge flatness (at least 180 s)")
    else:
        for n in pids:
            for m in ("rss", "fds"):
                ok, text = flat(series[n][m], f"{n} {m}", rows[-1][0])
                verdict &= ok
                notes.append(text)
    for w in workers:
        w.join(timeout=45)
    with tally.lock:
        counts = dict(sorted(tally.counts.items()))
        errs = list(tally.errors)
    notes.append(f"checked load: {counts}")
    if any(k.endswith("_errors") for k in counts):
        verdict = False
        notes.append("FAIL: errors the load did not cause:\n  " + "\n  ".join(errs))
    for name, path in probes.items():
        p = read_probe(path, 60)
        if p is None:
            verdict = False
            notes.append(f"FAIL: probe {name} left no summary ({path})")
            continue
        if p["kind"] == "http":
            notes.append(
                f"probe {name}: {p['requests']} requests, {p['errors']} errors, "
                f"p50 {p['latency_p50_ms']} ms, p99 {p['latency_p99_ms']} ms, statuses {p.get('status_counts')}"
            )
            if p["errors"]:
                verdict = False
                notes.append(f"FAIL: probe {name} errors {p.get('errors_by_class')}")
        else:
            loss = p["loss_percent"]
            notes.append(
                f"probe {name}: {p['sent']} datagrams, loss {loss} % (1 % each way asked), "
                f"p50 {p['latency_p50_ms']} ms, p99 {p['latency_p99_ms']} ms, late {p['late']}, dup {p['duplicates']}"
            )
            if not 0.5 <= loss <= 4.0:
                verdict = False
                notes.append(f"FAIL: probe {name} loss {loss} % is not what the link asked (≈2 % round trip)")
    for name, path in logs.items():
        with open(path, errors="replace") as f:
            text = f.read()
        bad = [line for line in text.splitlines() if "panicked" in line or " ERROR " in line]
        warns = {}
        for line in text.splitlines():
            if " WARN " in line:
                key = re.sub(r"[0-9.:]+", "#", line.split(" WARN ", 1)[1])[:90]
                warns[key] = warns.get(key, 0) + 1
        notes.append(f"log {name}: {len(bad)} panic/ERROR lines, warnings {warns or 'none'}")
        if bad:
            verdict = False
            notes.append("FAIL: " + "\n  ".join(bad[:10]))
    print("\n".join(notes))
    print("PASS" if verdict else "FAIL")
    return 0 if verdict else 1


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "vary-upstream":
        vary_upstream(int(sys.argv[2]))
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["drive"])
    p.add_argument("--duration", type=int, required=True)
    p.add_argument("--proxy-a", required=True)
    p.add_argument("--proxy-b", required=True)
    p.add_argument("--www", required=True)
    p.add_argument("--pids", required=True)
    p.add_argument("--probes", required=True)
    p.add_argument("--logs", required=True)
    p.add_argument("--csv", required=True)
    return drive(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
