"""Bounded load runs with upstream faults (`make load`); not part of the default test run."""
