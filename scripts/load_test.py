"""Load and abuse test of ``zerodce serve`` on loopback: valid photos mixed with every bad input.

    .venv/bin/python scripts/load_test.py --requests 500 --clients 16

Starts the server in a child process (``zerodce serve`` on a free port, the default limits, with a
queue deep enough for the clients so that valid requests wait rather than get 503), sends the
requests from ``--clients`` threads, and reports: status codes per input kind, whether any valid
input got a 5xx and any bad one a non-4xx, latency p50/p99 for valid photos, and the server's
RSS (from /proc) after a warm-up request, half-way and at the end: a leak grows in both halves.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import collections
import io
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    import httpx
    from PIL import Image

    from zerodce._corpus import make_corpus

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--photos", default="examples", help="folder of valid photos (resized to 640 px)")
    args = p.parse_args()

    payloads: list[tuple[str, bytes, bool]] = []  # (kind, bytes, should succeed)
    for f in sorted(Path(args.photos).glob("*.jpg")):
        im = Image.open(f).convert("RGB")
        im.thumbnail((640, 640))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        payloads.append((f"photo:{f.name}", buf.getvalue(), True))
    with tempfile.TemporaryDirectory() as tmp:
        for name, ok in make_corpus(Path(tmp)).items():
            payloads.append((name, (Path(tmp) / name).read_bytes(), ok))
    payloads.append(("oversize.bin", b"\0" * (41 * 2**20), False))

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "zerodce", "serve", "--port", str(port), "--queue", str(args.clients + 4)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        httpx.post(url + "/v1/enhance", files={"file": ("w.jpg", payloads[0][1])}, timeout=120)  # warm-up
        rss_before = _rss(server.pid)
        rng = np.random.default_rng(0)
        # Uniform over the input kinds (3 photos + 15 corpus files + an oversize upload), each at least once.
        order = [int(i) for i in rng.integers(0, len(payloads), args.requests)]
        order[: len(payloads)] = range(len(payloads))
        results: list[tuple[str, bool, int, float]] = []
        lock = threading.Lock()
        queue = list(order)
        rss_half: list[int] = []

        def client() -> None:
            with httpx.Client(timeout=300) as c:
                while True:
                    with lock:
                        if not queue:
                            return
                        i = queue.pop()
                    kind, data, ok = payloads[i]
                    t = time.perf_counter()
                    try:
                        code = c.post(url + "/v1/enhance", files={"file": (kind.split(":")[-1], data)}).status_code
                    except httpx.HTTPError:
                        code = 0
                    with lock:
                        results.append((kind, ok, code, time.perf_counter() - t))
                        if len(results) == args.requests // 2:
                            rss_half.append(_rss(server.pid))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss_after = _rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for kind, _, code, _ in results:
        by_kind[kind][code] += 1
    valid_5xx = sum(1 for _, ok, code, _ in results if ok and not 200 <= code < 300)
    bad_not_4xx = sum(1 for _, ok, code, _ in results if not ok and not 400 <= code < 500)
    lat = np.array([s for kind, ok, code, s in results if ok and code == 200])
    print(f"{len(results)} requests, {args.clients} clients, {wall:.1f} s ({len(results) / wall:.1f} req/s)")
    for kind in sorted(by_kind):
        print(f"  {kind:22s} {dict(sorted(by_kind[kind].items()))}")
    print(f"valid inputs not 2xx: {valid_5xx}; bad inputs not 4xx: {bad_not_4xx}")
    if len(lat):
        print(f"latency of valid requests: p50 {np.percentile(lat, 50):.2f} s, p99 {np.percentile(lat, 99):.2f} s")
    half = f", after {args.requests // 2} requests {rss_half[0] / 2**20:.0f} MiB" if rss_half else ""
    print(f"server RSS: before {rss_before / 2**20:.0f} MiB{half}, after {rss_after / 2**20:.0f} MiB")
    return 1 if valid_5xx or bad_not_4xx or len(results) != args.requests else 0


if __name__ == "__main__":
    sys.exit(main())
