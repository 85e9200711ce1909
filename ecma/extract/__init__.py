"""Feature extraction: raw videos -> per-segment CLIP visual and CLAP audio features in an HDF5 shard.

``extract_videos`` is the entry point (the ``ecma extract`` command calls it); which file holds which annotated
video is :func:`ecma.datasets.match_videos`'s job.
"""

from ecma.extract.pipeline import ExtractReport, extract_videos, failures_path_for

__all__ = ["ExtractReport", "extract_videos", "failures_path_for"]
