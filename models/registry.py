"""Built-in model families by name."""

from __future__ import annotations

from models.dcn import DCN_FAMILY
from models.din import DIN_FAMILY
from models.dlrm import DLRM_FAMILY
from models.errors import ModelError
from models.family import ModelFamily
from models.hstu import HSTU_FAMILY
from models.mmoe import MMOE_FAMILY
from models.sasrec import SASREC_FAMILY
from models.two_tower import TWO_TOWER_FAMILY, TWO_TOWER_TOPK_FAMILY

FAMILIES: dict[str, ModelFamily] = {
    f.name: f for f in (DLRM_FAMILY, DCN_FAMILY, TWO_TOWER_FAMILY, TWO_TOWER_TOPK_FAMILY, SASREC_FAMILY,
                        HSTU_FAMILY, DIN_FAMILY, MMOE_FAMILY)
}
DEFAULT_MODEL = "dlrm"


def get_family(name: str) -> ModelFamily:
    if name not in FAMILIES:
        raise ModelError(f"unknown model '{name}'; valid: {', '.join(FAMILIES)}")
    return FAMILIES[name]
