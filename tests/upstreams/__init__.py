"""Real upstream engines for tests: servers and tools started for real on 127.0.0.1 (llama-server, ...)."""
