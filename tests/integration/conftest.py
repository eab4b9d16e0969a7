"""Makes tests/lib importable and prints which broker the suite runs against."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness  # noqa: E402


def pytest_report_header(config):
    path = harness.MOSQUITTO_DEFAULT if harness.is_mosquitto() else os.environ.get("STARLING_BIN")
    return "broker under test: %s (%s)" % (harness.broker_kind(), path)
