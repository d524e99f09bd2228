"""An S3 object as a seekable, read-only file: the decoder reads the upload straight from
storage through ranged GETs, fetching only the blocks it touches instead of downloading the
whole file first.

Reads are served from fixed-size blocks. Recent blocks stay cached (a demuxer re-reads an
index or jumps back a little); when reads run forward, the next blocks are fetched in the
background while the decoder works on the current one, so fetching overlaps decoding, but not
past where the reader said the frames it wants end (:meth:`RangedObject.read_ahead_until`).
``bytes_read`` counts every byte fetched from storage, read-ahead included.

Permissions: ``GetObject`` with a ``Range`` header, nothing else (``s3:GetObject``).
"""

from __future__ import annotations

import collections
import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from botocore.exceptions import ClientError

from inference import errors

BLOCK_BYTES = 1 << 20  # 1 MiB: about half a second of 1080p at 16 Mbit/s
READ_AHEAD_BLOCKS = 2
CACHED_BLOCKS = 16
FETCH_THREADS = 2


class RangedObject(io.RawIOBase):
    """``s3://bucket/key`` of ``size`` bytes (known from the event or a HEAD)."""

    def __init__(self, s3, bucket: str, key: str, size: int, *, block_bytes: int = BLOCK_BYTES,
                 read_ahead: int = READ_AHEAD_BLOCKS, cached: int = CACHED_BLOCKS):
        super().__init__()
        self.s3, self.bucket, self.key, self.size = s3, bucket, key, size
        self.block_bytes, self.read_ahead, self.cached = block_bytes, read_ahead, max(cached, read_ahead + 2)
        self.position = 0
        self.bytes_read = 0
        self.requests = 0
        # The first storage error: FFmpeg may turn a failed read into an end of file, which
        # must not pass for a truncated video.
        self.failure: Exception | None = None
        self._blocks: collections.OrderedDict[int, Future] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="s3-range")
        self._last_block = -2
        self._ahead_until: int | None = None  # the last block worth fetching ahead of the reads

    def read_ahead_until(self, offset: int | None) -> None:
        """Fetch ahead no block past the one holding byte ``offset`` (None: up to the end):
        the bytes past it are fetched only if they are read. A reader that knows where the
        frames it wants end (from the container's index) says so before it reads them."""
        self._ahead_until = None if offset is None else max(0, offset) // self.block_bytes

    # -- io.RawIOBase ------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self.position = base + offset
        return self.position

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self.position < self.size:
            number, skip = divmod(self.position, self.block_bytes)
            block = self._block(number)
            piece = block[skip: skip + len(view) - done]
            if not piece:
                break
            view[done: done + len(piece)] = piece
            done += len(piece)
            self.position += len(piece)
        return done

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.size - self.position)
        buffer = bytearray(min(size, max(0, self.size - self.position)))
        return bytes(buffer[: self.readinto(buffer)])

    def close(self) -> None:
        if not self.closed:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._blocks.clear()
        super().close()

    # -- blocks ----------------------------------------------------------------------------

    def _block(self, number: int) -> bytes:
        sequential = number in (self._last_block, self._last_block + 1)
        self._last_block = number
        future = self._future(number)
        if sequential:
            last = (self.size - 1) // self.block_bytes
            if self._ahead_until is not None:
                last = min(last, self._ahead_until)
            for ahead in range(number + 1, min(number + self.read_ahead, last) + 1):
                self._future(ahead)
        return future.result()

    def _future(self, number: int) -> Future:
        with self._lock:
            future = self._blocks.get(number)
            if future is None:
                future = self._blocks[number] = self._pool.submit(self._fetch, number)
                while len(self._blocks) > self.cached:
                    self._blocks.popitem(last=False)
            else:
                self._blocks.move_to_end(number)
            return future

    def _fetch(self, number: int) -> bytes:
        start = number * self.block_bytes
        end = min(start + self.block_bytes, self.size) - 1
        try:
            data = self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end}")["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                err = errors.UploadMissing(
                    "The uploaded video is no longer in storage (it expired or was removed). Create a new job."
                )
            self.failure = self.failure or err
            raise err from None
        except Exception as err:
            self.failure = self.failure or err
            raise
        with self._lock:
            self.bytes_read += len(data)
            self.requests += 1
        return data
