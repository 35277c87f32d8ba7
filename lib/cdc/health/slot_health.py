"""Is the source's connector streaming, and if not, what recovers it (pure).

The fault this handles (docs/operations.md): after Kafka or Kafka Connect restarts, the
connector's task is stopped and started again inside the worker; when the old task's graceful stop
fails, its replication connection stays open and keeps holding the PostgreSQL slot. The new task then
loops on ``replication slot ... is active for PID n``, Kafka Connect reports it RUNNING, no change
reaches Kafka, and the slot retains WAL. Nothing in Kafka Connect notices.

The stream notices: the connector writes a heartbeat every ``heartbeat.interval.ms`` while it
streams. No heartbeat for ``stall_seconds`` while Kafka is readable, and the slot's confirmed position
unchanged for as long, means nothing consumes the slot. Then, in this order:

- the connector's task FAILED: restart it (Kafka Connect REST, failed instances only);
- the slot is held by a connection of the connector's own database role, opened before the last
  heartbeat: that connection is the task's previous one (a live task would be writing heartbeats);
  terminate it, and the task, retrying the slot every ``slot.retry.delay.ms``, takes it (a connection
  opened after the last heartbeat is a task still starting: left alone);
- the slot is free but the connector still does not stream: restart the connector and its task;
- the slot is held by another role: report it, touch nothing.

After an action the next one waits at least ``COOLDOWN_SECONDS`` (a restarted Debezium task first
waits up to 2 minutes for its predecessor's JMX metrics to go away), doubling with every further
action until a heartbeat arrives: restarting a task again and again only delays it. :func:`plan`
decides; the caller (lib.cdc.health.slot_doctor) observes and acts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

Kind = Literal["none", "restart_failed", "terminate_holder", "restart_connector", "report"]
COOLDOWN_SECONDS = 150.0


@dataclass(frozen=True)
class Observation:
    """One look at the source's CDC plumbing, at ``now`` (epoch seconds)."""

    now: float
    heartbeat_at: float | None  # newest heartbeat on the heartbeat topic (epoch s); None: none seen
    kafka_ok: bool  # the heartbeat topic could be read (else: no conclusion about the connector)
    connector_state: str | None  # connect_client.connector_state(), None without cdc.connect_url
    slot: dict[str, Any] | None  # the dialect's slot_info(), None: no slot (or not PostgreSQL)
    connector_user: str  # the database role the connector connects as


@dataclass(frozen=True)
class Memory:
    """What the planner carries from one observation to the next."""

    started_at: float  # when watching began (a missing heartbeat counts from here)
    confirmed: str | None = None  # the slot's confirmed position last seen
    confirmed_since: float | None = None  # since when it has not changed
    last_action_at: float | None = None
    actions: int = 0  # actions since the last heartbeat after an action (backoff)


@dataclass(frozen=True)
class Action:
    kind: Kind
    reason: str = ""
    pid: int | None = None


def remember(memory: Memory, obs: Observation) -> Memory:
    """The memory after ``obs``: since when the slot's confirmed position has stood still."""
    confirmed = (obs.slot or {}).get("confirmed_flush_lsn")
    recovered = memory.last_action_at is not None and obs.heartbeat_at is not None and obs.heartbeat_at > memory.last_action_at
    actions = 0 if recovered else memory.actions
    if confirmed != memory.confirmed or memory.confirmed_since is None:
        return Memory(memory.started_at, confirmed, obs.now, memory.last_action_at, actions)
    return replace(memory, actions=actions)


def cooldown(memory: Memory, stall_seconds: float) -> float:
    """How long after the last action the next may come: doubling per action without recovery."""
    return max(COOLDOWN_SECONDS, stall_seconds) * 2 ** max(0, memory.actions - 1)


def silent_seconds(obs: Observation, memory: Memory) -> float:
    """How long the connector has written no heartbeat (since watching began when none was seen)."""
    return obs.now - max(obs.heartbeat_at or 0.0, memory.started_at)


def plan(memory: Memory, obs: Observation, stall_seconds: float) -> Action:
    """What to do about the connector now (``memory`` already includes ``obs``, see :func:`remember`)."""
    if memory.last_action_at is not None and memory.actions and obs.now - memory.last_action_at < cooldown(memory, stall_seconds):
        return Action("none", "waiting for the last recovery to take effect")
    if obs.connector_state == "FAILED":
        return Action("restart_failed", "the connector's task FAILED: restarting it (Kafka Connect keeps a failed task stopped)")
    if not obs.kafka_ok:
        return Action("none", "Kafka is not readable: no conclusion about the connector")
    silent = silent_seconds(obs, memory)
    if silent < stall_seconds:
        return Action("none", "streaming")
    slot = obs.slot
    if slot is None:
        if obs.connector_state == "RUNNING":
            return Action("restart_connector", f"the connector is RUNNING but wrote no heartbeat for {silent:.0f}s: restarting it and its task")
        return Action("none", f"no heartbeat for {silent:.0f}s, connector {obs.connector_state or 'unknown'}")
    still = obs.now - (memory.confirmed_since if memory.confirmed_since is not None else obs.now)
    if still < stall_seconds:
        return Action("none", f"no heartbeat for {silent:.0f}s, but the slot's consumer confirmed a new position {still:.0f}s ago")
    pid = slot.get("active_pid")
    if slot.get("active") and pid is not None:
        holder = _holder(slot)
        started = slot.get("holder_started_at")
        if isinstance(started, datetime) and obs.heartbeat_at is not None and started.timestamp() > obs.heartbeat_at:
            return Action("none", f"the slot's connection {holder} is newer than the last heartbeat: a task starting, not a stale one")
        if slot.get("holder_user") == obs.connector_user:
            return Action("terminate_holder", (
                f"replication slot {slot.get('slot')} is held by {holder}, a connection of the connector's role {obs.connector_user}, "
                f"but no heartbeat for {silent:.0f}s and the slot's confirmed position {slot.get('confirmed_flush_lsn')} unchanged for "
                f"{still:.0f}s (lag {slot.get('lag_bytes') or 0:,} bytes): it is the connector's previous, stale connection; "
                "terminating it so the connector's task takes the slot"), int(pid))
        return Action("report", (f"replication slot {slot.get('slot')} is held by {holder}, not by the connector's role "
                                 f"{obs.connector_user}, and nothing streams for {silent:.0f}s: left alone, check who uses the slot"))
    if obs.connector_state == "RUNNING":
        return Action("restart_connector", (f"replication slot {slot.get('slot')} is free but the connector wrote no heartbeat for "
                                            f"{silent:.0f}s: restarting the connector and its task"))
    if obs.connector_state is None:
        return Action("report", (f"replication slot {slot.get('slot')} is free and no heartbeat for {silent:.0f}s: is the connector "
                                 "registered and running? (without cdc.connect_url the stream cannot check or restart it)"))
    return Action("none", f"no heartbeat for {silent:.0f}s, connector {obs.connector_state}")


def acted(memory: Memory, action: Action, now: float) -> Memory:
    """The memory after carrying out ``action``."""
    if action.kind == "none":
        return memory  # a report is repeated at most every cooldown, like an action
    return replace(memory, last_action_at=now, actions=memory.actions + 1)


def _holder(slot: dict[str, Any]) -> str:
    started = slot.get("holder_started_at")
    when = started.strftime("%H:%M:%S") if isinstance(started, datetime) else str(started or "?")
    return f"pid {slot.get('active_pid')} ({slot.get('holder_application') or 'no application name'}, connected since {when})"
