"""The HAN backbone: the Hybrid Attention Network (Tian, Li and Xu, ECCV 2020) with its MMIL pooling head
(``network``), its loss L_AVVP (``losses``) and the trainer's interface (``backbone``).

Importing this package registers the backbone and its four variants (E-CMA's ablation on HAN) with
:mod:`ecma.registry`; the network (torch) loads when first asked for.
"""

from ecma import registry

SPEC = registry.register_backbone(registry.BackboneSpec(
    name="han",
    backbone="ecma.models.han.backbone:HANBackbone",
    variants=(
        registry.Variant("han", "han", False, False, "HAN alone", "HAN baseline (no teacher, no CMA)"),
        registry.Variant("han_no_cma", "han", True, False, "HAN + EMA teacher's pseudo masks, no CMA",
                         "HAN + EMA teacher pseudo masks, no CMA"),
        registry.Variant("han_no_ema", "han", False, True, "HAN + CMA, no EMA teacher", "HAN + CMA, no EMA teacher"),
        registry.Variant("han_ecma", "han", True, True, "E-CMA on HAN", "E-CMA on HAN (teacher + CMA)"),
    ),
))
