"""The emulator behaves like S3 where the stack's cost depends on it: a ranged GET reads its
range from the stored object, not the whole object (the function reads a 200 MB upload in
1 MiB ranges)."""

import re
from pathlib import Path

import pytest

from tests.support.helpers import isolated_settings

MB = 1024 * 1024
SIZE = 48 * MB  # above moto's in-memory buffer (16 MiB): the object lives in a file it reads


@pytest.fixture(scope="module")
def stored(emulator):
    import boto3

    settings = isolated_settings()
    s3 = boto3.client("s3", endpoint_url=emulator.endpoint, region_name=settings.region)
    data = bytes(range(256)) * (SIZE // 256)
    s3.put_object(Bucket=settings.bucket, Key="big.bin", Body=data)
    return s3, settings.bucket, data


def emulator_read_bytes(emulator) -> int:
    """What the emulator's process has read with read() and its kin (Linux's ``rchar``)."""
    io = Path(f"/proc/{emulator.process.pid}/io").read_text()
    return int(re.search(r"^rchar: (\d+)$", io, re.MULTILINE).group(1))


@pytest.mark.parametrize("spec, start, stop", [
    ("bytes=0-0", 0, 1),
    ("bytes=1000-2047", 1000, 2048),
    (f"bytes={SIZE - 10}-", SIZE - 10, SIZE),
    (f"bytes={SIZE - 10}-{SIZE + 500}", SIZE - 10, SIZE),
    ("bytes=-100", SIZE - 100, SIZE),  # a suffix range: served by moto as before
])
def test_a_ranged_get_returns_its_bytes(stored, spec, start, stop):
    s3, bucket, data = stored
    answer = s3.get_object(Bucket=bucket, Key="big.bin", Range=spec)
    assert answer["Body"].read() == data[start:stop]
    assert answer["ContentRange"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert answer["ContentLength"] == stop - start


def test_a_range_past_the_end_is_refused_and_a_whole_get_is_whole(stored):
    s3, bucket, data = stored
    with pytest.raises(s3.exceptions.ClientError) as refused:
        s3.get_object(Bucket=bucket, Key="big.bin", Range=f"bytes={SIZE}-")
    assert refused.value.response["Error"]["Code"] == "InvalidRange"
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data


def test_a_ranged_get_reads_only_its_range_from_the_stored_object(emulator, stored):
    s3, bucket, data = stored
    before = emulator_read_bytes(emulator)
    for n in range(8):
        start = n * 5 * MB
        assert s3.get_object(Bucket=bucket, Key="big.bin", Range=f"bytes={start}-{start + MB - 1}")["Body"].read() \
            == data[start:start + MB]
    read = emulator_read_bytes(emulator) - before
    # 8 MiB asked for; moto as it comes reads the whole 48 MiB object for each range (384 MiB)
    assert read < 16 * MB, f"the emulator read {read / MB:.0f} MiB to serve 8 MiB"
