"""The ablation variants: which backbone each trains and which of E-CMA's terms it switches on.

Table 3 of the E-CMANet paper, on the CoLeaF backbone and in its order: ``coleaf`` (CoLeaF-dagger alone),
``no_cma`` (EMA teacher's pseudo masks, no CMA), ``no_ema`` (CMA, no teacher), ``ecma`` (both). The HAN
backbone has the same four under its own names. A variant switches nothing of the backbone's own loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecma.config import VARIANTS


@dataclass(frozen=True)
class Variant:
    backbone: str  # 'coleaf' | 'han'
    teacher: bool  # an EMA teacher writes pseudo masks, and L_pseudo trains on them
    cma: bool  # L_CMA aligns the audio and visual segment embeddings
    description: str

    @property
    def terms(self) -> tuple[str, ...]:
        """E-CMA's loss terms this variant adds to its backbone's."""
        return tuple(name for name, on in (("pseudo", self.teacher), ("cma", self.cma)) if on)


VARIANT_TABLE: dict[str, Variant] = {
    "coleaf": Variant("coleaf", False, False, "CoLeaF alone (Table 3: CoLeaF-dagger)"),
    "no_cma": Variant("coleaf", True, False, "CoLeaF + EMA teacher's pseudo masks, no CMA (Table 3: w/o CMA)"),
    "no_ema": Variant("coleaf", False, True, "CoLeaF + CMA, no EMA teacher (Table 3: w/o EMA)"),
    "ecma": Variant("coleaf", True, True, "E-CMANet: CoLeaF + EMA teacher's pseudo masks + CMA"),
    "han": Variant("han", False, False, "HAN alone"),
    "han_no_cma": Variant("han", True, False, "HAN + EMA teacher's pseudo masks, no CMA"),
    "han_no_ema": Variant("han", False, True, "HAN + CMA, no EMA teacher"),
    "han_ecma": Variant("han", True, True, "E-CMA on HAN"),
}
assert tuple(VARIANT_TABLE) == VARIANTS, "ecma.config.VARIANTS and the variant table must list the same variants"


def variant(name: str) -> Variant:
    if name not in VARIANT_TABLE:
        raise ValueError(f"unknown variant {name!r} ({', '.join(VARIANT_TABLE)})")
    return VARIANT_TABLE[name]
