"""Why a video cannot be scored: one small class per reason, each with a stable ``code``.

These are *the input's* fault, so retrying cannot help: the handler records the job as
``failed`` with ``{code, message}`` and acknowledges the message. Anything else (storage or
table unavailable, a bug) is not one of these and propagates, so the queue retries it.
"""

from __future__ import annotations


class BadInput(Exception):
    """The upload cannot be scored. ``message`` is a sentence a person can act on."""

    code = "bad_input"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# -- the object in storage ------------------------------------------------------------

class UploadMissing(BadInput):
    code = "upload_missing"


class FileTooLarge(BadInput):
    code = "file_too_large"


class SizeMismatch(BadInput):
    code = "size_mismatch"


# -- the file's content ---------------------------------------------------------------

class NotAVideo(BadInput):
    code = "not_a_video"


class NoFrames(BadInput):
    code = "no_frames"


class VideoTruncated(BadInput):
    code = "video_truncated"


class VideoTooShort(BadInput):
    code = "video_too_short"


class VideoTooLong(BadInput):
    code = "video_too_long"


class ResolutionTooSmall(BadInput):
    code = "resolution_too_small"


class ResolutionTooLarge(BadInput):
    code = "resolution_too_large"


class NotADive(BadInput):
    code = "not_a_dive"


# -- what the job asked for -------------------------------------------------------------

class EntryAfterEnd(BadInput):
    """``entry_s`` (the given entry) is later than the video's end."""

    code = "entry_after_end"
