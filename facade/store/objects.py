"""Finished export files in S3-compatible object storage (FACADE_EXPORT_STORE=s3://...), for
deployments whose workers and API replicas run on different machines.

A worker writes an export's files in its own data directory while the export runs (its
checkpoints and crash recovery are local files) and publishes them here when it completes;
any replica then serves them to the client that made the export, after the same token check
as a local file (the manifest keeps `requiresAccessToken: true`: no pre-signed URL is handed
out). Objects are written server-side encrypted (SSE-S3) and deleted when the export expires
or is cancelled.

Credentials come from boto3's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile,
an instance role), never from facade's settings; `FACADE_S3_ENDPOINT_URL` points at an
S3-compatible server (MinIO, Ceph, a test server) instead of AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Bytes read from an object at a time while serving it.
CHUNK = 256 * 1024


class ObjectStoreError(Exception):
    """The object store could not be used; the message names what, never a credential."""


class ObjectStore:
    def __init__(self, url: str, endpoint_url: str = "", client: Any = None):
        """`url` is s3://BUCKET[/PREFIX]; `client` replaces boto3's (tests)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ObjectStoreError(f"{url!r} is not s3://BUCKET[/PREFIX]")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url or None,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        self._client = client

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def put_file(self, key: str, path: Path) -> None:
        try:
            self._client.upload_file(
                str(path), self.bucket, key, ExtraArgs={"ServerSideEncryption": "AES256"}
            )
        except Exception as error:
            raise ObjectStoreError(
                f"writing to s3://{self.bucket} failed ({type(error).__name__})"
            ) from None

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except Exception:
            return False
        return True

    def chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes, a chunk at a time (a sync iterator: serve it off the loop)."""
        body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            while chunk := body.read(CHUNK):
                yield chunk
        finally:
            body.close()

    def delete_prefix(self, prefix: str) -> None:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/"):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
