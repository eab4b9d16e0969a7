"""Rolling restart of every node (SIGTERM, exit 0, start, ready) under client traffic."""

import pytest

import scenarios
from cluster_harness import Cluster
from scenarios import sizes


@scenarios.KNOWN_GAP_INFLIGHT
@pytest.mark.parametrize("n", sizes())
def test_rolling_restart_under_traffic(n):
    with Cluster(n) as c:
        h = scenarios.rolling_restart(c, seed=n)
        scenarios.verify(h, "rolling restart on %d nodes" % n)
