"""Parses a scrape of ravsock's GET /metrics with the Prometheus project's own parser.

The e2e test `metrics::the_metrics_count_what_the_grid_did` writes the scrape to
target/tmp/metrics-scrape.txt; CI runs this on it. Exits non-zero if the parser refuses any
line or a metric the README lists is missing.
"""

import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

EXPECTED = {
    "ravsock_graphs": "gauge",
    "ravsock_providers_connected": "gauge",
    "ravsock_subgraphs_assigned": "counter",
    "ravsock_subgraphs_computed": "counter",
    "ravsock_ops_computed": "counter",
    "ravsock_failures": "counter",
    "ravsock_subgraph_seconds": "histogram",
    "ravsock_assign_seconds": "histogram",
    "ravsock_db_write_seconds": "histogram",
    "ravsock_ftp_bytes": "counter",
    "ravsock_scheduler_restarts": "counter",
}


def main(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    problems = []
    for name, kind in EXPECTED.items():
        family = families.get(name)
        if family is None:
            problems.append(f"{name}: missing")
        elif family.type != kind:
            problems.append(f"{name}: a {family.type}, expected a {kind}")
    samples = sum(len(family.samples) for family in families.values())
    if problems:
        print("\n".join(problems))
        return 1
    print(f"{path}: {len(families)} metric families, {samples} samples, all parsed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
