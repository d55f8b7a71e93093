"""Which HTTP layer the concurrent engine uses: the figures that decided it.

    .venv/bin/python bench/http_layer.py [--requests 1000] [--concurrency 32]

Against the loopback server of ``bench/run.py`` (started in its own process, so that it does
not share this one's interpreter lock), sends the same GET requests through each candidate and
prints wall time, milliseconds per request and this process's CPU time per request:

- one ``httpx.Client``, one request after another (the serial engine);
- one ``httpx.Client`` shared by N threads, with httpx's default pool limits (20 kept-alive
  connections) and with as many kept alive as there are threads (what ``ClientPool`` does);
- one ``httpx.Client`` per thread;
- ``httpx.AsyncClient`` with N requests in flight through ``asyncio``, with the default pool and
  with a lower per-host limit (10 connections);
- ``httpx.AsyncClient`` over ``httpx.AsyncHTTPTransport`` with HTTP/1.1 only and no retries.

Run for the fast endpoint and for the one answering after 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from run import serve  # bench/ is not a package


def threaded(url: str, requests: int, workers: int, make: Callable[[], httpx.Client],
             shared: bool) -> None:
    client = make() if shared else None
    local = threading.local()

    def one(_: int) -> None:
        nonlocal client
        if shared:
            assert client is not None
            answer = client.get(url)
        else:
            if not hasattr(local, "client"):
                local.client = make()
            answer = local.client.get(url)
        assert answer.status_code == 200 and answer.json()["status"] == "ok"

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(requests)))
    if client is not None:
        client.close()


def serial(url: str, requests: int) -> None:
    with httpx.Client() as client:
        for _ in range(requests):
            answer = client.get(url)
            assert answer.status_code == 200 and answer.json()["status"] == "ok"


def asynchronous(url: str, requests: int, workers: int,
                 make: Callable[[], httpx.AsyncClient]) -> None:
    async def main() -> None:
        async with make() as client:
            limit = asyncio.Semaphore(workers)

            async def one() -> None:
                async with limit:
                    answer = await client.get(url)
                    assert answer.status_code == 200 and answer.json()["status"] == "ok"

            await asyncio.gather(*(one() for _ in range(requests)))

    asyncio.run(main())


def measure(label: str, call: Callable[[], None], requests: int) -> None:
    call_started, cpu_started = time.perf_counter(), time.process_time()
    call()
    wall, cpu = time.perf_counter() - call_started, time.process_time() - cpu_started
    print(f"  {label:58s} {wall:6.2f} s  {wall / requests * 1000:6.2f} ms/request  "
          f"CPU {cpu / requests * 1000:5.2f} ms/request", flush=True)


def compare(url: str, requests: int, n: int) -> None:
    keep = httpx.Limits(max_connections=max(n, 100), max_keepalive_connections=max(n, 20))
    serial(url, 20)  # warm up
    measure("one Client, serial", lambda: serial(url, requests), requests)
    measure(f"one Client shared by {n} threads, default pool",
            lambda: threaded(url, requests, n, httpx.Client, True), requests)
    measure(f"one Client shared by {n} threads, {n} kept alive",
            lambda: threaded(url, requests, n, lambda: httpx.Client(limits=keep), True),
            requests)
    measure(f"a Client per thread, {n} threads",
            lambda: threaded(url, requests, n, httpx.Client, False), requests)
    measure(f"AsyncClient, {n} in flight, default pool",
            lambda: asynchronous(url, requests, n, httpx.AsyncClient), requests)
    measure(f"AsyncClient, {n} in flight, 10 connections",
            lambda: asynchronous(url, requests, n, lambda: httpx.AsyncClient(
                limits=httpx.Limits(max_connections=10))), requests)
    measure(f"AsyncClient, {n} in flight, AsyncHTTPTransport(retries=0)",
            lambda: asynchronous(url, requests, n, lambda: httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(limits=keep, retries=0))), requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        print(serve(), flush=True)
        threading.Event().wait()
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        n = args.concurrency
        print(f"machine: {os.cpu_count()} cores; {n} at once; server {base}")
        for path, requests in (("/fast", args.requests), ("/slow", args.requests // 5)):
            print(f"\n{requests} requests to {path}:")
            compare(base + path, requests, n)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
