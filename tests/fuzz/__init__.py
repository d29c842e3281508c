"""Property and fuzz tests: generated request bodies and schemathesis against /openapi.json."""
