"""A small Kafka Connect REST client: create-or-update a connector, wait for RUNNING, status, delete."""

from __future__ import annotations

import base64
import json
import logging
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from lib.config.model import CdcConfig
from lib.errors import SourceError

log = logging.getLogger(__name__)


class ConnectClient:
    """Kafka Connect's REST API over http or https (``ca_location``: the CAs to trust), with HTTP basic
    authentication when ``username`` is given. The password is sent in the Authorization header only."""

    def __init__(self, base_url: str, timeout: float = 30.0, username: str | None = None, password: str | None = None,
                 ca_location: str | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", **basic_auth_header(username, password)}
        self._tls = ssl.create_default_context(cafile=ca_location) if self.base.startswith("https://") else None

    @classmethod
    def for_cdc(cls, cdc: CdcConfig, timeout: float = 30.0) -> ConnectClient:
        """The client of a source's ``cdc.connect_url`` with its credentials and CA."""
        assert cdc.connect_url is not None
        return cls(cdc.connect_url, timeout, cdc.connect_username, cdc.connect_password, cdc.connect_ca_location)

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._tls) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise SourceError(f"Kafka Connect at {self.base} refused the request (HTTP {exc.code}): check cdc.connect_username "
                                  "and cdc.connect_password", transient=False) from None
            text = exc.read().decode(errors="replace")
            try:
                payload = json.loads(text)
            except ValueError:
                payload = {"message": text}
            return exc.code, payload
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise SourceError(f"Kafka Connect at {self.base}: its certificate is not trusted ({reason.verify_message}): "
                                  "set cdc.connect_ca_location to the CA that signed it", transient=False) from None
            raise SourceError(f"Kafka Connect at {self.base} is unreachable: {exc}", transient=True) from None

    @staticmethod
    def _path(name: str) -> str:
        return "/connectors/" + urllib.parse.quote(name, safe="")

    def _get(self, name: str, what: str) -> Any:
        """``GET /connectors/<name>/<what>``; None when Kafka Connect does not know the connector."""
        code, payload = self._call("GET", f"{self._path(name)}/{what}")
        if code == 404:
            return None
        if code != 200:
            raise SourceError(f"Kafka Connect {what} of {name!r} failed ({code}): {_message(payload)}", transient=code >= 500)
        return payload

    def config(self, name: str) -> dict[str, str] | None:
        return self._get(name, "config")

    def offsets(self, name: str) -> dict[str, Any] | None:
        """``GET /connectors/<name>/offsets`` (Kafka Connect 3.5+): ``{"offsets": [{"partition", "offset"}]}``."""
        return self._get(name, "offsets")

    def validate(self, connector_class: str, config: dict[str, str]) -> dict[str, Any]:
        """``PUT /connector-plugins/<class>/config/validate``: Kafka Connect's verdict on every setting."""
        path = "/connector-plugins/" + urllib.parse.quote(connector_class, safe="") + "/config/validate"
        code, payload = self._call("PUT", path, config)
        if code != 200:
            raise SourceError(f"Kafka Connect validation of {connector_class} failed ({code}): {_message(payload)}", transient=code >= 500)
        return payload

    def put_config(self, name: str, config: dict[str, str]) -> str:
        """Create or update ``name``: ``created``, ``updated`` or ``unchanged``.

        An unchanged config is not written again: every write restarts the connector and its task
        (a rebalance), which would only interrupt streaming."""
        if not config_changed(self.config(name), name, config):
            return "unchanged"
        code, payload = self._call("PUT", f"{self._path(name)}/config", config)
        if code not in (200, 201):
            raise SourceError(f"Kafka Connect rejected connector {name!r} ({code}): {_message(payload)}", transient=code >= 500)
        return "created" if code == 201 else "updated"

    def task_configs(self, name: str) -> list[dict[str, str]]:
        code, payload = self._call("GET", f"{self._path(name)}/tasks")
        return [task.get("config", {}) for task in payload] if code == 200 and isinstance(payload, list) else []

    def status(self, name: str) -> dict[str, Any] | None:
        return self._get(name, "status")

    def restart(self, name: str, only_failed: bool = True) -> None:
        """Restart the connector and its tasks (only the FAILED instances with ``only_failed``)."""
        code, payload = self._call("POST", f"{self._path(name)}/restart?includeTasks=true&onlyFailed={'true' if only_failed else 'false'}")
        if code not in (200, 202, 204):
            raise SourceError(f"Kafka Connect could not restart {name!r} ({code}): {_message(payload)}", transient=code >= 500)

    def delete_with_offsets(self, name: str, timeout: float = 60.0) -> bool:
        """Stop the connector, erase its stored source offsets, then delete it, so a connector created
        later under the same name starts from its slot's position, not from a stale stored one."""
        if self.status(name) is None:
            return False
        code, payload = self._call("PUT", f"{self._path(name)}/stop")
        if code in (202, 204):
            deadline = time.monotonic() + timeout
            while (self.status(name) or {}).get("connector", {}).get("state") != "STOPPED" and time.monotonic() < deadline:
                time.sleep(0.5)
            code, payload = self._call("DELETE", f"{self._path(name)}/offsets")
            if code not in (200, 404):
                log.warning("could not reset offsets of connector %s (%s): %s", name, code, _message(payload))
        return self.delete(name)

    def delete(self, name: str) -> bool:
        code, payload = self._call("DELETE", self._path(name))
        if code not in (204, 404):
            raise SourceError(f"Kafka Connect could not delete {name!r} ({code}): {_message(payload)}", transient=code >= 500)
        return code == 204

    def wait_running(self, name: str, timeout: float = 120.0, poll: float = 0.5, config: dict[str, str] | None = None,
                     settle: int = 3) -> dict[str, Any]:
        """Wait until the connector and all its tasks are RUNNING on ``settle`` consecutive polls; a FAILED
        task fails with its trace.

        Right after a config update the status still shows the old, running instance until the
        rebalance stops it, so with ``config`` this first waits until the tasks carry that config, and
        a single RUNNING poll is never trusted."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        running = 0
        while time.monotonic() < deadline:
            if config is not None and not any(carries(task, config) for task in self.task_configs(name)):
                time.sleep(poll)
                continue
            last = self.status(name)
            state = connector_state(last)
            running = running + 1 if state == "RUNNING" else 0
            if running >= settle:
                return last or {}
            if state == "FAILED":
                raise SourceError(f"connector {name!r} failed: {failure_trace(last)}", transient=False)
            time.sleep(poll)
        raise SourceError(f"connector {name!r} not RUNNING after {timeout:.0f}s (last status: {connector_state(last)})", transient=True)


def config_changed(current: dict[str, str] | None, name: str, desired: dict[str, str]) -> bool:
    """Whether the stored connector config (Kafka Connect adds ``name``) differs from ``desired`` (pure)."""
    return current is None or {k: v for k, v in current.items() if k != "name"} != desired


def carries(task_config: dict[str, str], desired: dict[str, str]) -> bool:
    """Whether a task runs with ``desired`` (its config adds keys such as ``task.class``) (pure)."""
    return all(task_config.get(key) == value for key, value in desired.items())


def connector_state(status: dict[str, Any] | None) -> str:
    """RUNNING only when the connector and at least one task run; FAILED when any of them failed (pure)."""
    if not status:
        return "MISSING"
    states = [status.get("connector", {}).get("state", "UNASSIGNED")] + [t.get("state", "UNASSIGNED") for t in status.get("tasks", [])]
    if "FAILED" in states:
        return "FAILED"
    if all(s == "RUNNING" for s in states) and status.get("tasks"):
        return "RUNNING"
    return states[0] if states[0] != "RUNNING" else "STARTING"


def failure_trace(status: dict[str, Any] | None) -> str:
    for part in [(status or {}).get("connector", {}), *(status or {}).get("tasks", [])]:
        if part.get("state") == "FAILED":
            return (part.get("trace") or "no trace").strip().splitlines()[0][:500]
    return "unknown"


def _message(payload: Any) -> str:
    if isinstance(payload, dict):
        return str(payload.get("message", payload))[:500]
    return str(payload)[:500]


def basic_auth_header(username: str | None, password: str | None) -> dict[str, str]:
    """The HTTP basic ``Authorization`` header (RFC 7617, UTF-8), or none without a username."""
    if username is None:
        return {}
    token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}
