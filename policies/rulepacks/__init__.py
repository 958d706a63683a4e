"""The rule packs in force, as data: the house rules and one pack per jurisdiction.

Order matters only for display and for ``pack_versions``; superseding is explicit per rule.
Add a version of a pack by adding a Pack with the same name and a later ``effective_from``
(and closing the previous one with ``effective_to``): validation refuses overlaps.
"""

from __future__ import annotations

from policies.pack_model import Pack
from policies.rulepacks.china import CN
from policies.rulepacks.core import CORE
from policies.rulepacks.uk import GB
from policies.rulepacks.us_federal import US_REG_F, US_SCRA, US_TCPA, US_TCPA_1992
from policies.rulepacks.us_states import US_CA, US_MA, US_NYC, US_NYC_2024, US_WA

PACKS: tuple[Pack, ...] = (
    CORE, US_REG_F, US_TCPA_1992, US_TCPA, US_SCRA, US_MA, US_NYC_2024, US_NYC, US_WA, US_CA, CN,
    GB,
)  # fmt: skip
