"""Cost of one rate-limit call (the 4 limits of a request, checked or charged in one call):
in-process state vs Redis (one Lua script, one round trip), sequential and 32 concurrent.

Prints calls/s, p50/p99 latency and this process's CPU per call (the Redis server's own CPU is
not counted). Needs a Redis server (default redis://127.0.0.1:6379/9).

Usage: python benchmarks/state_bench.py [--url redis://127.0.0.1:6379/9] [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time

from mltrust.state import Limit, LocalState, RedisState


def limits(i: int) -> list[Limit]:
    who = (f"key:{i % 50}:user", "iris")
    return [
        Limit.bucket(("identity", *who), 1e6, 1e6),
        Limit.bucket(("model", "iris"), 1e6, 1e6),
        Limit.bucket(("bytes", *who), 1e9, 1e9, 200),
        Limit.quota(("quota", *who), 1e9, 3600),
    ]


async def run(state, calls: int, concurrency: int) -> tuple[float, float, float, float]:
    lat: list[float] = []

    async def worker(k: int) -> None:
        for i in range(k, calls, concurrency):
            t = time.perf_counter()
            await state.charge(limits(i))
            lat.append(time.perf_counter() - t)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    lat.sort()
    return (
        calls / wall,
        lat[len(lat) // 2] * 1e3,
        lat[int(len(lat) * 0.99)] * 1e3,
        cpu / calls * 1e6,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    prefix = "bench-" + secrets.token_hex(4)
    print(
        f"{'back end':12} {'concurrency':>11} {'calls/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'CPU us':>7}"
    )
    for name in ("in-process", "redis"):
        for conc in (1, 32):
            state = (
                LocalState() if name == "in-process" else RedisState(f"{args.url}?prefix={prefix}")
            )

            async def go(state=state, conc=conc):
                try:
                    await run(state, 200, conc)  # warm up (connections, script load)
                    return await run(state, args.calls, conc)
                finally:
                    await state.aclose()

            rate, p50, p99, cpu = asyncio.run(go())
            print(f"{name:12} {conc:11} {rate:9.0f} {p50:7.3f} {p99:7.3f} {cpu:7.1f}")
    print("(keys expire by themselves; the prefix was " + prefix + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
