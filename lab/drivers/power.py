"""Power driver: one outlet of a network PDU speaking the NETIO JSON API over HTTP.

``GET {url}/netio.json`` reads the outlets, ``POST {url}/netio.json`` with
``{"Outputs": [{"ID": outlet, "Action": A}]}`` switches one (A: 0 off, 1 on, 2 short off = power
cycle for the PDU's ``Delay``). See docs/wire.md. Optional HTTP basic auth; the password comes from
the rig's ``power.password_env`` and never reaches a log or an error message.

Everything that goes wrong here is the lab's problem: refused connection, timeout, HTTP error,
unknown outlet, a PDU that reports a state other than the one asked for ->
``InfraError(instrument="power")``.

Example::

    pdu = PowerSwitch("http://127.0.0.1:17090", 1, rig_name="stb-a")
    pdu.off()
    assert pdu.status() is False
    pdu.cycle(off_seconds=2)
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab.errors import InfraError
from lab.steps import step

if TYPE_CHECKING:
    from lab.rig import Rig

INSTRUMENT = "power"

ACTION_OFF = 0
ACTION_ON = 1
ACTION_SHORT_OFF = 2
ACTION_TOGGLE = 4


@dataclass(frozen=True)
class PowerReading:
    """One outlet's state and meter values (None where the PDU has no meter)."""

    on: bool
    current_ma: float | None
    load_w: float | None
    power_factor: float | None
    energy_wh: float | None


class PowerSwitch:
    """One outlet of a NETIO-style PDU (see the module docstring)."""

    def __init__(
        self,
        url: str,
        outlet: int,
        *,
        rig_name: str | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if outlet < 1:
            raise ValueError("outlet numbers start at 1")
        self.url = url.rstrip("/")
        self.outlet = outlet
        self.rig_name = rig_name
        self.user = user
        self.timeout = timeout
        self._auth = None
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self._auth = f"Basic {token}"

    @classmethod
    def from_rig(cls, rig: Rig, *, timeout: float = 5.0) -> PowerSwitch:
        """The power outlet of ``rig`` (its ``power:`` section; password from ``password_env``)."""
        cfg = rig.power
        if cfg is None:
            raise InfraError("rig has no power section", rig=rig.name, instrument=INSTRUMENT)
        return cls(cfg.url, cfg.outlet, rig_name=rig.name, user=cfg.user, password=cfg.password(), timeout=timeout)

    def __repr__(self) -> str:  # never the password
        return f"PowerSwitch({self.url!r}, outlet={self.outlet}, rig={self.rig_name!r})"

    def _infra(self, message: str) -> InfraError:
        return InfraError(f"PDU {self.url} outlet {self.outlet}: {message}", rig=self.rig_name, instrument=INSTRUMENT)

    def _request(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/netio.json", data=data, method="POST" if data else "GET")
        req.add_header("Accept", "application/json")
        if data:
            req.add_header("Content-Type", "application/json")
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = ""
            with contextlib.suppress(ValueError, AttributeError, OSError):
                detail = json.loads(exc.read() or b"{}").get("error", "")
            hint = ""
            if exc.code in (401, 403):
                hint = " (check power.user and the password_env variable)" if self._auth else " (PDU wants a login)"
            raise self._infra(f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "") + hint) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise self._infra(f"no answer ({reason})") from None
        except http.client.HTTPException as exc:  # not HTTP at all, or cut off mid-answer
            raise self._infra(f"answer is not HTTP ({type(exc).__name__}: {exc})") from None
        try:
            doc = json.loads(raw)
        except ValueError:
            raise self._infra(f"answer is not JSON: {raw[:80]!r}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("Outputs"), list):
            raise self._infra("answer has no 'Outputs' list (not a NETIO JSON API?)")
        return doc

    def _output(self, doc: dict[str, Any]) -> dict[str, Any]:
        for out in doc["Outputs"]:
            if isinstance(out, dict) and out.get("ID") == self.outlet:
                return out
        ids = [o.get("ID") for o in doc["Outputs"] if isinstance(o, dict)]
        raise self._infra(f"no such outlet (the PDU has {ids})")

    def _act(self, action: int) -> dict[str, Any]:
        return self._output(self._request({"Outputs": [{"ID": self.outlet, "Action": action}]}))

    def _read_state(self) -> bool:
        state = self._output(self._request()).get("State")
        if state not in (0, 1):
            raise self._infra(f"outlet reports an unknown state {state!r}")
        return state == 1

    def _wait_state(self, want: bool, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._read_state() == want:
                return
            if time.monotonic() >= deadline:
                raise self._infra(f"outlet did not turn {'on' if want else 'off'} within {timeout:.1f} s")
            time.sleep(0.05)

    @step(INSTRUMENT)
    def on(self) -> None:
        """Switch the outlet on (and check the PDU says it is on)."""
        out = self._act(ACTION_ON)
        if out.get("State") != 1:
            self._wait_state(True, self.timeout)

    @step(INSTRUMENT)
    def off(self) -> None:
        """Switch the outlet off (and check the PDU says it is off)."""
        out = self._act(ACTION_OFF)
        if out.get("State") != 0:
            self._wait_state(False, self.timeout)

    @step(INSTRUMENT)
    def cycle(self, off_seconds: float | None = None) -> None:
        """Power-cycle: off, wait, on; returns once the outlet is on again.

        ``off_seconds=None`` lets the PDU do it (NETIO "short off" for its configured ``Delay``);
        a number switches off, sleeps that long, and switches on.
        """
        if off_seconds is None:
            out = self._act(ACTION_SHORT_OFF)
            delay = float(out.get("Delay") or 0) / 1000.0
            self._wait_state(True, delay + self.timeout)
            return
        if off_seconds < 0:
            raise ValueError("off_seconds must be >= 0")
        self.off()
        time.sleep(off_seconds)
        self.on()

    @step(INSTRUMENT)
    def status(self) -> bool:
        """True when the outlet is on."""
        return self._read_state()

    @step(INSTRUMENT)
    def reading(self) -> PowerReading:
        """What the PDU measures on the outlet (metering NETIO models): state, current, load, energy.

        Fields the PDU does not report are None. Useful as evidence ("the box drew 0 mA") and to
        tell a box that is dead from one that is merely silent.
        """
        out = self._output(self._request())

        def num(key: str) -> float | None:
            value = out.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        return PowerReading(
            on=out.get("State") == 1,
            current_ma=num("Current"),
            load_w=num("Load"),
            power_factor=num("PowerFactor"),
            energy_wh=num("Energy"),
        )

    def info(self) -> dict[str, Any]:
        """The PDU's ``Agent`` block (model, serial number, number of outputs)."""
        agent = self._request().get("Agent")
        return dict(agent) if isinstance(agent, dict) else {}


__all__ = ["PowerReading", "PowerSwitch"]
