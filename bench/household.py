"""Count same-person, same-channel, same-day contacts in a generated portfolio's plan.

    python bench/household.py --accounts 2000 [--days 3] [--householding false]

Generates and imports a portfolio (seed 11, as of 2026-11-23) into a scratch SQLite database,
plans each day and sends what the plan sends through the outbox (logical clock, every channel
as an outbox), then counts, per channel, the contacts sent to a person who was sent another
contact on the same channel the same day through another of their accounts (issue 13 item 5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AS_OF = dt.date(2026, 11, 23)
SEED = 11
CHANNELS = ("letter", "sms", "email", "call")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--accounts", type=int, default=2000)
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--householding", choices=("true", "false"), default=None,
                   help="write a policy file with this setting (default: config/policy.yaml)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="household-bench-"))
    if args.householding is not None:
        policy = work / "policy.yaml"
        policy.write_text(f"role: collector\nhouseholding: {args.householding}\n")
        os.environ["OUTREACH_POLICY"] = str(policy)

    from sqlalchemy import text

    from contact_channels.outbox import OutboxChannel
    from outreach.dispatch.dispatcher import dispatch_range
    from outreach.planning.ladder import load_ladder
    from outreach.planning.planner import iter_plan
    from outreach.portfolio.generator import generate
    from outreach.portfolio.importer import import_file
    from outreach.settings import ladder_path
    from outreach.storage.db import make_engine, migrate

    url = f"sqlite:///{work / 'app.db'}"
    migrate(url)
    engine = make_engine(url)
    portfolio = work / "portfolio.jsonl"
    generate(args.accounts, SEED, portfolio, AS_OF)
    import_file(portfolio, engine=engine, rejects_path=work / "rejects.jsonl")
    ladder = load_ladder(ladder_path())
    with engine.connect() as conn:
        people = conn.execute(text(
            "SELECT COUNT(*) FROM (SELECT person_id FROM account GROUP BY person_id "
            "HAVING COUNT(*) > 1) t")).scalar()
    print(f"{args.accounts} accounts, {people} people with several accounts")
    for n in range(args.days):
        day = AS_OF + dt.timedelta(days=n)
        for _ in iter_plan(engine, ladder, day, 1000):
            pass
        for channel in CHANNELS:
            outbox = OutboxChannel(channel, f"sqlite:///{work / 'outbox.db'}")
            dispatch_range(engine, day, channel, 0, 10**12, clock="logical",
                           channel_impl=outbox)
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT a.person_id, c.channel, COUNT(*) FROM contact c "
                "JOIN account a ON a.id = c.account_id WHERE c.plan_date = :d "
                "AND c.state = 'sent' GROUP BY a.person_id, c.channel"), {"d": day}).all()
        extra: Counter[str] = Counter()
        sent: Counter[str] = Counter()
        for _person, channel, count in rows:
            sent[channel] += count
            extra[channel] += count - 1
        print(f"{day}: sent {dict(sent)}; a second (or later) contact to the same person on "
              f"the same channel and day: {dict(extra)} (total {sum(extra.values())})")


if __name__ == "__main__":
    main()
