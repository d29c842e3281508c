"""S3-compatible object storage over the one HTTP edge: PUT, GET (with If-None-Match), HEAD, presigned GETs.

Requests are signed with AWS Signature Version 4 by botocore's signer (`botocore.auth`: a well-kept
implementation of the scheme, so no home-made crypto), and sent with `HttpClient` like every other
outbound call: one pooled session, deadlines, mapped transport errors. Nothing else of an AWS SDK is used.

Addressing is path-style (`<endpoint>/<bucket>/<key>`), which S3-compatible servers (MinIO, Ceph RGW,
moto, ...) and AWS itself accept; the endpoint defaults to AWS's regional one. The settings come from the
standard variables through the YAML: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN` for temporary credentials).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

import msgspec
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shared_contracts.errors import GatewayError, StorageError

from .client import HttpClient, Reply
from .config import Section

__all__ = ["ObjectStore", "S3Location", "S3Settings", "StoredObject", "parse_s3_url"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9._/-]*$")


class S3Settings(Section, frozen=True):
    """How to reach the bucket (YAML reads the standard `AWS_*` variables into these)."""

    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0

    def __repr__(self) -> str:
        return f"S3Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r}, secret=<hidden>)"


@dataclass(frozen=True, slots=True)
class S3Location:
    """`s3://bucket/prefix` split: the bucket, and the key prefix (no leading or trailing slash)."""

    bucket: str
    prefix: str

    def key(self, name: str) -> str:
        """The object key of `name` under the prefix."""
        return f"{self.prefix}/{name}" if self.prefix else name


def parse_s3_url(url: str) -> S3Location:
    """`s3://bucket/some/prefix` → S3Location; anything else is a ValueError naming the problem.

    >>> parse_s3_url("s3://media/pdp/images")
    S3Location(bucket='media', prefix='pdp/images')
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
    if not _BUCKET.match(parts.netloc):
        raise ValueError(f"{parts.netloc!r} is not a valid bucket name")
    prefix = parts.path.strip("/")
    if not _PREFIX.match(prefix):
        raise ValueError(f"prefix {prefix!r}: use letters, digits and . _ / - only")
    return S3Location(parts.netloc, prefix)


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object's bytes (None for a HEAD or a 304) and the headers that describe it."""

    status: int
    body: bytes | None
    etag: str
    content_type: str
    metadata: Mapping[str, str]


class ObjectStore:
    """One bucket (and prefix) of an S3-compatible service."""

    def __init__(self, location: S3Location, settings: S3Settings, *, name: str = "object-store") -> None:
        if not settings.access_key_id or not settings.secret_access_key:
            raise ValueError("access_key_id and secret_access_key are required (AWS_ACCESS_KEY_ID, "
                             "AWS_SECRET_ACCESS_KEY)")
        endpoint = (settings.endpoint_url or f"https://s3.{settings.region}.amazonaws.com").rstrip("/")
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint_url {endpoint!r} must start with http:// or https://")
        self.location = location
        self.endpoint = endpoint
        self._settings = settings
        self._credentials = Credentials(
            settings.access_key_id, settings.secret_access_key, settings.session_token or None
        )
        self.client = HttpClient(name, connect_timeout=settings.connect_timeout_s, details={"store": name},
                                 secret=settings.secret_access_key)

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()

    def url(self, name: str) -> str:
        """The object's URL (path-style)."""
        key = quote(self.location.key(name), safe="/~")
        return f"{self.endpoint}/{self.location.bucket}/{key}"

    def _signed(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        S3SigV4Auth(self._credentials, "s3", self._settings.region).add_auth(request)
        return {key: str(value) for key, value in request.headers.items()}

    def presign(self, name: str, *, expires_s: int) -> str:
        """A URL anyone can GET the object with until it expires (SigV4 query signing, no request made)."""
        request = AWSRequest(method="GET", url=self.url(name))
        S3SigV4QueryAuth(self._credentials, "s3", self._settings.region, expires=expires_s).add_auth(request)
        return str(request.url)

    async def _send(self, method: str, name: str, body: bytes | None = None,
                    headers: Mapping[str, str] | None = None) -> Reply:
        url = self.url(name)
        signed = self._signed(method, url, body, headers or {})
        deadline = asyncio.get_running_loop().time() + self._settings.request_timeout_s
        try:
            return await self.client.request(method, url, body=body, headers=signed, deadline=deadline)
        except GatewayError as exc:
            raise StorageError(f"the object store did not answer: {exc.message}",
                               details={"store": self.location.bucket}) from exc

    async def put(
        self, name: str, data: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> str:
        """Store `data` under `name`; its ETag. A refusal is a StorageError naming the S3 error code."""
        headers = {"content-type": content_type, **{f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()}}
        reply = await self._send("PUT", name, data, headers)
        if not reply.ok:
            raise _refused("keep the object", reply, self.location.bucket)
        return reply.headers.get("etag", "")

    async def get(self, name: str, *, if_none_match: str | None = None) -> StoredObject | None:
        """The object (status 200), or status 304 with no body when `if_none_match` matches; None when absent."""
        return await self._read("GET", name, if_none_match)

    async def head(self, name: str) -> StoredObject | None:
        """The object's headers without its bytes; None when absent."""
        return await self._read("HEAD", name, None)

    async def _read(self, method: str, name: str, if_none_match: str | None) -> StoredObject | None:
        headers = {"if-none-match": if_none_match} if if_none_match else {}
        reply = await self._send(method, name, None, headers)
        if reply.status == 404:
            return None
        if reply.status == 304 or reply.ok:
            meta = {k[11:]: v for k, v in reply.headers.items() if k.lower().startswith("x-amz-meta-")}
            return StoredObject(
                status=reply.status, body=reply.body if method == "GET" and reply.ok else None,
                etag=reply.headers.get("etag", ""), content_type=reply.headers.get("content-type", ""),
                metadata={k.lower(): v for k, v in meta.items()},
            )
        raise _refused("read the object", reply, self.location.bucket)


def _code(body: bytes) -> str:
    found = re.search(rb"<Code>([^<]{1,64})</Code>", body[:2000])
    return found.group(1).decode("ascii", "replace") if found else ""


def _refused(what: str, reply: Reply, bucket: str) -> StorageError:
    code = _code(reply.body) or str(reply.status)
    return StorageError(f"the object store refused to {what}: {code}",
                        details={"store": bucket, "status": reply.status, "code": code})
