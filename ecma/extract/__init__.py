"""Feature extraction: raw videos -> per-segment CLIP visual and CLAP audio features in an HDF5 shard.

``extract_videos`` is the entry point (the ``ecma extract`` command calls it); ``match_videos`` finds the
video file of each annotation filename.
"""

from ecma.extract.names import VIDEO_EXTENSIONS, match_videos
from ecma.extract.pipeline import ExtractReport, extract_videos, failures_path_for

__all__ = ["ExtractReport", "extract_videos", "failures_path_for", "match_videos", "VIDEO_EXTENSIONS"]
