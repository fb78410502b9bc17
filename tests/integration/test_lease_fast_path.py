"""The lease script's fast path (one read, one write of the window hash) does what its general path does.

The same messages go to two budget instances: one through ``lua/lease.lua`` as shipped, one
through the same script with its fast path switched off (every message takes the general
path, the script as it was before the fast path). Replies and window hashes must agree, up
to the clock (a lease's expiry and a tombstone's time are read from the server's clock).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from costrouter.budget.lease_message import LeaseMessage, parse_reply
from costrouter.budget.redis import script_source
from costrouter.budget.store import top_key
from costrouter.config.budget_ref import BudgetRef, budget_key
from costrouter.config.budgets import StoreConfig
from tests.integration.budget_backends import ref

FAST_CHECK = "if state and okey == wkey and "
ESTIMATE = 400


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def _scripts(client: redis.Redis) -> tuple[str, str]:
    source = script_source("lease")
    assert source.count(FAST_CHECK) == 1
    return client.script_load(source), client.script_load(source.replace(FAST_CHECK, "if false and "))


def _normal(fields: dict[str, str]) -> dict[str, str]:
    """A window hash without the clock: a lease's expiry, a tombstone's time, the earliest expiry."""
    out = dict(fields)
    for name, value in fields.items():
        if name == "lx":
            out[name] = "(time)"
        elif name.startswith("l:"):
            parts = value.split("|")
            parts[2] = "(time)"
            out[name] = "|".join(parts)
    return out


class Pair:
    """One budget instance per script variant; each message goes to both."""

    def __init__(self, client: redis.Redis, budget: BudgetRef, *, top: bool = False) -> None:
        self.client = client
        self.fast, self.general = _scripts(client)
        self.budget = budget
        self.top = top
        self.prefixes = (f"f{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}")
        self.config = StoreConfig(backend="redis", key_prefix="x", top_index=top, journal_dir=None)
        self.seq = 0
        self.window = ""

    def send(self, *, charge: int = 0, inflight: int = 0, need: int = 0, **kwargs: object) -> tuple[object, ...]:
        """Send one message to both; returns the (shared) reply without the clock."""
        self.seq += 1
        message = LeaseMessage(
            "owner1",
            self.window,
            self.seq,
            charge,
            inflight,
            need,
            bool(kwargs.get("enforce", True)),
            ESTIMATE,
            give_back=bool(kwargs.get("give_back", False)),
        )
        return self.resend(message)

    def resend(self, message: LeaseMessage) -> tuple[object, ...]:
        replies = []
        hashes = []
        for prefix, sha in zip(self.prefixes, (self.fast, self.general), strict=True):
            base = budget_key(prefix, self.budget)
            keys = [f"{base}:c"]
            if self.top:
                keys.append(top_key(prefix, self.budget))
            raw = self.client.evalsha(sha, len(keys), *keys, *message.args(base, self.budget, self.config))
            reply = parse_reply(self.budget, raw)
            replies.append(reply)
            windows = sorted(k for k in self.client.scan_iter(match=base.replace("[", "\\[") + ":w:*"))
            hashes.append(
                [(k.removeprefix(base), _normal(self.client.hgetall(k)), self.client.ttl(k) > 0) for k in windows]
            )
        assert replies[0] == replies[1]
        assert hashes[0] == hashes[1]
        if self.top:
            tops = [
                self.client.zrange(top_key(p, self.budget) + ":" + replies[0].window, 0, -1, withscores=True)
                for p in self.prefixes
            ]
            assert tops[0] == tops[1]
        self.window = replies[0].window
        self.last = message
        return (replies[0].granted, replies[0].hold, replies[0].spent, replies[0].held, replies[0].replayed)


def test_a_one_call_session_open_and_close(client: redis.Redis) -> None:
    pair = Pair(client, ref(1_000_000))
    assert pair.send(need=ESTIMATE) == (True, ESTIMATE + 16 * ESTIMATE, 0, ESTIMATE + 16 * ESTIMATE, False)
    assert pair.send(charge=250, give_back=True) == (True, 0, 250, 0, False)
    assert pair.resend(pair.last)[-1] is True  # the close resent: answered, not applied again
    assert pair.send(need=ESTIMATE)[0] is True  # opened again


def test_refills_alerts_and_the_top_index(client: redis.Redis) -> None:
    pair = Pair(client, ref(20_000, alert_at=(0.5, 0.8)), top=True)
    pair.send(need=ESTIMATE)
    for _ in range(8):
        pair.send(charge=1500, inflight=ESTIMATE, need=ESTIMATE)
    pair.resend(pair.last)
    pair.send(charge=3000, give_back=True)


def test_near_the_limit_and_refused(client: redis.Redis) -> None:
    pair = Pair(client, ref(2_000))
    assert pair.send(need=1_500)[0] is True
    assert pair.send(inflight=1_500, need=1_000)[0] is False  # refused: the lease keeps what is in flight
    assert pair.send(inflight=1_500, need=1_000, enforce=False)[1] == 2_500  # not enforced: held anyway
    pair.send(charge=2_500, give_back=True)
    assert pair.send(need=1)[0] is False


def test_a_fixed_window_sets_the_hash_expiry(client: redis.Redis) -> None:
    pair = Pair(client, ref(1_000_000, window="1h"))
    pair.send(need=ESTIMATE)
    pair.send(charge=300, inflight=ESTIMATE, need=ESTIMATE)
    pair.send(charge=300, give_back=True)


def test_a_replay_answers_the_grant_its_message_had(client: redis.Redis) -> None:
    """A message resent after a timeout may have run: its answer must say what the first send was told."""
    pair = Pair(client, ref(2_000))
    granted, hold, _, _, replayed = pair.send(need=1_500)
    assert (granted, replayed) == (True, False)
    assert pair.resend(pair.last) == (True, hold, 0, hold, True)
    assert pair.send(inflight=1_500, need=1_000)[0] is False
    assert pair.resend(pair.last) == (False, 1_500, 0, 1_500, True)  # refused: only in flight is held
    assert pair.send(charge=1_500, give_back=True)[:2] == (True, 0)
    assert pair.send(need=1_000)[:2] == (False, 0)  # refused with nothing in flight: no hold at all
    assert pair.resend(pair.last) == (False, 0, 1_500, 0, True)
    assert pair.send(need=1_000, enforce=False)[:2] == (False, 1_000)  # not enforced: held anyway
    assert pair.resend(pair.last)[:2] == (True, 1_000)  # the replay cannot tell; the call is counted either way
