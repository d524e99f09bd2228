"""Reading videos with PyAV (FFmpeg's libraries): what a file holds and the frames asked for,
decoding only the stretches that hold them. The way in is :class:`RunReader`
(``RunReader.probed(source, limits)``, then its ``read`` and ``packet_sizes``).

A *run* is a range of frame indices; an index is a frame's position in a sequential decode
(the first frame the decoder outputs is 0), which is what every caller means by "frame 40".
For each run the reader seeks to the keyframe at or before the run's first frame and decodes
forward to its last; when that keyframe is not past what it has already decoded it decodes
on instead, so no frame is decoded twice and no seek is made per frame (on H.264 per-frame
seeking is 4-35x slower than one sequential pass).

A decoded frame's index comes from its timestamp, ``(pts - first pts) / frame duration``,
which holds for a constant frame rate. Where that cannot be trusted the reader decodes
sequentially instead, counting frames as they come: a file without an index to seek with
(a WebM as browsers' MediaRecorder writes it: no cues, no duration), a frame rate the
stream does not state, or timestamps that turn out irregular or a seek that lands wrong
while reading (it then carries on sequentially from the start for the frames still wanted).
Both ways give the same frames.

The modules, one job each:

- :mod:`~inference.video.probe`     opening a file, what it holds, the limits it must meet
- :mod:`~inference.video.runs`      run arithmetic
- :mod:`~inference.video.reader`    :class:`RunReader`: reading runs, the sequential pass, kept frames
- :mod:`~inference.video.seeking`   the keyframe-seeking reader and when it gives up
- :mod:`~inference.video.decoding`  the decoder's frames, read statistics, a stream ending early
- :mod:`~inference.video.packets`   the compressed frames' sizes, for the entry search
"""

from inference.video.decoding import ReadStats
from inference.video.probe import Source, VideoInfo, VideoLimits
from inference.video.reader import Frame, RunReader
from inference.video.runs import runs_of

__all__ = ["Frame", "ReadStats", "RunReader", "Source", "VideoInfo", "VideoLimits", "runs_of"]
