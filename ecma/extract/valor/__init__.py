"""The ``valor`` extraction profile: VALOR's published CLIP/CLAP features, computed from raw videos.

VALOR (Lai et al., NeurIPS 2023; github.com/Franklin905/VALOR, ``utils/``) computes its features in two
steps over files on disk: ffmpeg writes 8-fps JPEGs, CLIP encodes 10 of them; librosa loads the audio
again, LAION-CLAP's fusion HTSAT encodes it. This package does the same steps in the extraction's one
decode, with no JPEG folder (docs/method.md, "VALOR's features", lists them):

- :mod:`.identity`: the feature identity that imported VALOR features and ``valor`` extractions share;
- :mod:`.frames` and :mod:`.waveform`: the frames and the 480,000 samples VALOR's code picks (torch-free:
  they run in the decoding workers), put together per video by :mod:`.decode`;
- :mod:`.mel` and :mod:`.encoders`: the fusion mel input and the two towers (in the encoding process).
"""
