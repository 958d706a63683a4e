"""Render the rule packs and reason codes as Markdown, so docs/compliance.md never drifts."""

from __future__ import annotations

from policies.codes import REASON_CODES
from policies.packs import COUNTRY_FALLBACK_ZONES, PACKS


def render() -> str:
    lines = [
        "# Compliance rules and reason codes",
        "",
        "Generated from `policies/packs.py` and `policies/codes.py` by "
        "`python -m policies.docs > docs/compliance.md`; a test keeps it in step.",
        "",
        "Every verdict is `send` (with a UTC window), `defer` (until an instant) or `block`, "
        "and carries the codes of the rules that did not pass. A block wins over a defer. "
        "Each decision stores the ladder version and the pack versions in force.",
        "",
        "## Packs",
        "",
    ]
    for pack in PACKS:
        where = "every account" if pack.countries is None else ", ".join(sorted(pack.countries))
        lines += [f"### `{pack.name}` version {pack.version} (applies to {where})", "",
                  "| rule | channels | parameters | citation | replaces |",
                  "| --- | --- | --- | --- | --- |"]
        for r in pack.rules:
            channels = "all" if r.channels is None else ", ".join(sorted(r.channels))
            params = ", ".join(f"{k}={v}" for k, v in r.params.items()) or "-"
            lines.append(f"| `{r.rule_id}` | {channels} | {params} | {r.citation} | "
                         f"{', '.join(r.supersedes) or '-'} |")
        lines.append("")
    lines += ["## Reason codes", "", "| code | meaning |", "| --- | --- |"]
    lines += [f"| `{code}` | {text} |" for code, text in REASON_CODES.items()]
    lines += ["", "## Time zones", "",
              "Candidate zones are the postal address's zones followed by the destination "
              "phone's zones (from its area code). Only instants allowed in every candidate zone "
              "are used; when no instant is, the step is blocked. When neither tells, every zone "
              "of the country is a candidate:", ""]
    lines += [f"- {c}: {', '.join(z)}" for c, z in COUNTRY_FALLBACK_ZONES.items()]
    lines += ["", "Call-frequency days are local calendar days in the first candidate zone. "
              "Attempts whose outcome is `busy` or `not_in_service` are not counted; unanswered "
              "calls and voicemails are. The conversation's own day is day 1 of its 7-day pause.",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
