"""HAN's published features (Tian, Li and Xu, ECCV 2020; github.com/YapengTian/AVVP-ECCV20, the "feats"
folder of its Google Drive link), as its ``dataloader.py`` reads them.

ROOT/vggish/<id>.npy (10, 128) VGGish audio; ROOT/res152/<id>.npy (80, 2048) ResNet-152 frames, 8 per
second (stored as the frame-level ``visual`` with ``frames_per_segment`` 8: HAN projects each frame, then
averages the 8); ROOT/r2plus1d_18/<id>.npy (10, 512) R(2+1)D-18 clip features (``visual_3d``).
"""

from __future__ import annotations

from ecma import registry

from ecma.importers.spec import FeatureFormat, Stream

HAN = FeatureFormat(
    name="han",
    streams=(
        Stream("audio", "vggish", (10, 128), "VGGish (HAN)"),
        Stream("visual", "res152", (80, 2048), "ResNet-152 frames, 8 per second (HAN)"),
        Stream("visual_3d", "r2plus1d_18", (10, 512), "R(2+1)D-18 clips, one per second (HAN)"),
    ),
    frames_per_segment=8,
)

registry.register_feature_format(HAN)
