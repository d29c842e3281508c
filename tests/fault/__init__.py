"""Fault-injection suite: the gateways against upstreams that refuse, stall, fail and break mid-stream."""
