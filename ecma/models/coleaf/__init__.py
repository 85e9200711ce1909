"""The CoLeaF backbone (Sardari et al., ECCV 2024; github faeghehsardari/coleaf), the paper's: its main network
and auxiliary audio-only and visual-only networks (``network``), their losses and label denoising (``losses``),
one training step (``step``), the trainer's interface (``backbone``), its config section (``settings``) and
the import of CoLeaF's own saved weights (``checkpoint_import``).

Importing this package registers the backbone, its four variants (Table 3 of the E-CMANet paper, in its
order) and its section with :mod:`ecma.registry`; the networks (torch) load when first asked for.
"""

from ecma import registry
from ecma.models.coleaf.settings import CoLeaFSettings

SPEC = registry.register_backbone(registry.BackboneSpec(
    name="coleaf",
    backbone="ecma.models.coleaf.backbone:CoLeaFBackbone",
    variants=(
        registry.Variant("coleaf", "coleaf", False, False, "CoLeaF alone (Table 3: CoLeaF-dagger)",
                         "CoLeaF† alone (no teacher, no CMA)"),
        registry.Variant("no_cma", "coleaf", True, False,
                         "CoLeaF + EMA teacher's pseudo masks, no CMA (Table 3: w/o CMA)",
                         "+ EMA teacher pseudo masks, no CMA"),
        registry.Variant("no_ema", "coleaf", False, True, "CoLeaF + CMA, no EMA teacher (Table 3: w/o EMA)",
                         "+ CMA, no EMA teacher"),
        registry.Variant("ecma", "coleaf", True, True, "E-CMANet: CoLeaF + EMA teacher's pseudo masks + CMA",
                         "E-CMA (teacher + CMA)"),
    ),
    section=("coleaf", CoLeaFSettings),
    checkpoint_imports={"coleaf": "ecma.models.coleaf.checkpoint_import:import_coleaf_checkpoint"},
))
