"""Load and abuse test of ``zerodce serve`` on loopback: valid photos mixed with every bad input.

    .venv/bin/python scripts/load_test.py --requests 500 --clients 16

Starts the server in a child process (``zerodce serve`` on a free port, the default limits, with a
queue deep enough for the clients so that valid requests wait rather than get 503), sends the
requests from ``--clients`` threads, and reports: status codes per input kind, whether any valid
input got a 5xx and any bad one a non-4xx, latency p50/p99 for valid photos, and the server's
RSS (from /proc) after a warm-up request, half-way and at the end: a leak grows in both halves.
Exit status 1 when a check fails.

Hostile clients run alongside (each group in its own thread, bounded in count): ``--half-open``
connections that never send a byte and ``--slow-clients`` slowloris connections trickling header
lines (both must be closed by the server's header deadline), as many uploads that stall half-way
(closed by the idle deadline) and as many slow but steady uploads of a photo (served: 200); a body
declaring 1 GiB and a 64 MiB chunked body (413, the chunked one cut off near the limit); photos
under hostile names (Unicode, NUL, ``..\\..\\windows\\win.ini``: 200 with a safe Content-Disposition);
and ``--timeouts`` uploads too big to finish within ``--timeout`` (504). Then ``--disconnects``
clients upload a 12 MP photo and leave 1.5 s later (its job must stop: ``in_flight`` back to 0
within 10 s, recorded as 499), and a ``--burst`` of concurrent 12 MP uploads (200, 503 or 504).
After the run it reports the server's CPU use over 5 s (idle means timed-out work stopped), its
threads, and its RSS: peak (sampled every 0.2 s), at the end and ``--settle`` seconds later, which
must be within 1.3x of the RSS after warm-up.
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _stopped(url: str, seconds: float) -> bool:
    """Whether the server has no job in flight within ``seconds`` (an abandoned job was stopped)."""
    import httpx

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            if httpx.get(url + "/healthz", timeout=5).json()["in_flight"] == 0:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def _answer(sock: socket.socket, seconds: float) -> tuple[int, float]:
    """(status code, or 0 when closed without one, or -1 when still open after ``seconds``; time waited)."""
    t = time.perf_counter()
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except TimeoutError:
        return -1, time.perf_counter() - t
    except OSError:
        pass
    code = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.1 ") else 0
    return code, time.perf_counter() - t


def _closed(code: int) -> int:
    """A connection the server closed on a deadline counts as 408 (the reply may be lost to a reset); -1: still open."""
    return 408 if code in (0, 408) else code


def _multipart(filename: bytes, data: bytes) -> tuple[bytes, bytes]:
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n\r\n'
    return head + data + b"\r\n--b--\r\n", b"multipart/form-data; boundary=b"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    import httpx
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test helpers
    from support.corpus import make_corpus

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--photos", default="examples", help="folder of valid photos (resized to 640 px)")
    p.add_argument("--half-open", type=int, default=300, help="connections that never send a byte")
    p.add_argument("--slow-clients", type=int, default=8, help="slowloris, stalled and slow-but-steady clients each")
    p.add_argument("--timeouts", type=int, default=2, help="uploads too big to finish within --timeout (504)")
    p.add_argument("--timeout", type=float, default=5.0, help="the server's --timeout")
    p.add_argument("--header-timeout", type=float, default=3.0, help="the server's --header-timeout")
    p.add_argument("--idle-timeout", type=float, default=3.0, help="the server's --idle-timeout")
    p.add_argument("--body-timeout", type=float, default=20.0, help="the server's --body-timeout")
    p.add_argument("--disconnects", type=int, default=8, help="clients that upload the big photo and leave")
    p.add_argument("--burst", type=int, default=50, help="concurrent big uploads at once (memory bounded by the queue)")
    p.add_argument("--settle", type=float, default=60.0,
                   help="seconds idle after the run before RSS is read again (0: no memory check)")  # fmt: skip
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
    cmd = [sys.executable, "-m", "zerodce", "serve", "--port", str(port), "--queue", str(args.clients + 8),
           "--timeout", str(args.timeout), "--header-timeout", str(args.header_timeout),
           "--idle-timeout", str(args.idle_timeout), "--body-timeout", str(args.body_timeout)]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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

        photo = payloads[0][1]
        big = io.BytesIO()
        Image.fromarray((rng.random((3000, 4000, 3)) * 40).astype(np.uint8)).save(big, "JPEG", quality=90)
        deadline = args.header_timeout + 3.0

        def record(kind: str, ok: bool, code: int, seconds: float) -> None:
            with lock:
                results.append((kind, ok, code, seconds))

        def connect() -> socket.socket:
            return socket.create_connection(("127.0.0.1", port), timeout=10)

        def half_open() -> None:  # never a byte: closed by the header deadline (408)
            socks = [connect() for _ in range(args.half_open)]
            for sock in socks:
                code, waited = _answer(sock, deadline)
                record("hostile:half-open", False, _closed(code), waited)
                sock.close()

        def slowloris() -> None:  # one header line every 0.5 s, forever
            socks = [connect() for _ in range(args.slow_clients)]
            t = time.perf_counter()
            open_ = list(socks)
            for sock in socks:
                sock.sendall(b"POST /v1/enhance HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while open_ and time.perf_counter() - t < deadline:
                time.sleep(0.5)
                for sock in list(open_):
                    try:
                        sock.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        open_.remove(sock)
            for sock in socks:
                code, _ = _answer(sock, 1.0)
                record("hostile:slowloris", False, _closed(code), time.perf_counter() - t)
                sock.close()

        def stalled() -> None:  # half a body, then silence: closed by the idle deadline
            body, ctype = _multipart(b"stalled.jpg", photo)
            for _ in range(args.slow_clients):
                sock = connect()
                sock.sendall(b"POST /v1/enhance HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + ctype
                             + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[: len(body) // 2])  # fmt: skip
                code, waited = _answer(sock, args.idle_timeout + 3.0)
                record("hostile:stalled-upload", False, _closed(code), waited)
                sock.close()

        def steady() -> None:  # slow but steady: 20 pieces 0.1 s apart, served
            body, ctype = _multipart(b"steady.jpg", photo)
            for _ in range(args.slow_clients):
                sock, t = connect(), time.perf_counter()
                sock.sendall(b"POST /v1/enhance HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: "
                             + ctype + b"\r\nContent-Length: %d\r\n\r\n" % len(body))  # fmt: skip
                step = len(body) // 20 + 1
                for i in range(0, len(body), step):
                    sock.sendall(body[i : i + step])
                    time.sleep(0.1)
                code, _ = _answer(sock, 300)
                record("hostile:slow-steady-upload", True, code, time.perf_counter() - t)
                sock.close()

        def oversized() -> None:
            sock, t = connect(), time.perf_counter()
            sock.sendall(b"POST /v1/enhance HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 1073741824\r\n\r\n")  # fmt: skip
            code, _ = _answer(sock, 10)
            record("hostile:declares-1GiB", False, code, time.perf_counter() - t)
            sock.close()
            sock, t = connect(), time.perf_counter()
            sock.sendall(b"POST /v1/enhance HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")  # fmt: skip
            head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="huge.jpg"\r\n\r\n'
            sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
            sent, chunk = 0, b"\0" * 2**20
            try:
                while sent < 64 * 2**20:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
            except OSError:
                pass
            code, _ = _answer(sock, 10)
            record("hostile:chunked-64MiB", False, code, time.perf_counter() - t)
            chunked_sent.append(sent)
            sock.close()

        def hostile_names() -> None:
            names = ["暗い写真.jpg".encode(), b"a\x00b.jpg", b"..\\..\\windows\\win.ini", b"../../etc/passwd"]
            for name in names:
                body, ctype = _multipart(name, photo)
                t = time.perf_counter()
                r = httpx.post(url + "/v1/enhance", content=body, headers={"content-type": ctype.decode()}, timeout=300)
                disposition = r.headers.get("content-disposition", "")
                safe = disposition.isascii() and ".." not in disposition and "/" not in disposition.split("''")[0]
                record("hostile:names", True, r.status_code if safe else 599, time.perf_counter() - t)

        def disconnect() -> None:  # the whole upload, then gone: its job must stop (in_flight back to 0)
            body, ctype = _multipart(b"left.jpg", big.getvalue())
            for _ in range(args.disconnects):
                sock, t = connect(), time.perf_counter()
                sock.sendall(b"POST /v1/enhance HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + ctype
                             + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip
                time.sleep(1.5)
                sock.close()
                stopped = _stopped(url, 10.0)
                record("hostile:disconnect", False, 499 if stopped else 0, time.perf_counter() - t)

        def burst() -> None:  # --burst big uploads at once: bodies beyond --jobs + --queue are never read
            def one() -> None:
                t = time.perf_counter()
                try:
                    code = httpx.post(url + "/v1/enhance", files={"file": ("burst.jpg", big.getvalue())},
                                      timeout=300).status_code  # fmt: skip
                except httpx.HTTPError:
                    code = 0
                record("hostile:burst", False, code, time.perf_counter() - t)

            workers = [threading.Thread(target=one) for _ in range(args.burst)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        rss_peak = [0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.2):
                rss_peak[0] = max(rss_peak[0], _rss(server.pid))

        def too_slow() -> None:
            for _ in range(args.timeouts):
                t = time.perf_counter()
                r = httpx.post(url + "/v1/enhance", files={"file": ("big.jpg", big.getvalue())}, timeout=300)
                record("hostile:timeout", False, r.status_code, time.perf_counter() - t)
                if r.status_code != 504:
                    print(f"expected 504 for the big upload, got {r.status_code}")

        chunked_sent: list[int] = []
        t0 = time.perf_counter()
        hostile = [half_open, slowloris, stalled, steady, oversized, hostile_names, too_slow]
        threading.Thread(target=sample, daemon=True).start()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        threads += [threading.Thread(target=h) for h in hostile]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        disconnect()  # after the mixed traffic: each must bring in_flight back to 0 on its own
        burst()
        wall = time.perf_counter() - t0
        time.sleep(1.0)  # let a stopped job unwind
        cpu0, t_idle = _cpu_seconds(server.pid), time.perf_counter()
        time.sleep(5.0)
        cpu_after = (_cpu_seconds(server.pid) - cpu0) / (time.perf_counter() - t_idle)
        sampling.set()
        rss_after, threads_after = _rss(server.pid), _threads(server.pid)
        alive = httpx.get(url + "/healthz", timeout=10).json()
        if args.settle:
            time.sleep(max(0.0, args.settle - 6.0))
        rss_settled = _rss(server.pid) if args.settle else None
    finally:
        server.terminate()
        server.wait(timeout=30)

    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for kind, _, code, _ in results:
        by_kind[kind][code] += 1
    valid_5xx = sum(1 for _, ok, code, _ in results if ok and not 200 <= code < 300)
    # a burst upload may be served (200) or timed out (504) when admitted, else 503: all correct answers
    burst_ok = {"hostile:burst": {200, 503, 504}}
    bad_not_4xx = sum(1 for k, ok, code, _ in results if not ok and not 400 <= code < 500 and k != "hostile:timeout"
                      and code not in burst_ok.get(k, ()))  # fmt: skip
    timeouts_not_504 = sum(1 for kind, _, code, _ in results if kind == "hostile:timeout" and code != 504)
    lat = np.array([s for kind, ok, code, s in results if ok and code == 200 and not kind.startswith("hostile")])
    mixed = sum(1 for kind, *_ in results if not kind.startswith("hostile"))
    print(f"{len(results)} requests and connections ({mixed} mixed from {args.clients} clients), {wall:.1f} s")
    for kind in sorted(by_kind):
        print(f"  {kind:26s} {dict(sorted(by_kind[kind].items()))}")
    print(f"valid inputs not 2xx: {valid_5xx}; bad inputs not 4xx: {bad_not_4xx}; timeouts not 504: {timeouts_not_504}")
    if chunked_sent:
        print(f"chunked 64 MiB upload: {chunked_sent[0] / 2**20:.0f} MiB sent before the server stopped reading")
    if len(lat):
        print(f"latency of valid requests: p50 {np.percentile(lat, 50):.2f} s, p99 {np.percentile(lat, 99):.2f} s")
    half = f", after {args.requests // 2} requests {rss_half[0] / 2**20:.0f} MiB" if rss_half else ""
    settled = (f", {args.settle:.0f} s after the run {rss_settled / 2**20:.0f} MiB ({rss_settled / rss_before:.2f}x "
               "before)") if rss_settled is not None else " (--settle 0: not measured after settling)"  # fmt: skip
    print(f"server RSS: before {rss_before / 2**20:.0f} MiB{half}, peak {rss_peak[0] / 2**20:.0f} MiB, "
          f"after {rss_after / 2**20:.0f} MiB{settled}")  # fmt: skip
    print(f"after the run: server CPU {100 * cpu_after:.1f}% of one core over 5 s (idle {100 - 100 * cpu_after:.1f}%), "
          f"{threads_after} threads, in flight {alive['in_flight']}")  # fmt: skip
    failed = valid_5xx or bad_not_4xx or timeouts_not_504 or mixed != args.requests
    leaks = rss_settled is not None and rss_settled > 1.3 * rss_before  # issue 26's target: 1.3x of idle
    return 1 if failed or cpu_after > 0.1 or alive["in_flight"] or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
