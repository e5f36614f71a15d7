#!/usr/bin/env python3
"""One `netrun probe udp` run against a fresh echo, direct or through a fresh
unimpaired proxy, with what each party cost and where datagrams queued:

    bench/udp_measure.py BIN RATE SECS [proxy|direct]

prints the probe's summary, the CPU per datagram of the echo and the proxy
(per thread name, /proc/PID/task/*/stat) and of the probe (wait4), context
switches per datagram, the largest and mean receive queue of every UDP socket
that had one (/proc/net/udp, sampled every 5 ms) and the sockets' drop
counts. Optional environment: PROBE_BIN (another build for the probe),
PIN_SERVE / PIN_PROXY / PIN_PROBE (a prefix such as "taskset -c 1"),
PROBE_EXTRA / PROXY_EXTRA (more flags). Run it under `chrt -f 1` or
`nice -n -20` to put the benchmark ahead of other work (bench/README.md,
session 31, says what each does to the figures). Loopback only; bounded by
RATE x SECS datagrams."""
import json, os, socket, subprocess, sys, tempfile, threading, time

BIN, RATE, SECS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
MODE = sys.argv[4] if len(sys.argv) > 4 else "proxy"
EXTRA = os.environ.get("PROBE_EXTRA", "").split()
TICK = os.sysconf("SC_CLK_TCK")

def free_port():
    while True:
        t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p)); u.close(); t.close(); return p
        except OSError:
            t.close(); u.close()

def threads(pid):
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                s = open(f"/proc/{pid}/task/{tid}/stat").read()
            except OSError:
                continue
            name = s[s.index("(") + 1:s.rindex(")")]
            f = s[s.rindex(")") + 2:].split()
            out[tid] = (name, int(f[11]) + int(f[12]), )
    except OSError:
        pass
    return out

def sched(pid):
    tot = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            for line in open(f"/proc/{pid}/task/{tid}/status"):
                if "ctxt_switches" in line:
                    k, v = line.split(":")
                    tot[k] = tot.get(k, 0) + int(v)
        except OSError:
            pass
    return tot

www = tempfile.mkdtemp()
E, P = free_port(), free_port()
pin_s = os.environ.get("PIN_SERVE", "").split()
pin_p = os.environ.get("PIN_PROXY", "").split()
pin_c = os.environ.get("PIN_PROBE", "").split()
serve = subprocess.Popen(pin_s + [BIN, "serve", "--http", "127.0.0.1:0", "--udp", f"127.0.0.1:{E}", "--www", www], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
proxy = subprocess.Popen(pin_p + [BIN, "proxy", "--http", "127.0.0.1:0", "--udp", f"127.0.0.1:{P}", "--upstream", "127.0.0.1:9", "--udp-upstream", f"127.0.0.1:{E}"] + os.environ.get("PROXY_EXTRA", "").split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
target = P if MODE == "proxy" else E
n = int(RATE * SECS)
ns = 1_000_000_000 // RATE
queues = {}  # local port -> max rx_queue
qsum = {}
samples = [0]
stop = False
def sampler():
    while not stop:
        for line in open("/proc/net/udp").readlines()[1:]:
            f = line.split()
            port = int(f[1].split(":")[1], 16)
            rx = int(f[4].split(":")[1], 16)
            queues[port] = max(queues.get(port, 0), rx)
            qsum[port] = qsum.get(port, 0) + rx
        samples[0] += 1
        time.sleep(0.005)
th = threading.Thread(target=sampler); th.start()
before = {"serve": threads(serve.pid), "proxy": threads(proxy.pid)}
cs_before = {"serve": sched(serve.pid), "proxy": sched(proxy.pid)}
t0 = time.time()
probe = subprocess.Popen(pin_c + [os.environ.get("PROBE_BIN", BIN), "probe", "udp", f"127.0.0.1:{target}", "--count", str(n), "--interval", f"{ns}ns", "--timeout", "1s", "--json", "-q"] + EXTRA, stdout=subprocess.PIPE)
# sample the probe's threads just before it ends: poll
last_probe = {}
def poller():
    global last_probe
    while probe.returncode is None:
        t = threads(probe.pid)
        if t: last_probe = t
        time.sleep(0.05)
pt = threading.Thread(target=poller, daemon=True); pt.start()
out = probe.stdout.read()
_, _, ru = os.wait4(probe.pid, 0)
probe.returncode = 0
probe_cpu = ru.ru_utime + ru.ru_stime
t1 = time.time()
after = {"serve": threads(serve.pid), "proxy": threads(proxy.pid)}
cs_after = {"serve": sched(serve.pid), "proxy": sched(proxy.pid)}
stop = True; th.join()
udp_drops = {}
for line in open("/proc/net/udp").readlines()[1:]:
    f = line.split()
    udp_drops[int(f[1].split(":")[1], 16)] = int(f[-1])
serve.terminate(); proxy.terminate(); serve.wait(); proxy.wait()
try:
    j = json.loads(out)
except Exception:
    print("probe output:", out[:500]); sys.exit(1)
r = j if "loss_percent" in j else j
keys = ["sent", "received", "loss_percent", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "pacing_mean_ms", "pacing_max_ms"]
print(MODE, RATE, "/s", {k: r.get(k) for k in keys}, "wall %.2fs" % (t1 - t0), "load", open("/proc/loadavg").read().split()[:3])
def per(name, b, a, count):
    bythread = {}
    tot = 0
    for tid, (nm, t) in a.items():
        d = t - b.get(tid, (nm, 0))[1]
        tot += d
        if d: bythread[nm] = bythread.get(nm, 0) + d
    us = tot / TICK * 1e6 / max(count, 1)
    print(f"  {name}: {tot/TICK:.2f} s CPU, {us:.2f} us/datagram;", {k: round(v / TICK * 1e6 / max(count,1), 2) for k, v in sorted(bythread.items())})
sent = r.get("sent") or n
per("serve", before["serve"], after["serve"], sent)
if MODE == "proxy":
    per("proxy", before["proxy"], after["proxy"], sent)
print(f"  probe: {probe_cpu:.2f} s CPU (wait4), {probe_cpu*1e6/sent:.2f} us/datagram; threads seen:", sorted(set(v[0] for v in last_probe.values())))
for k in ("serve", "proxy"):
    print(f"  {k} ctx switches/datagram:", {c: round((cs_after[k].get(c,0)-cs_before[k].get(c,0))/sent, 2) for c in cs_after[k]})
print("  rx queue max bytes by port (E=%d P=%d):" % (E, P), {p: (q, round(qsum[p]/samples[0])) for p, q in queues.items() if q > 0}, "samples", samples[0])
print("  drops:", {p: d for p, d in udp_drops.items() if d})
