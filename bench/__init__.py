"""Benchmarks and load runs: tooling around the services, outside `make test` (see `make bench`, `make load`)."""
