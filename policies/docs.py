"""Render the rule packs and reason codes as Markdown, so docs/compliance.md never drifts."""

from __future__ import annotations

from policies.codes import REASON_CODES
from policies.pack_model import COUNTRY_FALLBACK_ZONES, Applies, Pack
from policies.packs import all_packs


def _applies(a: Applies) -> str:
    parts = []
    for label, values in (
        ("countries", a.countries),
        ("regions", a.regions),
        ("cities", a.cities),
        ("products", a.products),
        ("roles", a.roles),
    ):
        if values is not None:
            parts.append(f"{label}: {', '.join(sorted(values))}")
    return "; ".join(parts) or "every account"


def _param(value: object) -> str:
    if isinstance(value, tuple | list | frozenset):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _pack_section(pack: Pack) -> list[str]:
    until = f" to {pack.effective_to} (exclusive)" if pack.effective_to else ""
    lines = [
        f"### `{pack.name}` version {pack.version}: {pack.title}",
        "",
        f"In force from {pack.effective_from}{until}. Applies to: {_applies(pack.applies)}.",
        "",
        "| rule | check | channels | parameters | citation | replaces | in force |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in pack.rules:
        channels = "all" if r.channels is None else ", ".join(sorted(r.channels))
        params = ", ".join(f"{k}={_param(v)}" for k, v in r.params.items()) or "-"
        dates = (
            f"{r.effective_from or pack.effective_from} to {r.effective_to or 'open'}"
            if r.effective_from or r.effective_to
            else "as the pack"
        )
        lines.append(
            f"| `{r.rule_id}` | {r.check} | {channels} | {params} | {r.citation} | "
            f"{', '.join(r.supersedes) or '-'} | {dates} |"
        )
    lines.append("")
    if pack.notes:
        lines += [f"- {note}" for note in pack.notes] + [""]
    if pack.letter_requirements:
        lines += ["What letters must say (laid out by the letter medium, docs/letters.md):", "",
                  "| requirement | letters for | what | citation |", "| --- | --- | --- | --- |"]
        lines += [f"| `{r.requirement_id}` | {', '.join(r.purposes)} | {r.what} | {r.citation} |"
                  for r in pack.letter_requirements] + [""]  # fmt: skip
    return lines


CHECK_TEXT = {
    "hold": "blocks while a hold of one of `holds` is active (except for the listed purposes or "
    "relations)",
    "hold_period": "blocks from the hold's start until its recorded end (or `default_days` after "
    "the start), plus `days_after_end`",
    "not_delinquent": "blocks when nothing is past due",
    "opted_out": "blocks a destination opted out, or the whole channel (`*`)",
    "destination": "blocks when no valid destination exists",
    "third_party": "an emergency contact only when no destination of the debtor's own is valid, "
    "only for `allowed_purposes`",
    "consent": "blocks without prior express consent at the destination (phones of "
    "`phone_types`, and phones whose type is unknown; calls only when placed by one of "
    "`dialers`)",
    "workplace_email": "blocks an employer-provided email the consumer neither used nor agreed to",
    "workplace_calls": "blocks a call to a number whose employer forbids them",
    "agency_approved": "blocks a placement unless an approved agency is assigned",
    "time_barred": "blocks a legal step, or a message whose template declares "
    "`threatens_suit`, from the limitation date",
    "time_barred_disclosure": "blocks the step from the limitation date where the account's "
    "state requires a time-barred disclosure (see Disclosures below)",
    "scra": "blocks a legal step without a military-status check in the last `max_age_days`, or "
    "on active duty",
    "validation_notice": "blocks other communications once `days` have passed since the initial "
    "communication without a validation notice",
    "itemization": "blocks a validation notice when the account has no imported itemization "
    "(reference date, its kind and amount) or when the amount then, plus interest and fees "
    "since, less payments since, is not the current amount",
    "validation_dispute": "blocks while a dispute or original-creditor request received within the "
    "validation period is open (period = `period_days` after assumed receipt, "
    "`receipt_business_days` business days after sending)",
    "validation_period": "defers a legal step until the validation period has ended",
    "credit_report": "a credit-reporting step needs a conversation, or a letter or email sent "
    "`days` earlier without a bounce",
    "hours": "allows only `start_hour`-`end_hour` local in every candidate zone",
    "stated_times": "excludes the times the consumer said are inconvenient, in every candidate "
    "zone",
    "call_cap": "at most `max_attempts` counted call attempts in `days` consecutive local days",
    "contact_cap": "at most `max_attempts` counted contacts (of `counted_channels`, outcomes "
    "`counted_outcomes` or all but `not_counted`) in `days` local days, within `scope`; "
    "`per=consumer` counts the contacts of every account of the person, `per=debt` (the "
    "default) the account's own",
    "household": "defers a step when the same person has a contact on the same channel and "
    "local day on another account (sent, being sent, or planned for a higher-priority account), "
    "to the next local day; passes when `householding` is off in `config/policy.yaml`",
    "after_conversation": "no call within `days` days after a conversation (its day is day 1)",
}


def render() -> str:
    lines = [
        "# Compliance rules and reason codes",
        "",
        "Generated from `policies/rulepacks/` and `policies/codes.py` by "
        "`python -m policies.docs > docs/compliance.md`; a test keeps it in step.",
        "",
        "Every verdict is `send` (with a UTC window), `defer` (until the first instant at which "
        "the step would be sent: the deferring rules lifted, inside the allowed hours, outside "
        "the consumer's stated inconvenient times, searched up to 14 days ahead) or `block`, "
        "and carries the codes of the rules that did not pass. A block wins over a defer. "
        "Each decision stores the ladder version and the versions of the packs in force.",
        "",
        "## Which packs apply",
        "",
        "A pack version applies to an account when the run's logical date lies in its "
        "effective dates and the account matches its country, region (`US-MA`), city (New "
        "York City's boroughs), product, and the user's role from `config/policy.yaml` "
        "(`collector`: a third-party debt collector, the default; `creditor`: a first-party "
        "creditor). A rule that `replaces` another stands in for it wherever both apply. "
        "Packs are checked when they load; a broken pack stops any plan, dispatch or explain.",
        "",
        "## Checks",
        "",
        "| check | what it does |",
        "| --- | --- |",
    ]
    lines += [f"| `{name}` | {text} |" for name, text in CHECK_TEXT.items()]
    lines += ["", "## Packs", ""]
    for pack in all_packs():
        lines += _pack_section(pack)
    lines += disclosures_section()
    lines += ["## Reason codes", "", "| code | meaning |", "| --- | --- |"]
    lines += [f"| `{code}` | {text} |" for code, text in REASON_CODES.items()]
    lines += [
        "",
        "## Time zones",
        "",
        "Candidate zones are the postal address's zones (by state, or by ZIP where a state is "
        "split) followed by the destination phone's zones (from its area code). Only instants "
        "allowed in every candidate zone are used; when no instant is, the step is blocked. "
        "When neither tells, every zone of the country is a candidate:",
        "",
    ]
    lines += [f"- {c}: {', '.join(z)}" for c, z in COUNTRY_FALLBACK_ZONES.items()]
    lines += [
        "",
        "Frequency days are local calendar days in the first candidate zone. The conversation's "
        "own day is day 1 of its 7-day "
        "pause. Contacts planned earlier the same day for the same account count toward the "
        "caps of its later actions. Assumed receipt of a validation notice skips Saturdays, "
        "Sundays and the legal public holidays of 5 U.S.C. 6103(a).",
        "",
        "## What counts as an attempt",
        "",
        "Each cap reads a call that never reached anyone from its own source:",
        "",
        "- Regulation F's 7 calls in 7 days (`us_reg_f.call_frequency_7in7`, and the California "
        "and house rules that take it as their measure) counts every call placed, answered or "
        "not, voicemail or not; a call that does not connect to the dialed number (`busy`, "
        "`not_in_service`) is not counted (12 CFR 1006.14(b)(3)(iii); the examples of its "
        "commentary to confirm).",
        "- Massachusetts' 2 in 7 and 2 in 30 (`us_ma.*`) count communications the creditor "
        "initiates. The Attorney General's guidance on 940 CMR 7.04(1)(f) treats a creditor "
        "“truly unable to reach the debtor or to leave a message” as not initiating one, so "
        "`busy`, `not_in_service`, `wrong_number` and texts that `failed` or were "
        "`undelivered` are not counted. An unanswered call (`no_answer`) is counted: the record "
        "does not tell whether a message could have been left. The guidance is read as quoted "
        "in Armata v. Target Corp., 480 Mass. 14 (2018): to confirm with counsel.",
        "- China's 6 unanswered attempts a day per number (`cn.unanswered_attempts_daily`) counts "
        "every call that did not reach the debtor, `busy` and `not_in_service` included. A call "
        "imported without a destination counts for each of the debtor's numbers.",
        "- A call whose outcome is not known yet (`attempted`: queued, or handed to an agent "
        "without a disposition) counts for every rule.",
        "",
        "## One person, several accounts",
        "",
        "One person with several accounts is one consumer. With `householding: true` (the "
        "default in `config/policy.yaml`) at most one contact per person per channel per local "
        "day goes out across their accounts (`core.household_one_per_day`): the planner judges "
        "a person's accounts together, highest priority first (most days past due, then highest "
        "balance, then account reference), and a lower-priority account's step on a channel "
        "already used that day defers to the next local day; the dispatcher checks again at "
        "send time against what the person's other accounts were sent. With "
        "`householding: false` each account is contacted on its own.",
        "",
        "Whatever that setting, a cap counts across the person's accounts only where the law "
        "counts it per consumer (`per=consumer`); elsewhere it counts per debt. The readings, "
        "each to confirm with counsel:",
        "",
        "| rule | counted | reading and source |",
        "| --- | --- | --- |",
        "| `us_reg_f.call_frequency_7in7`, `us_reg_f.call_after_conversation` | per debt | "
        "12 CFR 1006.14(b)(2) speaks of calls \"in connection with the collection of a "
        "particular debt\"; a consumer with several debts may receive the calls of each |",
        "| `us_ca.call_frequency_7in7`, `us_ca.call_after_conversation` | per debt | California "
        "takes Regulation F's measure (Cal. Civ. Code 1788.17) |",
        "| `core.call_frequency_7in7`, `core.call_after_conversation` | per debt | house "
        "defaults modelled on Regulation F |",
        "| `us_ma.personal_phone_2in7`, `us_ma.other_phone_2in30` | per debt | the parallel "
        "limits of 940 CMR 7.05(3)(d) and 209 CMR 18.16(1)(d) end \"for each debt\"; 940 CMR "
        "7.04(1)(f) is read the same way (its closing words not checked here); to confirm |",
        "| `us_nyc.contacts_3in7` (version 2024.10.01-r2) | per consumer | the 2024 amendments "
        "to 6 RCNY 5-77(b)(1) cap contacts with the consumer across all channels and debts "
        "unless collecting for several non-affiliated creditors (a practitioner summary, "
        "Sheppard Mullin, Aug. 2025); to confirm |",
        "| `us_nyc.contacts_3in7` (version 2026.09.01) | per debt | the amendments DCWP "
        "adopted in February 2026, in force 2026-09-01, apply the cap per account "
        "(a practitioner summary of the final rule, Americollect, Apr. 2026); to confirm |",
        "| `us_wa.communications_3_per_week`, `us_wa.workplace_1_per_week` | per consumer | "
        "RCW 19.16.250(13) limits communications with the debtor (three a week, one at work) "
        "with no \"for each debt\" (the Department of Financial Institutions' summary); to "
        "confirm |",
        "| `cn.unanswered_attempts_daily` | per consumer | the limit is per contact method "
        "(the number), whichever of the debtor's debts the call is about; to confirm |",
        "",
        "Citations for the China and United Kingdom packs and the effective dates of the state "
        "packs are given as the project's reading; have counsel confirm them for your book.",
        "",
    ]
    return "\n".join(lines)


def disclosures_section() -> list[str]:
    """The state disclosures on time-barred debt (policies.disclosures)."""
    from policies.disclosures import TIME_BARRED, TO_CONFIRM

    lines = [
        "## Disclosures on time-barred debt",
        "",
        "Every letter and email to a time-barred account (from its `limitation_date`) in these "
        "states carries the text below (`{{ time_barred_disclosure }}` where the template "
        "places it, else after the body; the template lint checks it); no SMS goes to such an "
        "account (`core.time_barred_disclosure`). The texts are the project's reading, to "
        "confirm with counsel.",
        "",
        "| disclosure | version | region | roles | citation | text |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for d in TIME_BARRED:
        lines.append(
            f"| `{d.disclosure_id}` | {d.version} | {d.region} | {', '.join(sorted(d.roles))} | "
            f"{d.citation} | {d.text} |"
        )
    lines += ["", "Known to require a disclosure, wording not checked here (none is sent yet):", ""]
    lines += [f"- {region}: {citation}" for region, citation in TO_CONFIRM]
    return lines + [""]


if __name__ == "__main__":
    print(render(), end="")
