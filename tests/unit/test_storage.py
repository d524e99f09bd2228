"""Decoding straight from an S3 object through ranged GETs (moto server): the same frames as
from the file, a small part of its bytes, and storage errors kept apart from bad videos."""

import pytest
from botocore.exceptions import EndpointConnectionError

from bench import synthetic_dive
from divescore import aws
from inference import detect, entry, errors, preprocess
from inference.storage import RangedObject
from inference.video import RunReader, VideoLimits, runs_of
from tests.support import videos
from tests.support.reading import probe, read

LIMITS = VideoLimits(max_seconds=600, max_pixels=3840 * 2160, min_frames=16)
FRAMES = 1000  # 40 s at 25 fps, a keyframe a second: the six clips need about a sixth of the file
BLOCK = 16 * 1024


@pytest.fixture(scope="module")
def long_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long")
    return {kind: videos.make_encoded(folder / f"{kind}.mp4", kind, seconds=FRAMES / 25, size=(640, 360), gop=25)
            for kind in ("h264_bframes", "h264_index_at_end")}


def put(settings, path):
    s3 = aws.client("s3", settings)
    key = f"uploads/{path.stem}/video"
    s3.upload_file(str(path), settings.bucket, key)
    return s3, key


@pytest.mark.parametrize("kind", ["h264_bframes", "h264_index_at_end"])
def test_frames_read_from_storage_are_the_files_and_only_a_part_of_it_is_fetched(settings, long_files, kind):
    path = long_files[kind]
    s3, key = put(settings, path)
    size = path.stat().st_size
    runs = runs_of(i for clip in preprocess.plan_clips(FRAMES) for i in clip)
    with RangedObject(s3, settings.bucket, key, size, block_bytes=BLOCK) as remote:
        with RunReader.probed(remote, LIMITS) as reader:
            info = reader.info
            from_storage = list(reader.read(runs))
        assert info == probe(path, LIMITS)
        assert remote.bytes_read < 0.4 * size  # the clips' GOPs, the index, a little read-ahead
        assert remote.requests < size / BLOCK
    from_file = read(path, runs, info)
    assert [f.index for f in from_storage] == [f.index for f in from_file]
    assert all((a.image == b.image).all() for a, b in zip(from_storage, from_file, strict=True))


def test_the_entry_is_found_straight_from_storage_reading_a_part_of_the_object(settings, tmp_path):
    # GIVEN a 60 s dive (a keyframe a second, as phones write it) in S3
    scene = synthetic_dive.Scene(60.0, 25, 41.0, size=(640, 360), walker=True, seed=3)
    path = synthetic_dive.write(scene, tmp_path / "dive.mp4", gop=25)
    s3, key = put(settings, path)
    size = path.stat().st_size
    info = probe(path, LIMITS)
    with RangedObject(s3, settings.bucket, key, size, block_bytes=BLOCK) as remote:
        with RunReader(remote, info) as reader:
            found = detect.best(entry.search(reader))
        # THEN: the coarse pass read the index, the fine pass the GOPs around its five candidates
        # (at this file's 12 kB/s one 64 KiB read buffer holds 5 s: bench/function.py measures
        # the share on a 200 MB phone file)
        assert remote.bytes_read < 0.8 * size
    with RunReader(path, info) as reader:
        assert found == detect.best(entry.search(reader))
    assert abs(round(found.time_s * scene.fps) - scene.entry_frame) <= 5


class Counting(RangedObject):
    """Records the blocks fetched from storage and the blocks the decoder read; without
    ``told``, it does not take the reader's word on where its runs end."""

    def __init__(self, *args, told: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fetched, self.used = set(), set()
        if not told:
            self.read_ahead_until = None

    def _block(self, number):
        self.used.add(number)
        return super()._block(number)

    def _future(self, number):
        if number not in self._blocks:  # asked of storage (the reader's thread alone asks)
            self.fetched.add(number)
        return super()._future(number)


def test_no_block_is_fetched_ahead_past_the_packets_a_run_needs(settings, long_files):
    path = long_files["h264_bframes"]
    s3, key = put(settings, path)
    runs = runs_of(i for clip in preprocess.plan_clips(FRAMES) for i in clip)
    read_by = {}
    for told in (True, False):
        with Counting(s3, settings.bucket, key, path.stat().st_size, block_bytes=BLOCK, told=told) as remote:
            with RunReader.probed(remote, LIMITS) as reader:
                frames = [f.image for f in reader.read(runs)]
            read_by[told] = remote, frames
    (told, frames), (not_told, same) = read_by[True], read_by[False]
    assert all((a == b).all() for a, b in zip(frames, same, strict=True))
    # a block fetched ahead and never read: at most one a run where the decoder stopped short
    # of the packets reckoned for it, against the read-ahead's two past every run
    assert len(told.fetched - told.used) <= len(runs) < len(not_told.fetched - not_told.used)
    assert told.bytes_read < not_told.bytes_read


def test_a_container_whose_index_lists_only_keyframes_reads_ahead_as_far_as_ever(settings, tmp_path):
    # Matroska's cues give no position for the frames between keyframes: the reader says nothing
    path = videos.make_encoded(tmp_path / "cues.webm", "vp9_webm", seconds=8, size=(320, 180), gop=25)
    s3, key = put(settings, path)
    told = []
    with Counting(s3, settings.bucket, key, path.stat().st_size, block_bytes=BLOCK) as remote:
        remote.read_ahead_until = told.append
        with RunReader.probed(remote, LIMITS) as reader:
            from_storage = list(reader.read([range(100, 120), range(150, 160)]))
            assert not reader.stats.sequential  # read by seeks, as an MP4 is
        info = reader.info
    assert told == []
    from_file = read(path, [range(100, 120), range(150, 160)], info)
    assert all((a.image == b.image).all() for a, b in zip(from_storage, from_file, strict=True))


def test_reads_are_served_from_blocks_in_any_order(settings, long_files):
    path = long_files["h264_bframes"]
    s3, key = put(settings, path)
    data = path.read_bytes()
    with RangedObject(s3, settings.bucket, key, len(data), block_bytes=BLOCK) as remote:
        for offset, length in [(0, 10), (len(data) - 5, 100), (BLOCK - 3, 7), (5 * BLOCK + 1, 3 * BLOCK), (2, 1)]:
            remote.seek(offset)
            assert remote.read(length) == data[offset:offset + length]
        assert remote.read(10) == data[3:13]
        remote.seek(-4, 2)
        assert remote.read() == data[-4:]


def test_an_object_gone_from_storage_is_upload_missing(settings, long_files):
    path = long_files["h264_bframes"]
    s3, key = put(settings, path)
    s3.delete_object(Bucket=settings.bucket, Key=key)
    with RangedObject(s3, settings.bucket, key, path.stat().st_size) as remote, \
            pytest.raises(errors.UploadMissing):
        probe(remote, LIMITS)


class FailingS3:
    """The real client, whose GETs fail after the first ``good`` ones (storage unreachable)."""

    def __init__(self, s3, good: int):
        self.s3, self.good = s3, good

    def get_object(self, **kwargs):
        if self.good <= 0:
            raise EndpointConnectionError(endpoint_url="http://storage")
        self.good -= 1
        return self.s3.get_object(**kwargs)


@pytest.mark.parametrize("good", [0, 2, 6])
def test_storage_failing_under_the_decoder_is_recorded_as_the_storage_error(settings, long_files, good):
    path = long_files["h264_bframes"]
    s3, key = put(settings, path)
    with RangedObject(FailingS3(s3, good), settings.bucket, key, path.stat().st_size, block_bytes=BLOCK) as remote:
        with pytest.raises((errors.BadInput, EndpointConnectionError)), RunReader.probed(remote, LIMITS) as reader:
            list(reader.read(runs_of(range(900, 916))))
        assert isinstance(remote.failure, EndpointConnectionError)
