"""Disclosures the law requires in what is written to a consumer whose debt is time-barred, per
state: the text, whom it applies to, and its citation. Pure data, like the rule packs.

``outreach.planning.messages`` puts the text into every letter and email to a time-barred account the
disclosure covers (``{{ time_barred_disclosure }}`` where the template places it, else after
the body); an SMS cannot hold it, so ``core.time_barred_disclosure`` keeps texts from those
accounts. docs/compliance.md lists them (``python -m policies.docs``).

The texts are the project's reading of the rules, to confirm with counsel before use; where a
state is known to require a disclosure but its wording could not be checked here, it is listed
in ``TO_CONFIRM`` and no text is shipped for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.model import COLLECTOR, CREDITOR

WRITTEN_CHANNELS = frozenset({"letter", "email", "sms"})


@dataclass(frozen=True, slots=True)
class Disclosure:
    disclosure_id: str
    version: str
    region: str  # ISO 3166-2: "US-CA"
    roles: frozenset[str]
    citation: str
    text: str  # English: the rules prescribe English wording


TIME_BARRED = (
    Disclosure(
        "us_ca.time_barred_disclosure",
        "2019.01.01",
        "US-CA",
        frozenset({CREDITOR, COLLECTOR}),  # the Rosenthal Act's "debt collector" covers both
        "Cal. Civ. Code 1788.14(d) (as amended by SB 1061, from 2019-01-01): in the first "
        "written communication after the debt became time-barred, for a debt still within the "
        "credit-reporting period (Cal. Civ. Code 1785.13); to confirm: the variant for a debt "
        "past that period says it will not be reported, and whether texts and emails are "
        "'written communications' here",
        "The law limits how long you can be sued on a debt. Because of the age of your debt, "
        "we will not sue you for it. If you do not pay the debt, {sender} may report it to the "
        "credit reporting agencies as unpaid.",
    ),
    Disclosure(
        "us_ny.time_barred_disclosure",
        "2014.04.01",
        "US-NY",
        frozenset({COLLECTOR}),  # 23 NYCRR 1.1: third-party debt collectors
        "23 NYCRR 1.3 (NYS DFS), before accepting payment on a time-barred debt, e.g. with the "
        "15 U.S.C. 1692g notice; to confirm: the wording as last amended, and its revival "
        "sentence against NY CPLR 214-i (from 2022-04-07 a payment does not revive a consumer "
        "credit debt in New York)",
        "We are required by regulation of the New York State Department of Financial Services "
        "to notify you of the following information. This information is NOT legal advice: "
        "Your creditor or debt collector believes that the legal time limit (statute of "
        "limitations) for suing you to collect this debt has expired. It is a violation of the "
        "Fair Debt Collection Practices Act, 15 U.S.C. 1692 et seq., to sue to collect on a "
        "debt for which the statute of limitations has expired. If a creditor sues you to "
        "collect on this debt, you may be able to prevent the creditor from obtaining a "
        "judgment against you. To do so, you must tell the court that the statute of "
        "limitations has expired. Even if the statute of limitations has expired, you may "
        "choose to make payments on the debt. However, be aware: if you make a payment on the "
        "debt, admit to owing the debt, promise to pay the debt, or waive the statute of "
        "limitations on the debt, the time period in which the debt is enforceable in court "
        "may start again. If you would like to learn more about your legal rights and options, "
        "you can consult an attorney or a legal assistance agency.",
    ),
)

# States known (to the project's reading) to require a time-barred disclosure whose wording
# could not be checked here: no text is shipped for them until counsel supplies it.
TO_CONFIRM = (
    ("US-MA", "940 CMR 7.07(24) (Massachusetts Attorney General): notice on time-barred debt; "
              "to confirm"),
    ("US-NM", "12.2.12.9 NMAC (New Mexico): disclosure on time-barred debt; to confirm"),
    ("US-WV", "W. Va. Code 46A-2-128(f) (West Virginia): disclosure on time-barred debt; to "
              "confirm"),
    ("US-TX", "Tex. Fin. Code 392.307 (Texas, debt buyers): disclosure on time-barred debt; to "
              "confirm"),
    ("US-NY-NYC", "6 RCNY 5-77 (New York City): time-barred debt disclosure; to confirm"),
)  # fmt: skip


def time_barred_disclosure(country: str, region: str | None, role: str) -> Disclosure | None:
    """The disclosure a time-barred account in ``country``/``region`` gets, if any."""
    code = f"{country}-{(region or '').upper()}"
    return next((d for d in TIME_BARRED if d.region == code and role in d.roles), None)
