"""End-to-end ingest throughput through the real HTTP service.

Prints, from one run on this machine:
- the ceiling: Ed25519 verifications/s on all cores (PyNaCl, one process per core, each
  verifying 1,000 distinct signatures of 20 keys in turn), the mean of one measurement
  before the drives and one after (both printed: when they differ
  much, the machine's speed drifted and the ratios are uncertain), and beside it the rate
  of one process alone: how much more work both cores do at once;
- signed readings/s through `veriot serve` with per-reading signatures (requests of 100
  readings, or `--batch-size`), and its ratio to the ceiling (target >= 0.85);
- readings/s with per-batch signatures (one signature per request's readings; target
  >= 150,000 with 100);
- p50 and p99 latency of one request in each mode;
- for each mode, the CPU per accepted reading of each process role: the service process,
  the check processes, the alert scoring process (from the service's
  `veriot_process_cpu_seconds_total`, read before and after the drive, once scoring has
  caught up) and this client.

Signing happens before the clock starts, and the bodies are encoded as the device SDK
sends them (veriot.core.wire.encode_request: compact JSON, 304 bytes per reading signed
on its own, 141 per reading of a signed batch); the client sends them over `--threads`
keep-alive connections (default 32: a fleet sends from many devices at once, and the
service commits concurrent requests together, one group per fsync, so fewer connections
measure the client's round trips rather than the service), all driven from one thread
through epoll, as wrk does. The client runs on the same cores as the service and takes
its share of them (see the CPU lines).

    .venv/bin/python bench/ingest.py [--requests N] [--threads N] [--batch-size N]

Reading the CPU lines. With every core busy, the ratio to the ceiling is about V / (V + O):
V is the CPU one verification takes when all cores verify (cores / ceiling), O the CPU of
everything else per reading, in all processes. 0.85 needs O under 0.18 V, about 9 us where
V is 50 us. One run on 2 cores (2026-12-02, ceiling 35,267/s, one core 20,467/s: both
cores together do 1.72x one core's work): per-reading signatures 22,104/s (0.63x), 87 us
of CPU per reading (service 17.7, check processes 64.4 of which ~57 verification, alert
scoring 3.3, client 1.6), so O was ~30 us; per-batch signatures 67,101/s, 25.4 us per
reading (service 13.5, check processes 7.4, alert scoring 3.4, client 1.1), where
150,000/s would need 13 us in all. The same machine gave from 45,000/s to 67,000/s per
batch within the hour. The service process's one GIL is also a bound: its sequencer
thread takes over half of its CPU, and in runs with parts switched off the store append
alone (segment rows, reading-id rows, tree tiles, WAL writes and fsync: about 1.3 KB
written per reading) was about 8 us per reading of it.

Much of the service's CPU is per request, not per reading. On 2026-12-04, with per-batch
signatures, the service took 13.7 to 17.1 us per reading in requests of 100 readings and
7.9 to 8.3 us in requests of 1,000, so about 600 to 900 us per request. Profiled with
perf (2026-12-04):
- the sequencer thread had 58% of the service's samples, three quarters of them in the
  SQLite append;
- the event loop thread had 26%;
- the check pool's reader threads had 12%, mostly waking up.
About a tenth of all the service's samples were the kernel switching and waking threads.

Each durable commit costs the service about 1 ms of CPU whatever its size (2026-12-07,
per-reading signatures, requests of 100: 9.7 to 10.7 us per reading at 580 to 680
readings per commit, 14 to 18.5 us at 100 to 195). The service reads the check
processes' answers on its event loop (one wake-up per answer rather than a reader
thread's and then the loop's), and those answers reach the sequencer one by one, so a
group waits up to 20 ms for requests still being checked (veriot/ingest/sequencer.py,
LINGER_S). Against reader threads and no wait, alternating runs on 2 cores (2026-12-07):
- `--batch-size 1`: 2,833 to 2,839 requests/s against 2,320 to 2,433 with per-reading
  signatures, 2,522 to 2,603 against 2,117 to 2,274 per batch; the service took 290 to
  332 us per request against 410 to 467, with 32 requests per commit against 12; p99
  latency 14.5 to 18.4 ms against 20.0 to 26.1;
- requests of 100: per batch 81,303 to 81,819/s against 76,719 to 78,027 (service 11.0
  against 12.1 to 12.3 us per reading; p99 66 to 74 ms against 88 to 90); per-reading
  signatures unchanged within the noise (23,321 to 24,111 against 23,606 to 24,156).
Reading the answers on the loop without the wait made per-reading signatures commit up
to 6 times as often, and lose 5 to 10%.

With one reading per request, the wake-ups and system calls around a request cost more
than checking it. Three changes cut them (2026-12-07, alternating runs on 2 cores,
`--batch-size 1`, 6,000 requests per run, against the main of that morning):
- each response leaves the service in one write, head and body together
  (veriot/api/http.py), not two (uvicorn's own protocol);
- requests that arrive while a group commit waits for more no longer wake the sequencer
  one by one (veriot/ingest/sequencer.py, _Inbox);
- a check process takes up to 16 small requests at once, reads what has come in one go
  and answers in one write (WORKER_BUNDLE in veriot/ingest/check_pool.py).
The service then took 192 to 208 us of CPU per request against 250 to 272, the check
processes 105 to 115 against 130 to 140, and per-batch requests/s rose from 2,879 to
3,104 to 3,107 to 3,467. Requests/s rose less than CPU fell: with 32 connections every
request in flight joins each commit (31.2 to 31.7 per commit), so the rate is bound by
the time a commit takes to be checked, written and synced, and the cores are about a
quarter idle. With requests of 100 readings, per-batch signatures went from 85,940 and
91,210/s to 93,156 and 92,581/s (service 9.2 to 9.3 us per reading against 9.6 to
10.1); per-reading signatures were unchanged (0.65x).

Changes of a few percent each are lost in this machine's noise, so the work of one
process role can be counted in instructions instead, which repeat exactly:
`valgrind --tool=callgrind --collect-atstart=no --toggle-collect=FUNCTION` around a
script that feeds the role's compiled entry point (SqlStore.append, Verifier.check,
alerts.score_runs) ready-made input. On 2026-12-07 that found, in instructions per
reading: store appends of varying size spent 13% parsing their INSERT statements again
(a text per row count; now a few padded texts that the statement cache keeps), alert
scoring 29% in generic subscripts and calls that mypyc compiles when written for it
(SeasonalEW.step_many, is_plausible), canonical messages 18%, and every compiled module
some in looking up its non-Final constants by name. Under valgrind SHA-256 and Ed25519
run without the CPU's extensions, so their share there is much larger than here. End
to end on 2 cores the CPU per reading moved within the noise: per batch 18.4 to 20.0 us
against 18.6 to 19.9 (alert scoring 2.0 to 2.3 against 2.3 to 2.6), three alternating
runs each.

A reading below its device's highest logged seq (sent after a later one: concurrent
senders of one device, an agent's backlog beside live readings) is looked up in the
store, to tell a new reading from a replay. With 90 segments of 100 readings per device
in SQLite that lookup took 1,187 us of the sequencer's time per reading (2026-12-07): it
decoded every reading of the segments it probed. The seqs are now read from a segment's
body without decoding it, only the readings asked for are decoded, and a submission's
late readings are looked up once per device: 187 us for one, 68 us each for 50 at once.
In this benchmark 0 to 4 of 3,000 requests arrive late (counted by the sequence gaps
their successors leave), so its figures move within the noise.

Ids stopped taking a row each in the store on 2026-12-07 (`recent_ids` and `id_chunks`,
docs/log.md): the store append went from 25,400 to 17,900 instructions per reading and
bench/store.py's appends of runs 1.2 to 1.5 times as fast. Here, sampled with perf over
the same per-batch drive, SQLite's share of the service process went from 12% to 6%,
but the service's CPU per reading stayed within the noise: 19.5 to 21.8 us before and
21.0 to 24.0 us after in five alternating drives of 230,000 readings, and 21.5 and 23.0
us with the id rows simply not written. An earlier pair of runs without them had
suggested 4 to 6 us less; it did not repeat.

Later the same day the per-batch rate was found to fall as the log grew: three drives
of 400,000 readings in a row into one service went 122,000, 115,000, 113,000 readings/s
(service 6.1 to 6.5 us per reading), and with the sealing of ids switched off, 130,000
to 134,000 throughout. SQLite kept `id_chunks` in (bucket, epoch) order, so each seal
rewrote about 256 pages scattered over the table (8% of the service's samples, sampled
with perf, at a million readings). In (epoch, bucket) order (SQLite migration 5) a seal
appends (2%). Groups also gather up to 1,500 readings before committing without waiting
(LINGER_READINGS, was 500). In three alternating runs against the main of that hour
(`--requests 3000`, so the per-batch drive logs 1,200,000 readings after the
per-reading one's 300,000): per-batch signatures 121,246 to 128,072/s against 106,308
to 113,988 (service 5.7 to 6.2 us per reading against 7.0 to 7.6; 1,552 to 1,575
readings per commit against 868 to 896; p99 latency 41 to 44 ms against 60 to 68);
per-reading signatures within the noise (0.65 to 0.72x against 0.64 to 0.68x). With
only the new order (groups of 500): 116,987 and 124,246/s, service 6.7 and 7.2 us, p99
47 ms.

Three changes on 2026-12-07 (late). (1) The log's SHA-256 digests are computed a run at
a time by a C extension (veriot/ledger/_sha256.c: OpenSSL's SHA-256 in a loop, without
the GIL), 0.16 rather than 0.38 us per digest: in alternating per-batch drives the check
processes took 4.5 to 5.0 us per reading against 5.5 to 5.8, the service 5.2 to 6.6
against 6.2 to 6.9, and the drives reached 117,565 to 139,022 readings/s against 109,861
to 118,906. (2) The client drives its connections from one thread through epoll rather
than a thread each: its CPU went from 1.0-1.2 to 0.4-0.8 us per reading per batch and
from 2.3-2.7 to 1.3-1.7 per reading signed, which the service's processes get instead
(per batch 128,386 to 144,240/s against 119,334 to 136,695). (3) The ceiling verifies
1,000 distinct signatures of 20 keys rather than one signature again and again: the CPU
learns the branches of an input it sees over and over, and that loop ran 6 to 7% faster
than verification of distinct signatures, so the ceiling was above anything the service
could reach. This moves the ratio, not the service: per-reading signatures went from
0.69-0.73x to 0.74-0.80x at the same 29,000-30,000 readings/s. Three runs after all
three: ceilings 39,363, 39,112 and 40,046/s; per-reading 0.75, 0.74 and 0.74x; per batch
124,840, 126,335 and 139,426/s (p99 36 to 75 ms). Then with the service's GIL switch
interval at 0.5 ms (veriot/ingest/service.py), in a slower hour (one core verifying
19,000 rather than 20,000/s): 0.72 and 0.76x, 130,543 and 125,608/s. Against the service
of that morning (a513d6f), driven alternately by this client: per batch 121,127 to
133,385/s against 104,262 to 118,506 (service 5.9 to 6.9 us per reading against 6.5 to
7.9, check processes 5.2 to 5.4 against 6.0 to 6.4).

Where the rest goes (2026-12-07, per-batch drives): the service process takes 5.3 to 6.2
us per reading, about half on its event loop (HTTP, the check processes' answers, the
verdicts) and half on the sequencer (of which the SQLite append is 1.75 us and a commit
costs about 0.5 ms of CPU whatever its size); its one GIL makes it the serial stage, and
the cores stay 15 to 19% idle (13 to 14% with 64 connections, which reach 140,000/s at
twice the latency). Without any fsync (synchronous=OFF, for measurement only) the rate
rose about 5% and the idle time hardly fell: it is mostly short gaps (median 96 us) while
one service thread hands over to another. Per reading signed, the service takes 7.5 to
8.3 us (its event loop about 3.75, the sequencer 3.5, groups of 750 readings as the 20 ms
linger ends them) and the check processes about 6 us beside verification: 0.85x would
need all of that, with alert scoring and the client, under about 9 us, against 18 now.

On 2026-12-08 the machine was slower (one core verified 15,000 to 16,000 signatures/s,
against 18,000 to 22,000 the day before). The canonical messages of a request's or a
batch's readings are now built in one call by a C extension (veriot/core/_canonical.c)
from the device head and record encodings that reading_message has checked and
remembered: 0.47 rather than 1.14 to 1.2 us per reading of two records, on one core. In
six alternating per-batch drives of 600,000 readings against the commit before, the
check processes took 0.70 to 0.76 times the service's CPU rather than 0.79 to 0.83
(about 0.7 us less per reading); the rates, 84,000 to 96,000/s against 68,000 to
98,000/s, moved with the machine more than with the change. Two runs of this benchmark
after it: 0.73x and 0.73x (ceilings 30,595 and 31,253/s), 91,647 and 102,205/s per batch.

Tried the same day and dropped: committing each group without waiting for the disk
(synchronous=NORMAL) and releasing its verdicts after one fdatasync of the WAL on a
thread of its own, while the sequencer writes the next group. Without any fsync
(synchronous=OFF, for measurement only) that day's drives had reached 104,000 to
120,000/s against 86,000 to 100,000, with 9 to 11% of the cores idle against 12 to 15%.
The pipelined sync gained nothing of that: 88,000 to 106,000/s against 96,000 to 107,000
with 32 connections, 104,000 to 109,000 against 112,000 to 119,000 with 64, and the
service took more CPU (8.3 to 8.9 us per reading against 7.2 to 8.0 with 64). Each
verdict still waits for the sync of its own group, so a connection waits as long as
before for its answer, and the extra thread's wake-ups cost CPU. With every connection
waiting on its answer, the rate is bound by the CPU per reading and by that wait: 64
connections reach 112,000 to 119,000/s against 96,000 to 107,000 with 32, at about twice
the latency, with more readings in each commit (1,830 to 2,090 against 1,550) and less
idle time (6 to 9% against 12 to 17%).

How much the alert scoring process weighs on the per-batch rate (2026-12-08, measurement
only: the process answered every request with nothing scored): 100,000 to 117,000/s
against 87,000 to 108,000 in six alternating drives, with the cores idle 17 to 20% of the
time rather than 12 to 15%. Its 2.2 to 3.1 us per reading mostly fill time the cores
would otherwise idle; a cheaper scoring would gain a fraction of that tenth.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from veriot.core.types import Record
from veriot.core.wire import encode_request
from veriot.device import DeviceKey, sign_batch, sign_reading

BATCH = 100


def _verify_loop(seconds: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import nacl.signing

    # Distinct signatures, as the service meets them: 20 devices' keys (as the drives
    # register), messages of a reading's canonical length. Verifying one signature over
    # and over runs 6 to 7% faster (2026-12-07, 45.4 to 45.7 us against 48.4 to 49.2 on
    # one core): Ed25519 verification branches on its input, and the CPU learns the
    # branches of an input it sees again and again, which no real workload repeats.
    keys = [nacl.signing.SigningKey.generate() for _ in range(20)]
    checks = []
    for i in range(1000):
        key, message = keys[i % len(keys)], os.urandom(151)
        checks.append((key.verify_key, message, key.sign(message).signature))
    count, start = 0, time.perf_counter()
    while time.perf_counter() < start + seconds:
        at = count % len(checks)
        for verify_key, message, signature in checks[at : at + 200]:
            verify_key.verify(message, signature)
        count += 200
    out.put(count / (time.perf_counter() - start))


def verification_ceiling(seconds: float = 3.0, processes: int | None = None) -> float:
    """Ed25519 verifications/s of `processes` processes at once (default: one per core)."""
    cores = processes or len(os.sched_getaffinity(0))
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [
        multiprocessing.Process(target=_verify_loop, args=(seconds, queue)) for _ in range(cores)
    ]
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return float(total)


def start_server(data: Path, *serve_args: str) -> tuple[subprocess.Popen[bytes], str, str]:
    """`veriot serve` on a free port in a child process, with an operator key;
    `serve_args` (e.g. "--db", URL) go to both `apikey create` and `serve`."""
    veriot = [sys.executable, "-m", "veriot.cli.main"]
    key = subprocess.run(
        [*veriot, "apikey", "create", "--data", str(data), *serve_args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*veriot, "serve", "--data", str(data), "--port", str(port), *serve_args],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(url + "/healthz", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, url, key


def register_devices(url: str, api_key: str, count: int = 20) -> list[DeviceKey]:
    keys = [DeviceKey.generate() for _ in range(count)]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}) as c:
        for k in keys:
            body = {"name": k.did[-8:], "public_key": k.public_key.hex()}
            c.post("/v1/devices", json=body).raise_for_status()
    return keys


Mode = tuple[float, int, list[float], dict[str, float], float]
"""(seconds, readings accepted, request latencies, CPU microseconds per accepted reading
by process role: service, check, alerts, client, leaves per durable commit) of one drive."""

ROLES = {
    "service": "service",
    "check": "check processes",
    "alerts": "alert scoring",
    "client": "client",
}


def run_modes(
    url: str, keys: list[DeviceKey], requests: int, threads: int, size: int = BATCH
) -> tuple[Mode, Mode]:
    """Drives `requests` per-reading-signed requests of `size` readings (after 10 of
    warm-up), then 4 x `requests` batch-signed ones; returns both drives."""
    per_reading = make_bodies(keys, requests + 10, per_batch=False, seq0=1, size=size)
    per_batch = make_bodies(keys, requests * 4, per_batch=True, seq0=1 << 40, size=size)
    drive(url, per_reading[:10], threads)  # warm-up
    return measured_drive(url, per_reading[10:], threads), measured_drive(url, per_batch, threads)


def samples(url: str, name: str) -> list[tuple[str, dict[str, str], float]]:
    """The (sample name, labels, value) of each sample of metric family `name` in the
    service's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(url + "/metrics", timeout=30).text
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == name
        for sample in family.samples
    ]


def scrape(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The (labels, value) of each sample of metric family `name` in the service's
    /metrics (a counter's `_total` samples only)."""
    return [
        (labels, value)
        for sample, labels, value in samples(url, name)
        if not sample.endswith("_created") and (sample == name or sample.endswith("_total"))
    ]


def service_cpu(url: str) -> dict[str, float]:
    """CPU seconds the service's processes have used, summed by role
    (`veriot_process_cpu_seconds_total`)."""
    out: dict[str, float] = {}
    for labels, seconds in scrape(url, "veriot_process_cpu_seconds"):
        out[labels["role"]] = out.get(labels["role"], 0.0) + seconds
    return out


def wait_scored(url: str, timeout_s: float = 60.0) -> None:
    """Waits until the service's alert scoring has caught up with the log (its backlog
    gauge reads 0), so that the CPU it spends on a drive is counted with that drive."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if all(value == 0 for _, value in scrape(url, "veriot_alert_backlog_readings")):
            return
        time.sleep(0.05)


def commits(url: str) -> tuple[float, float]:
    """(durable commits, leaves in them) so far (`veriot_commit_leaves`)."""
    values = {sample: value for sample, _, value in samples(url, "veriot_commit_leaves")}
    return values["veriot_commit_leaves_count"], values["veriot_commit_leaves_sum"]


def measured_drive(url: str, bodies: list[bytes], threads: int) -> Mode:
    """`drive`, with the CPU each process role spent on it per accepted reading and the
    leaves per durable commit (how many requests shared each group commit)."""
    before, client_before, commits_before = service_cpu(url), os.times(), commits(url)
    seconds, accepted, latencies = drive(url, bodies, threads)
    client_after = os.times()
    wait_scored(url)
    after, commits_after = service_cpu(url), commits(url)
    count = commits_after[0] - commits_before[0]
    per_commit = (commits_after[1] - commits_before[1]) / max(count, 1)
    per = 1e6 / max(accepted, 1)
    cpu = {role: (after[role] - before.get(role, 0.0)) * per for role in after}
    client = (client_after.user + client_after.system) - (client_before.user + client_before.system)
    cpu["client"] = client * per
    return seconds, accepted, latencies, cpu, per_commit


def cpu_line(cpu: dict[str, float]) -> str:
    """One line: CPU microseconds per reading by process role, and in all."""
    parts = [f"{ROLES.get(role, role)} {us:.1f}" for role, us in cpu.items()]
    return f"    CPU per reading, us: {', '.join(parts)}; in all {sum(cpu.values()):.1f}"


def make_bodies(
    keys: list[DeviceKey], requests: int, per_batch: bool, seq0: int, size: int = BATCH
) -> list[bytes]:
    """`requests` bodies of `size` readings each, round-robin over the devices."""
    bodies = []
    now = time.time()
    for r in range(requests):
        key = keys[r % len(keys)]
        seq = seq0 + (r // len(keys)) * size
        records = [
            (
                Record("temperature", 4.0 + (i % 7) * 0.1, now, "Cel"),
                Record("humidity", 80.0 + (i % 5), now, "%RH"),
            )
            for i in range(size)
        ]
        # Encoded as the device SDK (veriot.device.DeviceClient) sends them: compact JSON.
        if per_batch:
            from veriot.core.types import Reading

            compact, _ = sign_batch(
                key, [Reading(key.did, seq + i, recs) for i, recs in enumerate(records)]
            )
            bodies.append(encode_request(batches=[compact]))
        else:
            signed = [sign_reading(key, seq + i, recs) for i, recs in enumerate(records)]
            bodies.append(encode_request(readings=signed))
    return bodies


class _Connection:
    """One keep-alive HTTP/1.1 connection, non-blocking, that posts one ready body at a
    time and reads its answer as it comes (see `drive`)."""

    def __init__(self, host: str, port: int) -> None:
        import socket

        self.sock = socket.create_connection((host, port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.head = (
            f"POST /v1/readings HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.buffer = b""
        self.out = memoryview(b"")
        self.sent_at = 0.0

    def start(self, body: bytes) -> None:
        """Starts posting `body`; `send` sends what the socket takes."""
        self.out = memoryview(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.sent_at = time.perf_counter()
        self.send()

    def send(self) -> bool:
        """Sends what the socket takes of the request; True once all of it is sent."""
        if self.out:
            with contextlib.suppress(BlockingIOError):
                self.out = self.out[self.sock.send(self.out) :]
        return not self.out

    def receive(self) -> tuple[int, bytes] | None:
        """Reads what has come; the (status, body) of the answer once it is whole."""
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return None
        if not chunk:
            raise ConnectionError("the service closed the connection")
        self.buffer += chunk
        head, found, rest = self.buffer.partition(b"\r\n\r\n")
        if not found:
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(rest) < length:
            return None
        self.buffer = rest[length:]
        return int(head[9:12]), rest[:length]

    def close(self) -> None:
        self.sock.close()


def accepted_count(payload: bytes) -> int:
    """The `accepted` count of an ingest answer, read from its head when the answer starts
    with it (as the service writes it), else from the whole JSON."""
    if payload.startswith(b'{"accepted":'):
        return int(payload[12 : payload.index(b",", 12)])
    return int(json.loads(payload).get("accepted", 0))


def drive(url: str, bodies: list[bytes], threads: int) -> tuple[float, int, list[float]]:
    """Sends every body over `threads` keep-alive connections, each posting its next body
    once the last is answered; returns (seconds, readings accepted, request latencies).

    One thread drives every connection through the selector (epoll), as load generators
    such as wrk do: it shares the cores with the service, and a thread per connection
    spent most of its CPU switching threads and passing the GIL around."""
    import selectors

    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    accepted = 0
    it = iter(bodies)
    selector = selectors.DefaultSelector()
    start = time.perf_counter()
    for _ in range(min(threads, len(bodies))):
        conn = _Connection(host, int(port))
        conn.start(next(it))
        selector.register(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
    while selector.get_map():
        for key, events in selector.select(timeout=60):
            conn = key.data
            if events & selectors.EVENT_WRITE and conn.send():
                selector.modify(conn.sock, selectors.EVENT_READ, conn)
            if not events & selectors.EVENT_READ:
                continue
            answer = conn.receive()
            if answer is None:
                continue
            latencies.append(time.perf_counter() - conn.sent_at)
            accepted += accepted_count(answer[1])
            body = next(it, None)
            if body is None:
                selector.unregister(conn.sock)
                conn.close()
                continue
            conn.start(body)
            if not conn.send():
                selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
    selector.close()
    return time.perf_counter() - start, accepted, latencies


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="requests per mode")
    parser.add_argument("--threads", type=int, default=32, help="client connections")
    parser.add_argument(
        "--batch-size", type=int, default=BATCH, help="readings per request (at most 10,000)"
    )
    args = parser.parse_args()
    size = args.batch_size

    one_core = verification_ceiling(processes=1)
    before = verification_ceiling()
    data = Path(tempfile.mkdtemp(prefix="veriot-bench-"))
    proc, url, api_key = start_server(data)
    try:
        keys = register_devices(url, api_key)
        (secs, ok1, lat1, cpu1, group1), (secs2, ok2, lat2, cpu2, group2) = run_modes(
            url, keys, args.requests, args.threads, size
        )
        rate1, rate2 = ok1 / secs, ok2 / secs2
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    # Measured again once the service has stopped: on a shared machine the cores' speed
    # drifts, and a ceiling from before the drives alone can be far from the one they met.
    after = verification_ceiling()
    ceiling = (before + after) / 2

    cores = len(os.sched_getaffinity(0))
    print(f"cores: {cores}")
    print(
        f"ceiling: Ed25519 verifications/s on all cores ........ {ceiling:12,.0f}"
        f"   (mean of {before:,.0f} before the drives and {after:,.0f} after)"
    )
    print(
        f"    one core alone: {one_core:,.0f}/s, so all {cores} cores at once do "
        f"{ceiling / one_core:.2f}x one core's work"
    )
    print(
        f"per-reading signatures: readings/s end to end ........ {rate1:12,.0f}"
        f"   = {rate1 / ceiling:.2f} x ceiling (target >= 0.85)"
    )
    print(
        f"    latency per {size}-reading request: p50 {pct(lat1, 0.5):.1f} ms, "
        f"p99 {pct(lat1, 0.99):.1f} ms; {group1:,.0f} readings per durable commit"
    )
    print(cpu_line(cpu1))
    print(
        f"per-batch signatures: readings/s end to end .......... {rate2:12,.0f}"
        f"   = {rate2 / ceiling:.2f} x ceiling, {rate2 / rate1:.1f} x per-reading "
        "(target >= 150,000/s)"
    )
    print(
        f"    latency per {size}-reading request: p50 {pct(lat2, 0.5):.1f} ms, "
        f"p99 {pct(lat2, 0.99):.1f} ms; {group2:,.0f} readings per durable commit"
    )
    print(cpu_line(cpu2))
    if ok1 != args.requests * size or ok2 != args.requests * 4 * size:
        print(f"WARNING: not every reading was accepted ({ok1}, {ok2})")


if __name__ == "__main__":
    main()
