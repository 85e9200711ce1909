"""VALOR's published features (Lai et al., NeurIPS 2023; github.com/Franklin905/VALOR, "CLIP.zip" and
"CLAP.zip" on huggingface.co/datasets/NTUBarista/valor_features).

ROOT/CLIP/features/<id>.npy: (10, 768) float32, L2-normalised CLIP ViT-L/14 image embeddings, one frame per
second (VALOR's ``clip_preprocess.py``). ROOT/CLAP/features/<id>.npy: (64, 768), HTSAT's last feature map
(LAION-CLAP, fusion checkpoint), converted to 10 per-second vectors as VALOR's network does (``clap.py``).

The shards carry the feature identity that ``extract.profile: valor`` extractions carry too
(:mod:`ecma.extract.valor.identity`), naming the encoders that computed the published files: by default
the publisher's (OpenAI's ViT-L/14, LAION-CLAP's 630k-fusion-best.pt); ``encoders_from`` (an extract
config naming weights files) for features computed with other weights, e.g. the tests' random ones.
"""

from __future__ import annotations

from typing import Optional

from ecma import registry
from ecma.errors import EcmaError
from ecma.extract.valor.identity import published_encoders, settings_fingerprint, valor_fingerprint
from ecma.importers.clap import clap_map_to_segments
from ecma.importers.spec import FeatureFormat, Stream


def valor_identity(encoders: Optional[object] = None) -> dict:
    """The fingerprint of imported VALOR features computed by ``encoders`` (an ExtractConfig; None: the
    published checkpoints)."""
    if encoders is None:
        return valor_fingerprint(*published_encoders())
    if getattr(encoders, "profile", "valor") != "valor":  # a native extract section computes other features
        raise EcmaError(f"the encoders of VALOR features are an extract section with profile: valor, "
                        f"got profile: {encoders.profile}")
    return settings_fingerprint(encoders)


VALOR = FeatureFormat(
    name="valor",
    streams=(
        Stream("audio", "CLAP/features", (64, 768), "LAION-CLAP HTSAT last feature map (VALOR)",
               convert=clap_map_to_segments,
               conversion="VALOR's input path before fc_a: view (768, 2, 32), bicubic to (2, 1024) "
                          "(align_corners=False), mean over frequency, adaptive average pool to 10"),
        Stream("visual", "CLIP/features", (10, 768), "CLIP ViT-L/14 image embeddings, L2-normalised (VALOR)"),
    ),
    identity=valor_identity,
)

registry.register_feature_format(VALOR)
