"""The simulator's behavioural model: hidden state from the profile, answers to contacts,
promises, instalments and self-cure; determinism with common random numbers; p_true against the
simulated hazard process; config errors with YAML path and line."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import statistics
from decimal import Decimal
from pathlib import Path

import pytest

from outreach.simulation.behaviour import (
    Consumer,
    Contact,
    HashRandom,
    Profile,
    SimParams,
    SimParamsError,
    consumer_from,
    draw,
    instalment_payment,
    load_params,
    promise_payment,
    respond,
    self_cure,
)
from outreach.simulation.behaviour_config import PACKAGED, check_params_text

START = dt.date(2026, 3, 2)
CAUSES = [None] * 6 + ["forgot", "job_loss", "illness", "unwilling", "disputes_debt", "fraud"]


@pytest.fixture(scope="module")
def params() -> SimParams:
    return load_params(PACKAGED)


@pytest.fixture(scope="module")
def crowd(params: SimParams) -> dict[int, Consumer]:
    """4,000 consumers drawn once for the tests that count answers."""
    return draw(profiles(4000, seed=6), params, seed=6)


def profiles(n: int, seed: int = 1) -> list[Profile]:
    r = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        past_due = Decimal(f"{r.lognormvariate(6.5, 1.0):.2f}")
        out.append(
            Profile(
                account_id=i,
                balance=past_due * 3,
                past_due=past_due,
                dpd=1 + int(r.expovariate(1 / 60)),
                income=Decimal(r.choice([2500, 4000, 7000])) if r.random() < 0.2 else None,
                product=r.choice(["credit_card", "consumer_loan"]),
                country=r.choice(["US", "CN"]),
                region=None,
                cause=r.choice(CAUSES),
                segment=r.choice(["prime", "near_prime", "subprime"]),
            )
        )
    return out


def with_changes(params: SimParams, **changes: object) -> SimParams:
    """The parameters with some values replaced (dotted paths), validated again."""
    data = params.model_dump(mode="json")
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return SimParams.model_validate(data)


# --- determinism ---------------------------------------------------------------------------------


def test_the_same_seed_draws_the_same_consumers_and_another_seed_others(params: SimParams) -> None:
    people = profiles(200)
    first, again = draw(people, params, seed=7), draw(list(reversed(people)), params, seed=7)
    assert first == again
    other = draw(people, params, seed=8)
    assert sum(first[i].ability != other[i].ability for i in first) > 190


def test_answers_do_not_depend_on_the_order_of_the_calls(params: SimParams) -> None:
    consumers = draw(profiles(50), params, seed=3)
    contacts = [
        Contact(i, channel, f"{channel}_t", START + dt.timedelta(days=d), 18, offer=d % 2 == 0)
        for i in consumers
        for d in range(5)
        for channel in ("sms", "call", "letter")
    ]
    forward = {c: respond(consumers[c.account_id], c, params, 11) for c in contacts}
    shuffled = contacts[:]
    random.Random(5).shuffle(shuffled)
    backward = {c: respond(consumers[c.account_id], c, params, 11) for c in shuffled}
    assert forward == backward
    # Something happens, and not the same thing every time.
    kinds = {r.kind for answers in forward.values() for r in answers}
    assert {"none", "read", "answer"} <= kinds and len(kinds) >= 5
    # Payments and promises as well, pure.
    consumer = consumers[1]
    assert promise_payment(consumer, Decimal("50.00"), START, params, 1) == promise_payment(
        consumer, Decimal("50.00"), START, params, 1
    )
    assert instalment_payment(consumer, Decimal(80), START, params, 1) == instalment_payment(
        consumer, Decimal(80), START, params, 1
    )


def test_the_hash_generator_is_a_fair_reproducible_stream() -> None:
    key = hashlib.sha256(b"7:42:2026-03-02:sms:reminder").digest()
    one, two = HashRandom(key), HashRandom(key)
    assert one.uniforms(5) + one.uniforms(7) == [two.random() for _ in range(12)]
    values = HashRandom(key).uniforms(20000)
    assert all(0 <= v < 1 for v in values)
    assert statistics.mean(values) == pytest.approx(0.5, abs=0.01)
    assert statistics.pvariance(values) == pytest.approx(1 / 12, abs=0.003)
    gen = HashRandom(key)
    assert {gen.randint(1, 3) for _ in range(200)} == {1, 2, 3}
    assert {gen.pick(u, 2, 5) for u in (0.0, 0.2499, 0.25, 0.9999)} == {2, 3, 5}
    other = HashRandom(hashlib.sha256(b"7:42:2026-03-03:sms:reminder").digest())
    assert other.uniforms(4) != HashRandom(key).uniforms(4)


def test_two_treatments_share_their_random_numbers(params: SimParams) -> None:
    """Common random numbers: a stronger SMS effect never takes a payment away from anyone; it
    only adds payers."""
    stronger = with_changes(params, channels__sms__effect=2.0)
    people = profiles(1500)
    weak, strong = draw(people, params, seed=2), draw(people, stronger, seed=2)
    paid_weak, paid_strong = set(), set()
    for i in weak:
        contact = Contact(i, "sms", "reminder", START, 10)
        if any(r.kind == "pay" for r in respond(weak[i], contact, params, 9)):
            paid_weak.add(i)
        if any(r.kind == "pay" for r in respond(strong[i], contact, stronger, 9)):
            paid_strong.add(i)
    assert paid_weak and paid_weak <= paid_strong and len(paid_strong) > len(paid_weak)


# --- the hidden state ----------------------------------------------------------------------------


def test_p_true_rises_with_ability_and_with_willingness(params: SimParams) -> None:
    profile = profiles(1)[0]
    grid = [0.05, 0.2, 0.4, 0.6, 0.8, 0.95]
    table = [[consumer_from(profile, a, w, params).p_true for w in grid] for a in grid]
    for row in table:
        assert all(x < y for x, y in zip(row, row[1:], strict=False))
    for col in zip(*table, strict=True):
        assert all(x < y for x, y in zip(col, col[1:], strict=False))
    assert table[0][0] < 0.1 < 0.5 < table[-1][-1]


def test_causes_move_ability_and_willingness_the_documented_way(params: SimParams) -> None:
    base = profiles(1)[0]

    def mean(field: str, cause: str | None) -> float:
        people = [Profile(**{**base.__dict__, "account_id": i, "cause": cause}) for i in range(400)]
        return statistics.mean(getattr(c, field) for c in draw(people, params, seed=4).values())

    assert mean("ability", "job_loss") < mean("ability", None) < mean("ability", "forgot")
    assert mean("willingness", "unwilling") < mean("willingness", None)
    assert mean("willingness", "fraud") < mean("willingness", None)
    assert mean("dispute_propensity", "disputes_debt") > 10 * mean("dispute_propensity", None)
    assert mean("self_cure_hazard", "forgot") > 2 * mean("self_cure_hazard", None)
    assert mean("p_true", "forgot") > mean("p_true", None) > mean("p_true", "unwilling")


def test_a_debt_large_against_the_income_lowers_ability(params: SimParams) -> None:
    base = profiles(1)[0]
    small = Profile(**{**base.__dict__, "past_due": Decimal(300), "income": Decimal(5000)})
    large = Profile(**{**base.__dict__, "past_due": Decimal(30000), "income": Decimal(5000)})
    drawn = draw([small], params, 1)[base.account_id], draw([large], params, 1)[base.account_id]
    assert drawn[0].ability > drawn[1].ability
    # The same hidden noise for the same account and seed: only the profile differs.
    assert drawn[0].willingness == drawn[1].willingness


def test_the_hidden_noise_is_what_no_observable_explains(params: SimParams) -> None:
    base = profiles(1)[0]
    twins = [Profile(**{**base.__dict__, "account_id": i}) for i in range(300)]
    spread = statistics.pstdev(c.p_true for c in draw(twins, params, 5).values())
    quiet = with_changes(params, hidden__hidden_noise_sd=0.0)
    assert spread > 0.02
    assert statistics.pstdev(c.p_true for c in draw(twins, quiet, 5).values()) == 0


# --- one contact ---------------------------------------------------------------------------------


def share(params: SimParams, consumers: dict[int, Consumer], kinds: set[str], **contact) -> float:
    hits = 0
    for i, consumer in consumers.items():
        answers = respond(consumer, Contact(account_id=i, **contact), params, 21)
        hits += any(r.kind in kinds for r in answers)
    return hits / len(consumers)


def test_channels_and_hours_reach_people_as_documented(
    params: SimParams, crowd: dict[int, Consumer]
) -> None:
    consumers = crowd
    sms = share(params, consumers, {"read"}, channel="sms", kind="s", day=START, local_hour=10)
    email = share(params, consumers, {"read"}, channel="email", kind="e", day=START, local_hour=10)
    morning = share(params, consumers, {"answer"}, channel="call", kind="c", day=START,
                    local_hour=10)  # fmt: skip
    evening = share(params, consumers, {"answer"}, channel="call", kind="c", day=START,
                    local_hour=19)  # fmt: skip
    assert email < sms - 0.1
    assert evening > morning * 1.4
    wrong = share(params, consumers, {"wrong_party"}, channel="call", kind="c", day=START,
                  local_hour=19)  # fmt: skip
    assert 0.03 < wrong < 0.2


def test_letters_are_read_days_later_and_nothing_happens_before_the_contact(
    params: SimParams,
) -> None:
    consumers = draw(profiles(400), params, seed=6)
    delays = []
    for i, consumer in consumers.items():
        for r in respond(consumer, Contact(i, "letter", "l1", START), params, 3):
            assert r.day >= START
            if r.kind == "read":
                delays.append((r.day - START).days)
            if r.kind == "promise":
                assert r.promise_due is not None and r.promise_due > r.day
                assert r.amount is not None and Decimal("0.01") <= r.amount <= consumer.owed
            if r.kind == "pay":
                assert r.amount is not None and Decimal("0.01") <= r.amount <= consumer.owed
    lo, hi = params.channels["letter"].read_delay_days
    assert delays and min(delays) >= lo and max(delays) <= hi and lo >= 2


def test_a_stronger_channel_effect_brings_more_payments(params: SimParams) -> None:
    stronger = with_changes(params, channels__call__effect=3.0)
    people = profiles(5000, seed=9)
    for_params = draw(people, params, 12)
    for_stronger = draw(people, stronger, 12)

    def payments(p: SimParams, consumers: dict[int, Consumer]) -> int:
        return sum(
            any(r.kind == "pay" for r in respond(c, Contact(i, "call", "c", START, 18), p, 4))
            for i, c in consumers.items()
        )

    assert payments(stronger, for_stronger) > 1.3 * payments(params, for_params)


def test_a_stage_effect_is_a_parameter_too(params: SimParams, crowd: dict[int, Consumer]) -> None:
    legal = with_changes(params, stages={"legal_notice": 2.0})
    consumers = crowd
    plain = share(params, consumers, {"pay", "promise"}, channel="sms", kind="s", day=START,
                  local_hour=10, stage="legal_notice")  # fmt: skip
    stressed = share(legal, consumers, {"pay", "promise"}, channel="sms", kind="s", day=START,
                     local_hour=10, stage="legal_notice")  # fmt: skip
    assert stressed > 1.5 * plain


def test_offers_are_accepted_more_by_people_in_hardship(params: SimParams) -> None:
    base = profiles(1)[0]

    def accepted(cause: str | None, offer: bool) -> float:
        people = [
            Profile(**{**base.__dict__, "account_id": i, "cause": cause}) for i in range(2000)
        ]
        return share(params, draw(people, params, 8), {"accept_offer"}, channel="sms",
                     kind="offer", day=START, local_hour=10, offer=offer)  # fmt: skip

    assert accepted(None, offer=False) == 0
    assert accepted("job_loss", offer=True) > 1.3 * accepted(None, offer=True) > 0


def test_many_recent_contacts_bring_more_stops(
    params: SimParams, crowd: dict[int, Consumer]
) -> None:
    consumers = crowd
    fresh = share(params, consumers, {"stop"}, channel="sms", kind="s", day=START, local_hour=10)
    tired = share(params, consumers, {"stop"}, channel="sms", kind="s", day=START, local_hour=10,
                  recent_contacts=8)  # fmt: skip
    assert tired > 1.8 * fresh > 0


# --- promises, instalments, self-cure ------------------------------------------------------------


def test_promises_and_instalments_are_kept_more_by_the_willing_and_able(params: SimParams) -> None:
    profile = profiles(1)[0]
    low, high = consumer_from(profile, 0.2, 0.2, params), consumer_from(profile, 0.8, 0.8, params)

    def kept(consumer: Consumer, pay: object) -> float:
        days = [START + dt.timedelta(days=d) for d in range(2000)]
        return sum(pay(consumer, Decimal(100), d, params, 1) is not None for d in days) / 2000  # type: ignore[operator]

    assert kept(high, promise_payment) > kept(low, promise_payment) + 0.2
    assert kept(high, instalment_payment) > kept(low, instalment_payment) + 0.2
    for d in range(200):
        due = START + dt.timedelta(days=d)
        paid = promise_payment(high, Decimal(100), due, params, 2)
        if paid is not None:
            amount, day = paid
            assert Decimal("0.01") <= amount <= Decimal(100)
            lo, hi = params.promises.pay_offset_days
            assert lo <= (day - due).days <= hi


def test_self_cure_is_a_small_daily_hazard_higher_for_those_who_forgot(params: SimParams) -> None:
    base = profiles(1)[0]
    forgot = consumer_from(Profile(**{**base.__dict__, "cause": "forgot"}), 0.6, 0.6, params)
    other = consumer_from(Profile(**{**base.__dict__, "cause": "other"}), 0.6, 0.6, params)
    days = [START + dt.timedelta(days=d) for d in range(20000)]
    cures = [sum(self_cure(c, d, params, 3) is not None for d in days) for c in (forgot, other)]
    assert 0 < cures[1] < cures[0]
    assert cures[0] / 20000 == pytest.approx(forgot.self_cure_hazard, rel=0.25)
    cure = next(r for d in days if (r := self_cure(forgot, d, params, 3)) is not None)
    assert cure.kind == "pay" and cure.amount is not None and cure.amount > 0


# --- p_true --------------------------------------------------------------------------------------


def pays_within_horizon(consumer: Consumer, params: SimParams, seed: int) -> bool:
    """The default treatment run directly: each day each default contact is made with
    probability per_week/7 until any outcome; a payment counts when it lands before day H."""
    h = params.horizon_days
    rng = random.Random(f"{seed}:{consumer.account_id}")
    end = START + dt.timedelta(days=h)
    active = True
    for t in range(h):
        day = START + dt.timedelta(days=t)
        if self_cure(consumer, day, params, seed) is not None:
            return True
        if not active:
            continue
        for n, treatment in enumerate(params.default_treatment):
            if rng.random() >= treatment.per_week / 7:
                continue
            contact = Contact(consumer.account_id, treatment.channel, f"default{n}", day,
                              treatment.local_hour, treatment.offer, treatment.stage)  # fmt: skip
            for r in respond(consumer, contact, params, seed):
                if r.kind in ("none", "read", "answer", "wrong_party"):
                    continue
                active = False
                if r.kind == "pay" and r.day < end:
                    return True
                if r.kind == "promise":
                    assert r.amount is not None and r.promise_due is not None
                    paid = promise_payment(consumer, r.amount, r.promise_due, params, seed)
                    if paid is not None and paid[1] < end:
                        return True
    return False


def test_p_true_is_the_frequency_of_paying_within_the_horizon(params: SimParams) -> None:
    consumers = list(draw(profiles(3000, seed=13), params, seed=13).values())
    paid = [pays_within_horizon(c, params, seed=13) for c in consumers]
    expected = statistics.mean(c.p_true for c in consumers)
    observed = statistics.mean(paid)
    se = (expected * (1 - expected) / len(consumers)) ** 0.5
    assert abs(observed - expected) < 3 * se
    # And by band of p_true: calibrated, not only on average.
    ranked = sorted(zip(consumers, paid, strict=True), key=lambda cp: cp[0].p_true)
    for band in (ranked[:1000], ranked[1000:2000], ranked[2000:]):
        e = statistics.mean(c.p_true for c, _ in band)
        o = statistics.mean(p for _, p in band)
        assert abs(o - e) < 3 * (e * (1 - e) / len(band)) ** 0.5 + 0.005
    assert statistics.mean(p for _, p in ranked[2000:]) > 2 * statistics.mean(
        p for _, p in ranked[:1000]
    )


def test_one_consumer_pays_as_often_as_p_true_says(params: SimParams) -> None:
    profile = profiles(1)[0]
    consumer = consumer_from(profile, 0.55, 0.6, params)
    paid = statistics.mean(pays_within_horizon(consumer, params, seed) for seed in range(2000))
    assert paid == pytest.approx(consumer.p_true, abs=3 * (0.25 / 2000) ** 0.5)


# --- configuration -------------------------------------------------------------------------------


def errors_of(text: str) -> list[str]:
    model, errors = check_params_text(text)
    assert model is None
    return [str(e) for e in errors]


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_project_file_validates_and_the_knob_names_another(
    params: SimParams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert params.horizon_days == 30 and set(params.channels) >= {"sms", "call", "letter"}
    other = tmp_path / "sim.yaml"
    other.write_text(PACKAGED.read_text().replace("horizon_days: 30", "horizon_days: 45"))
    monkeypatch.setenv("OUTREACH_SIMULATION", str(other))
    assert load_params().horizon_days == 45
    monkeypatch.setenv("OUTREACH_SIMULATION", str(tmp_path / "absent.yaml"))
    with pytest.raises(SimParamsError):
        load_params(tmp_path / "absent.yaml")


def test_a_probability_out_of_range_names_its_yaml_path_and_line() -> None:
    text = PACKAGED.read_text().replace("    reach: 0.30\n", "    reach: 1.30\n", 1)
    errors = errors_of(text)
    assert errors == [f"channels.email.reach (line {line_of(text, 'reach: 1.30')}): "
                      "Input should be less than or equal to 1"]  # fmt: skip


def test_weights_that_do_not_sum_to_one_are_refused_with_their_line() -> None:
    text = PACKAGED.read_text().replace("{share: 0.5, weight: 0.40}", "{share: 0.5, weight: 0.5}")
    (error,) = errors_of(text)
    # The line of the list (its first item), as for every list in every config file.
    assert error.startswith(f"payment.part_shares (line {line_of(text, '{share: 0.1')}):")
    assert "sum to 1.1" in error


def test_unknown_keys_causes_and_channels_are_named() -> None:
    text = PACKAGED.read_text()
    typo = text.replace("  fatigue_per_contact:", "  fatigue_per_contacts:")
    missing, error = errors_of(typo)
    assert missing == f"responses.fatigue_per_contact (line {line_of(typo, '  pay: 0.12')}): " \
        "Field required"  # fmt: skip
    assert error.startswith(f"responses.fatigue_per_contacts (line "
                            f"{line_of(typo, 'fatigue_per_contacts')}): unknown key")  # fmt: skip
    assert "fatigue_per_contact," in error  # the known keys are listed
    cause = text.replace("cause_factor: {forgot: 4.0}", "cause_factor: {forgetful: 4.0}")
    (error,) = errors_of(cause)
    assert error.startswith(f"self_cure.cause_factor.forgetful (line "
                            f"{line_of(cause, 'forgetful')}): unknown")  # fmt: skip
    pigeon = text.replace("{channel: email, per_week: 1", "{channel: pigeon, per_week: 1")
    (error,) = errors_of(pigeon)
    assert error.startswith(f"default_treatment[1].channel (line {line_of(pigeon, 'pigeon')})")


def test_overlapping_hours_and_reversed_ranges_are_refused() -> None:
    text = PACKAGED.read_text()
    overlap = text.replace("{from_hour: 12, to_hour: 17", "{from_hour: 11, to_hour: 17")
    (error,) = errors_of(overlap)
    assert error.startswith(f"channels.call.hours[1] (line {line_of(overlap, 'from_hour: 11')})")
    reversed_ = text.replace("delay_days: [2, 10]", "delay_days: [10, 2]")
    (error,) = errors_of(reversed_)
    assert error.startswith(f"promises.delay_days (line {line_of(reversed_, '[10, 2]')})")


# --- a treatment with a larger true effect -------------------------------------------------------


def recovery_of_a_month(params: SimParams, people: list[Profile], seed: int) -> Decimal:
    """A plain ladder run directly against the model (no database): an SMS every 4 days and a
    call every 7 days at 18:00 until the consumer pays in full or answers with hardship, a
    dispute or a stop; a promise pauses it until it is kept or broken. Collected / past due."""
    consumers = draw(people, params, seed)
    collected, owed_at_start = Decimal(0), Decimal(0)
    for profile in people:
        consumer = consumers[profile.account_id]
        owed = profile.past_due
        owed_at_start += owed
        paused_until: dt.date | None = None
        stopped = False
        recent: list[dt.date] = []
        for t in range(30):
            day = START + dt.timedelta(days=t)
            payments: list[Decimal] = []
            cure = self_cure(consumer, day, params, seed)
            if cure is not None and cure.amount is not None:
                payments.append(cure.amount)
            due = [("sms", 10)] if t % 4 == 0 else []
            due += [("call", 18)] if t % 7 == 3 else []
            for channel, hour in due:
                if stopped or (paused_until is not None and day <= paused_until):
                    break
                contact = Contact(profile.account_id, channel, f"{channel}_{t}", day, hour,
                                  recent_contacts=sum(1 for d in recent if (day - d).days <= 7))  # fmt: skip
                recent.append(day)
                for r in respond(consumer, contact, params, seed):
                    if r.kind == "pay" and r.amount is not None:
                        payments.append(r.amount)
                    elif r.kind in ("stop", "dispute", "hardship"):
                        stopped = True
                    elif r.kind == "promise" and r.amount and r.promise_due:
                        paused_until = r.promise_due
                        paid = promise_payment(consumer, r.amount, r.promise_due, params, seed)
                        if paid is not None and paid[1] < START + dt.timedelta(days=30):
                            payments.append(paid[0])
            for amount in payments:
                amount = min(amount, owed)
                collected, owed = collected + amount, owed - amount
            if owed == 0:
                break
    return collected / owed_at_start


def test_a_larger_true_effect_shows_a_larger_measured_recovery(params: SimParams) -> None:
    people = profiles(1200, seed=17)
    plain = recovery_of_a_month(params, people, seed=17)
    stronger = recovery_of_a_month(with_changes(params, channels__call__effect=3.0), people, 17)
    weaker = recovery_of_a_month(with_changes(params, channels__call__effect=1.0), people, 17)
    assert weaker < plain < stronger
    assert stronger - weaker > Decimal("0.02")


def test_the_hidden_noise_leaves_a_model_of_the_observables_within_reach(
    params: SimParams,
) -> None:
    """A plain logistic model of what an account shows (days past due, amounts, stated income,
    product, country, segment, cause), trained on half a cohort, comes within 0.03 AUC of p_true
    on the other half: the hidden noise is modest. Outcomes are drawn with probability p_true
    (the test above shows that is the frequency of paying within the horizon)."""
    np = pytest.importorskip("numpy")
    linear_model = pytest.importorskip("sklearn.linear_model")
    metrics = pytest.importorskip("sklearn.metrics")
    people = profiles(6000, seed=23)
    consumers = draw(people, params, 23)
    rng = random.Random(23)
    p_true = np.array([consumers[p.account_id].p_true for p in people])
    paid = np.array([rng.random() < p for p in p_true])
    causes = sorted({str(c) for c in CAUSES})

    def shown(p: Profile) -> list[float]:
        owed = float(p.past_due)
        return [
            p.dpd / 30, np.log(owed), p.income is not None,
            np.log(owed / float(p.income)) if p.income else 0.0,
            p.product == "consumer_loan", p.country == "CN",
            p.segment == "prime", p.segment == "subprime",
            *(str(p.cause) == c for c in causes),
        ]  # fmt: skip

    shown_rows = np.array([shown(p) for p in people], dtype=float)
    half = len(people) // 2
    model = linear_model.LogisticRegression(max_iter=2000).fit(shown_rows[:half], paid[:half])
    predicted = model.predict_proba(shown_rows[half:])[:, 1]
    best = metrics.roc_auc_score(paid[half:], p_true[half:])
    achieved = metrics.roc_auc_score(paid[half:], predicted)
    assert 0.7 < best < 0.95  # a real signal, and not a trivial one
    assert best - 0.03 < achieved <= best + 0.01
