"""A real S3-compatible HTTP server for tests: moto's server mode in a subprocess on loopback.

moto (PyPI) answers the S3 REST API (SigV4-signed requests, ETags, HEAD, ranges, multipart uploads) from
memory; every S3Server is a separate process, so its state dies with it. Any credentials are accepted.

    server = S3Server()
    server.start()
    server.create_bucket("media")
    env = server.client_env()   # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... for a client or subprocess
    server.stop()

Installing: `moto[server]` (all of moto's server extras, ~+180 MB with cfn-lint and sympy) or the lighter
`moto[s3]` + `flask` + `flask-cors`, which is all that S3 in server mode needs.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = ["S3Server"]

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class S3Server:
    """moto's S3 server (`python -m moto.server`) as a child process on 127.0.0.1 and a free port.

    Args:
        host: loopback address to bind.
        port: a fixed port, or None for a free one.
        region: the region clients should sign for.
        access_key_id / secret_access_key: what clients send; moto accepts anything.
        python: the interpreter that has moto installed (default: this one).
        start_timeout: seconds to wait for the server to answer.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        region: str = "us-east-1",
        access_key_id: str = "testing",
        secret_access_key: str = "testing",
        python: str = sys.executable,
        start_timeout: float = 30.0,
    ) -> None:
        if python == sys.executable and importlib.util.find_spec("moto") is None:
            raise ModuleNotFoundError(
                "moto is not installed: pip install 'moto[server]' (or 'moto[s3]' flask flask-cors)"
            )
        self.host = host
        self._fixed_port = port
        self.port: int = port or 0
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.python = python
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_path: Path | None = None

    @property
    def endpoint_url(self) -> str:
        """The server's base URL, for `endpoint_url=` of boto3/aiobotocore or AWS_ENDPOINT_URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server process's PID while it runs."""
        return self._process.pid if self._process is not None else None

    def client_env(self) -> dict[str, str]:
        """Environment variables that point an AWS SDK client (or a child process) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait until it answers HTTP; retries on another port if one was taken."""
        if self._process is not None:
            return
        attempts = 1 if self._fixed_port else 3
        last_error = ""
        for _attempt in range(attempts):
            if not self._fixed_port:
                self.port = _free_port(self.host)
            fd, log_name = tempfile.mkstemp(prefix="pdp-moto-", suffix=".log")
            os.close(fd)
            self._log_path = Path(log_name)
            self._log = self._log_path.open("wb")
            env = {**os.environ, **self.client_env(), "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
            self._process = subprocess.Popen(
                [self.python, "-m", "moto.server", "--host", self.host, "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, which then stops us
            )
            if self._wait_ready():
                return
            last_error = self.log_text()
            self._terminate()
        raise RuntimeError(f"moto server did not start on {self.host}:{self.port}:\n{last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
            try:
                # moto's own state endpoint: answers as soon as the WSGI app is up.
                conn.request("GET", "/moto-api/data.json")
                if conn.getresponse().status < 500:
                    return True
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.05)
        return False

    def log_text(self) -> str:
        """What the server printed so far (request log and errors)."""
        if self._log_path is None:
            return ""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _terminate(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its log file."""
        self._terminate()
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._log_path = None

    def kill(self) -> None:
        """SIGKILL the server (an S3 outage mid-test); its data is gone, start() gives an empty one."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
        self._terminate()

    def reset(self) -> None:
        """Drop every bucket and object (moto's reset API), keeping the process."""
        self._request("POST", "/moto-api/reset")

    # -- admin helpers (plain HTTP, no SDK needed) -----------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self._process is None:
            raise RuntimeError("the S3 server is not running: call start() first")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers={"Host": f"{self.host}:{self.port}"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def create_bucket(self, name: str) -> str:
        """Create a bucket (path-style `PUT /<name>`; moto needs no signature) and return its name."""
        if not _BUCKET_NAME.match(name):
            raise ValueError(f"not a valid S3 bucket name: {name!r}")
        body = None
        if self.region != "us-east-1":
            body = (
                '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<LocationConstraint>{self.region}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        status, payload = self._request("PUT", f"/{name}", body)
        if status != 200:
            raise RuntimeError(f"create bucket {name!r}: HTTP {status}: {payload[:500]!r}")
        return name

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._process is not None else "stopped"
        return f"<S3Server {self.endpoint_url} {state}>"
