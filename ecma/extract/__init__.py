"""Feature extraction: raw videos -> per-segment CLIP visual and CLAP audio features in an HDF5 shard.

``extract_videos`` is the entry point (the ``ecma extract`` command calls it); which file holds which annotated
video is :func:`ecma.data.datasets.match_videos`'s job.
"""

__all__ = ["ExtractReport", "extract_videos", "failures_path_for"]


def __getattr__(name: str):
    # Lazy: the decoding workers import ecma.extract.decode, and must not pay for torch and open_clip.
    if name in __all__:
        from ecma.extract import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'ecma.extract' has no attribute {name!r}")
