"""``costrouter budget migrate``: carry the unversioned 0.2 Redis layout over to the current one.

The 0.2 layout keeps its keys right after the user's prefix (``{prefix:name:scope:id}:calls``,
``:expiry``, ``:w:<window>``, ``{prefix:top:name}:<window>``, ``{prefix:token-ratios}``,
``{prefix:epoch}``) and its amounts in micro-dollars; the current one puts
:data:`~costrouter.config.budget_ref.KEY_LAYOUT_VERSION` after the prefix and counts
:data:`~costrouter.money.UNITS_PER_USD` units a dollar. A migration:

1. copies the 0.2 epoch to the new layout's epoch key (a router's journal directory remembers it,
   so an upgraded router does not take the new key for a store that lost its data), then
   **fences** the 0.2 layout: its epoch key and lost flag become ``migrating:<run>``, so every
   0.2 process refuses its later calls with its ``StoreLostError`` (fail_closed) at its next epoch
   check (a new connection, or within 30 s), and a 0.2 process that starts refuses at once;
2. waits for that check (``fence_wait``), then, one budget instance at a time, **stages** its
   0.2 keys (renames them under the same hash tag, ``lua/migrate_stage.lua``) and **applies**
   them to the new layout in one script (``lua/migrate_apply.lua``): amounts times
   :data:`FACTOR`, counters added to, call records, live holds (with their expiry), lease
   fields and alert flags kept where the new layout has them already, and a marker key of the
   staged snapshot, so a run that stopped between the apply and the deletion of the staged keys
   applies nothing twice when run again; the top index and the token ratios go the same way;
3. marks the 0.2 layout ``migrated:<run>`` (its processes still refuse; new routers start).

A 0.2 process that still writes after staging (a call in flight, or ``on_store_lost:
fail_open``) writes fresh 0.2 keys: a later run carries them over, added to what is there.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from costrouter.budget import redis_clients
from costrouter.budget.epoch_watch import EPOCH_CHECK_SECONDS
from costrouter.budget.layout import MIGRATED, MIGRATING, legacy_epoch_keys
from costrouter.budget.redis import script_source
from costrouter.budget.store import epoch_keys
from costrouter.config.budget_ref import KEY_LAYOUT_VERSION, layout_prefix
from costrouter.money import LEGACY_UNITS_PER_USD, MAX_COUNTER_UNITS, UNITS_PER_USD

FACTOR: Final = UNITS_PER_USD // LEGACY_UNITS_PER_USD
"""New units per 0.2 unit (micro-dollar)."""

FENCE_WAIT_SECONDS: Final = EPOCH_CHECK_SECONDS + 5
"""How long a migration waits after fencing for every running 0.2 process to check its epoch."""

MARKER_TTL_SECONDS: Final = 30 * 86400
"""How long the marker of an applied snapshot is kept (a staged snapshot left longer is applied again)."""

_SCOPES: Final = frozenset({"session", "user", "team", "tag", "global"})
_STAGE: Final = ":m:"
_MARKER: Final = ":mig:"


def scale(amount: str | bytes) -> str:
    """A 0.2 amount (micro-dollars, as text) in the current unit, saturated like the counters."""
    value = int(Decimal(_text(amount))) * FACTOR
    return str(max(-MAX_COUNTER_UNITS, min(MAX_COUNTER_UNITS, value)))


_RECORD_AMOUNTS: Final = (1, 5, 6, 7, 8, 9)
"""Fields of a 0.2 call record that are amounts: hold, spent0, held0, charged, spent1, held1."""


def convert_record(raw: str) -> str:
    """A 0.2 call record (``state|hold|window|window_expiry|granted|spent0|...``) in the new unit."""
    parts = raw.split("|", 10)
    if len(parts) != 11:
        message = f"a 0.2 call record has 11 fields, not {len(parts)}: {raw!r}"
        raise ValueError(message)
    for i in _RECORD_AMOUNTS:
        parts[i] = scale(parts[i] or "0")
    return "|".join(parts)


def convert_lease(raw: str) -> str:
    """A 0.2 lease field (``state|hold|expiry|seq``) in the new unit."""
    parts = raw.split("|")
    if len(parts) != 4:
        message = f"a 0.2 lease field has 4 parts, not {len(parts)}: {raw!r}"
        raise ValueError(message)
    parts[1] = scale(parts[1] or "0")
    return "|".join(parts)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True)
class LegacyGroup:
    """The 0.2 keys of one budget instance, top index or token-ratio hash (one hash tag)."""

    kind: str
    """``instance``, ``top`` or ``ratios``."""
    tag: str
    """The 0.2 hash tag, ``{prefix:...}``."""
    staged: str | None
    """The run id that staged these keys, ``None`` for live 0.2 keys."""


def parse_key(prefix: str, key: str) -> tuple[LegacyGroup, str] | None:
    """The group of a 0.2 key and the key's suffix after its tag (and stage); ``None``: not a 0.2 key."""
    if not key.startswith("{" + prefix + ":") or "}" not in key:
        return None
    end = key.index("}") + 1
    tag, suffix = key[:end], key[end:]
    parts = tag[len(prefix) + 2 : -1].split(":")
    if parts == ["token-ratios"]:
        kind = "ratios"
    elif len(parts) == 2 and parts[0] == "top":
        kind = "top"
    elif len(parts) == 3 and parts[1] in _SCOPES:
        kind = "instance"
    else:
        return None  # the epoch, the current layout ({prefix:v2:...}), or another prefix's keys
    staged = None
    if suffix.startswith(_STAGE):
        staged, _, rest = suffix[len(_STAGE) :].partition(":")
        suffix = ":" + rest if rest else ""
    elif suffix.startswith(_MARKER):
        return None
    return LegacyGroup(kind, tag, staged), suffix


def new_tag(prefix: str, tag: str) -> str:
    """The current layout's hash tag of a 0.2 one: ``{prefix:a:b}`` -> ``{prefix:v2:a:b}``."""
    return "{" + layout_prefix(prefix) + tag[len(prefix) + 1 :]


@dataclass
class MigrationSummary:
    """What a migration found (amounts in 0.2 micro-dollars) and did."""

    instances: int = 0
    windows: int = 0
    spent_legacy: int = 0
    held_legacy: int = 0
    live_holds: int = 0
    records: int = 0
    leases: int = 0
    alert_flags: int = 0
    top_indexes: int = 0
    token_ratios: int = 0
    applied: int = 0
    already_applied: int = 0
    resumed: int = 0
    fenced: str = ""
    epoch: str = ""
    problems: list[str] = field(default_factory=list)

    def lines(self, *, dry_run: bool) -> list[str]:
        """The summary as lines of text."""
        verb = "would carry over" if dry_run else "carried over"
        usd = Decimal(LEGACY_UNITS_PER_USD)
        out = [
            f"{verb}: {self.instances} budget instances ({self.windows} windows), "
            f"spent ${Decimal(self.spent_legacy) / usd}, held ${Decimal(self.held_legacy) / usd} "
            f"({self.live_holds} live holds), {self.records} call records, {self.leases} lease fields, "
            f"{self.alert_flags} alert flags, {self.top_indexes} top indexes, {self.token_ratios} token ratios",
            f"amounts x {FACTOR} (0.2: {LEGACY_UNITS_PER_USD} units a dollar; now {UNITS_PER_USD})",
        ]
        if self.epoch:
            out.append(f"0.2 epoch {self.epoch} kept as the {KEY_LAYOUT_VERSION} layout's epoch")
        if not dry_run:
            out.append(
                f"snapshots applied: {self.applied}, already applied by an earlier run: {self.already_applied}, "
                f"resumed from an earlier run: {self.resumed}"
            )
            if self.fenced:
                out.append(f"0.2 layout fenced ({self.fenced}): 0.2 processes refuse their calls")
        out += [f"problem: {p}" for p in self.problems]
        return out


class Migration:
    """One run of ``costrouter budget migrate`` on one store and key prefix (sync client)."""

    def __init__(
        self,
        client: redis_clients.SyncClient,
        prefix: str,
        *,
        fence_wait: float = FENCE_WAIT_SECONDS,
        echo: Callable[[str], None] = lambda _: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Migrate the keys under ``prefix``; ``echo`` is told each step."""
        self.client = client
        self.prefix = prefix
        self.fence_wait = fence_wait
        self.echo = echo
        self.sleep = sleep
        self.run_id = uuid.uuid4().hex[:12]
        self._stage = redis_clients.register(client, script_source("migrate_stage"))
        self._apply = redis_clients.register(client, script_source("migrate_apply"))

    def scan(self) -> dict[LegacyGroup, list[str]]:
        """The 0.2 keys under the prefix (every master of a cluster), by group: their suffixes."""
        groups: dict[LegacyGroup, list[str]] = defaultdict(list)
        for raw in self.client.scan_iter(match=_glob("{" + self.prefix + ":") + "*", count=1000):
            parsed = parse_key(self.prefix, _text(raw))
            if parsed is not None:
                groups[parsed[0]].append(parsed[1])
        return groups

    def dry_run(self) -> MigrationSummary:
        """What a run would carry over; writes nothing."""
        summary = MigrationSummary()
        for group, suffixes in sorted(self.scan().items(), key=lambda item: item[0].tag):
            self._add(summary, group, self._read(group, suffixes))
        return summary

    def run(self) -> MigrationSummary:
        """Fence the 0.2 layout, carry every group over (until a scan finds none), mark it migrated."""
        summary = MigrationSummary()
        self._fence(summary)
        for _ in range(5):
            groups = self.scan()
            if not groups:
                break
            for group, suffixes in sorted(groups.items(), key=lambda item: item[0].tag):
                self._carry(summary, group, suffixes)
        else:
            summary.problems.append("0.2 keys still appear after 5 passes: a 0.2 process writes; stop it, run again")
            return summary
        epoch_key, lost_key, _ = legacy_epoch_keys(self.prefix)
        done = MIGRATED + self.run_id
        self.client.set(epoch_key, done)
        self.client.set(lost_key, done)
        self.echo(f"0.2 layout marked {done}")
        return summary

    def _fence(self, summary: MigrationSummary) -> None:
        epoch_key, lost_key, accepted_key = legacy_epoch_keys(self.prefix)
        new_epoch, _, new_accepted = epoch_keys(self.prefix)
        current = self.client.get(epoch_key)
        value = None if current is None else _text(current)
        live = value is not None and not value.startswith((MIGRATING, MIGRATED))
        if live and value is not None:
            self.client.set(new_epoch, value, nx=True)
            accepted = self.client.get(accepted_key)
            if accepted is not None and _text(accepted) == value:
                self.client.set(new_accepted, value, nx=True)
            summary.epoch = value
        fence = MIGRATING + self.run_id
        self.client.set(epoch_key, fence)
        self.client.set(lost_key, fence)
        summary.fenced = fence
        self.echo(f"0.2 layout fenced ({fence}): 0.2 processes refuse their calls at their next epoch check")
        if live and self.fence_wait > 0:
            self.echo(f"waiting {self.fence_wait:g} s for every running 0.2 process to check its epoch")
            self.sleep(self.fence_wait)

    def _carry(self, summary: MigrationSummary, group: LegacyGroup, suffixes: list[str]) -> None:
        run = group.staged
        if run is None:
            # A snapshot id of its own: a later pass of this run may stage the same tag again.
            run = uuid.uuid4().hex[:12]
            names = [group.tag + s for s in suffixes]
            staged = [self._staged_name(group.tag, run, s) for s in suffixes]
            done = [_text(n) for n in self._stage(keys=names, args=staged)]
            suffixes = [s for s, n in zip(suffixes, staged, strict=True) if n in done]
            if not suffixes:
                return
        else:
            summary.resumed += 1
        staged_group = LegacyGroup(group.kind, group.tag, run)
        data = self._read(staged_group, suffixes)
        self._add(summary, group, data)
        keys, args = self._operations(group, run, data)
        applied = self._apply(keys=keys, args=[str(MARKER_TTL_SECONDS), *args])
        if applied:
            summary.applied += 1
        else:
            summary.already_applied += 1
        self.delete_staged([self._staged_name(group.tag, run, s) for s in suffixes])

    def delete_staged(self, names: list[str]) -> None:
        """Delete a snapshot's staged keys once it is applied."""
        self.client.delete(*names)

    def _staged_name(self, tag: str, run: str, suffix: str) -> str:
        return f"{tag}{_STAGE}{run}{suffix}"

    def _read(self, group: LegacyGroup, suffixes: Iterable[str]) -> dict[str, tuple[Any, int]]:
        """Each key's content (hash: dict, zset: list of pairs) and expiry (epoch ms, -1: none)."""
        names = {
            s: group.tag + s if group.staged is None else self._staged_name(group.tag, group.staged, s)
            for s in suffixes
        }
        pipe = self.client.pipeline(transaction=False)
        for suffix, name in names.items():
            if group.kind == "top" or suffix == ":expiry":
                pipe.zrange(name, 0, -1, withscores=True)
            else:
                pipe.hgetall(name)
            pipe.pexpiretime(name)
        replies = pipe.execute()
        return {suffix: (replies[2 * i], int(replies[2 * i + 1])) for i, suffix in enumerate(names)}

    def _add(self, summary: MigrationSummary, group: LegacyGroup, data: dict[str, tuple[Any, int]]) -> None:
        if group.kind == "top":
            summary.top_indexes += len(data)
            return
        if group.kind == "ratios":
            summary.token_ratios += sum(len(content) for content, _ in data.values())
            return
        summary.instances += 1
        for suffix, (content, _) in data.items():
            if suffix == ":calls":
                records = [_text(v) for v in content.values()]
                summary.records += len(records)
                summary.live_holds += sum(1 for r in records if r.startswith("held|"))
            elif suffix.startswith(":w:"):
                fields = {_text(k): _text(v) for k, v in content.items()}
                summary.windows += 1
                summary.spent_legacy += int(fields.get("spent", "0"))
                summary.held_legacy += int(fields.get("held", "0")) + int(fields.get("lh", "0"))
                summary.leases += sum(1 for k in fields if k.startswith("l:"))
                summary.alert_flags += sum(1 for k in fields if k.startswith("alert:"))

    def _operations(
        self, group: LegacyGroup, run: str, data: dict[str, tuple[Any, int]]
    ) -> tuple[list[str], list[str]]:
        tag = new_tag(self.prefix, group.tag)
        keys = [f"{tag}{_MARKER}{run}"]
        args: list[str] = []

        def key_index(name: str) -> str:
            if name not in keys:
                keys.append(name)
            return str(keys.index(name) + 1)

        dues = {_text(m): f"{score:.6f}" for m, score in data.get(":expiry", ([], -1))[0]}
        for suffix, (content, expiry) in sorted(data.items()):
            if suffix == ":expiry":
                continue  # its scores are the records' dues
            target = key_index(tag + (":c" if suffix == ":calls" else suffix))
            if group.kind == "top":
                for member, score in content:
                    args += ["zincr", target, scale(str(round(score))), _text(member)]
            elif suffix == ":calls":
                records = [(dues.get(_text(i), "0"), _text(i), _text(r)) for i, r in content.items()]
                for due, call_id, record in sorted(records, key=lambda item: float(item[0])):
                    args += ["record", target, call_id, f"{convert_record(record)}|{due}"]
            elif group.kind == "ratios":
                for name, record in content.items():
                    args += ["hsetnx", target, _text(name), _text(record)]
            else:
                args += _window_operations(target, {_text(k): _text(v) for k, v in content.items()})
            if expiry >= 0:
                args += ["expire", target, str(expiry), ""]
        return keys, args


def _window_operations(target: str, fields: dict[str, str]) -> list[str]:
    """The operations that add a 0.2 window hash to the new layout's one."""
    args: list[str] = []
    for name, value in fields.items():
        if name in ("spent", "held", "lh"):
            args += ["hadd", target, name, scale(value)]
        elif name in ("holds", "unheld"):
            args += ["hadd", target, name, value]
        elif name == "lx":
            args += ["hmin", target, name, value]
        elif name.startswith("l:"):
            args += ["hsetnx", target, name, convert_lease(value)]
        else:
            args += ["hsetnx", target, name, value]
    return args
