"""The stream's connector health check (thin layer over lib.cdc.health.slot_health).

A daemon thread of the long-running CDC stream: every ``check_seconds`` it looks at the connector
(Kafka Connect status, when ``cdc.connect_url`` is set), the replication slot and the connection
holding it, and the newest heartbeat the apply loop read; lib.cdc.health.slot_health decides; this carries
it out and logs one line saying what was done and why, then one line when heartbeats are back,
with the time the recovery took.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from lib.cdc.health import slot_health as H
from lib.cdc.health.freshness import Heartbeat
from lib.config.model import SourceConfig
from lib.debezium.connect_client import ConnectClient, connector_state
from lib.logs import redact
from lib.retry import short_error

log = logging.getLogger(__name__)


class SlotDoctor:
    def __init__(self, source: SourceConfig, dialect: Any, heartbeat: Callable[[], Heartbeat], stall_seconds: float,
                 check_seconds: float, heal: bool = True, secrets: tuple[str, ...] = ()) -> None:
        assert source.cdc is not None
        self.source = source
        self.cdc = source.cdc
        self.dialect = dialect
        self.heartbeat = heartbeat
        self.stall_seconds = stall_seconds
        self.check_seconds = check_seconds
        self.heal = heal
        self.secrets = secrets
        self.connect = ConnectClient.for_cdc(self.cdc, timeout=10.0) if self.cdc.connect_url else None
        self.memory = H.Memory(started_at=time.time())
        self._recovering: tuple[H.Action, float, float | None] | None = None  # (action, when, heartbeat before)
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(stop,), name="cdc-slot-doctor", daemon=True)
        self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        failing_since: float | None = None  # a failing check is said once a minute, not every check
        while not stop.wait(self.check_seconds):
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - a failed check must never stop the stream
                if failing_since is None or time.monotonic() - failing_since >= 60:
                    log.warning("connector health check failed (retrying every %gs): %s", self.check_seconds,
                                redact(short_error(exc), self.secrets))
                    failing_since = time.monotonic()
                continue
            if failing_since is not None:
                log.info("connector health check works again")
                failing_since = None

    def observe(self) -> H.Observation:
        beat = self.heartbeat()
        state = connector_state(self.connect.status(self.cdc.connector_name)) if self.connect else None
        slot = self.dialect.slot_info(self.source.connection, self.cdc.slot_name)
        return H.Observation(time.time(), beat.at, beat.ok, state, dict(slot) if slot else None, self.source.connection.user)

    def check(self) -> H.Action:
        obs = self.observe()
        self._report_recovery(obs)
        self.memory = H.remember(self.memory, obs)
        action = H.plan(self.memory, obs, self.stall_seconds)
        if action.kind == "none":
            return action
        if action.kind == "report":
            log.warning("cdc recovery: none: %s", action.reason)
            return action
        if not self.heal:
            log.warning("cdc recovery: not done (stream.heal_connector: false): would %s: %s", action.kind.replace("_", " "), action.reason)
            self.memory = H.acted(self.memory, action, obs.now)  # say it once per stall_seconds
            return action
        log.warning("cdc recovery: %s: %s", action.kind.replace("_", " "), action.reason)
        if action.kind == "terminate_holder":
            assert action.pid is not None
            done = self.dialect.terminate_slot_holder(self.source.connection, self.cdc.slot_name, action.pid)
            if not done:
                log.info("cdc recovery: pid %d no longer held the slot", action.pid)
        elif self.connect is not None:
            self.connect.restart(self.cdc.connector_name, only_failed=action.kind == "restart_failed")
        self.memory = H.acted(self.memory, action, obs.now)
        self._recovering = (action, obs.now, obs.heartbeat_at)
        return action

    def _report_recovery(self, obs: H.Observation) -> None:
        if self._recovering is None:
            return
        action, at, before = self._recovering
        if obs.heartbeat_at is not None and (before is None or obs.heartbeat_at > before) and obs.heartbeat_at >= at:
            log.warning("cdc recovery: the connector streams again (heartbeat %.0fs after the %s; %.0fs without heartbeat in all)",
                        obs.heartbeat_at - at, action.kind.replace("_", " "), obs.heartbeat_at - (before or self.memory.started_at))
            self._recovering = None
