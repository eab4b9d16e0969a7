"""Makes tests/lib importable for the cluster tests and prints what they run against."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))


def pytest_report_header(config):
    full = os.environ.get("STARLING_CLUSTER_FULL") == "1"
    return "broker under test: %s; cluster variants: %s" % (
        os.environ.get("STARLING_BIN"), "full (3 and 5 nodes)" if full else "default (3 nodes)")
