"""The anchor of the jobs benchmark (crates/ravtest/benches/jobs.rs): Dask's client.map of a
trivial function (an f64 squared) over N inputs on a local cluster of 2 worker processes, one
thread each, end to end (submit, compute, gather). Prints `tasks/s <rate>`.
Usage: python3 scripts/bench_jobs_dask.py 10000"""

import sys
import time

from dask.distributed import Client, LocalCluster


def square(x):
    return x * x


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.gather(client.map(square, range(100), pure=False))  # warm up
            started = time.perf_counter()
            results = client.gather(client.map(square, [float(i) for i in range(n)], pure=False))
            took = time.perf_counter() - started
    assert results[-1] == float(n - 1) ** 2
    print(f"tasks/s {n / took:.1f}")


if __name__ == "__main__":
    main()
