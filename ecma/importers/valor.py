"""VALOR's published features (Lai et al., NeurIPS 2023; github.com/Franklin905/VALOR, "CLIP.zip" and
"CLAP.zip" on huggingface.co/datasets/NTUBarista/valor_features).

ROOT/CLIP/features/<id>.npy: (10, 768) float32, L2-normalised CLIP ViT-L/14 image embeddings, one frame per
second (VALOR's ``clip_preprocess.py``). ROOT/CLAP/features/<id>.npy: (64, 768), HTSAT's last feature map
(LAION-CLAP, fusion checkpoint), converted to 10 per-second vectors as VALOR's network does (``clap.py``).
"""

from __future__ import annotations

from ecma import registry

from ecma.importers.clap import clap_map_to_segments
from ecma.importers.spec import FeatureFormat, Stream

VALOR = FeatureFormat(
    name="valor",
    streams=(
        Stream("audio", "CLAP/features", (64, 768), "LAION-CLAP HTSAT last feature map (VALOR)",
               convert=clap_map_to_segments,
               conversion="VALOR's input path before fc_a: view (768, 2, 32), bicubic to (2, 1024) "
                          "(align_corners=False), mean over frequency, adaptive average pool to 10"),
        Stream("visual", "CLIP/features", (10, 768), "CLIP ViT-L/14 image embeddings, L2-normalised (VALOR)"),
    ),
)

registry.register_feature_format(VALOR)
