"""An S3-protocol server on loopback for the object-store tests: moto's standalone server (what
the S3 ecosystem tests against), started in this process on a free port of 127.0.0.1."""

import socket
import uuid

import boto3
import pytest
from botocore.config import Config

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "lethe-test", "AWS_SECRET_ACCESS_KEY": "lethe-test-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def s3_storage_settings(*, endpoint_url, bucket, max_attempts=2):
    """The STORAGES["artifacts"] entry config/settings.py builds for LETHE_ARTIFACT_STORAGE=s3."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": "us-east-1",
            "addressing_style": "path",
            "signature_version": "s3v4",
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,
            "client_config": Config(
                connect_timeout=2, read_timeout=30, signature_version="s3v4", retries={"max_attempts": max_attempts, "mode": "standard"}, s3={"addressing_style": "path"}
            ),
        },
    }


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_client(s3_endpoint, monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3_bucket(settings, s3_endpoint, s3_client, _artifact_root):
    """This test's artifact store is a fresh bucket on the loopback S3 server (replacing the
    per-test folder the autouse fixture set up)."""
    from django.core.files.storage import storages

    bucket = f"lethe-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, "artifacts": s3_storage_settings(endpoint_url=s3_endpoint, bucket=bucket)}
    storages._storages.pop("artifacts", None)
    yield bucket
    storages._storages.pop("artifacts", None)


def bucket_keys(s3_client, bucket, prefix=""):
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
