"""The direct pass (lib.cdc.direct.events.summarize) on hostile messages, without a JVM: for any
generated message it either decodes it or refuses the range with NotDirect (so Spark applies it and
dead-letters what it cannot decode); it never fails another way. The Spark path's twin property, on
the same generated messages, is in tests/integration/test_cdc_hostile.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from lib.cdc.direct.decode import NotDirect
from lib.cdc.direct.events import plan, summarize

from ..hostile import FIELDS, SPEC, base_event, known_hostile, mutated_event


def verdict(message: bytes) -> str:
    try:
        batch = summarize(plan(SPEC, FIELDS), [(0, 0, message)])
    except NotDirect as exc:
        return f"refused: {exc}"
    return f"decoded {batch.events} event(s)"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_event())
def test_any_message_is_decoded_or_refused_with_not_direct(message: bytes) -> None:
    assert verdict(message).startswith(("refused: ", "decoded 1 event"))


@pytest.mark.parametrize(("what", "message"), known_hostile(), ids=[w for w, _ in known_hostile()])
def test_the_known_hostile_messages_are_refused(what: str, message: bytes) -> None:
    assert verdict(message).startswith("refused: "), what


def test_the_unmutated_event_is_decoded() -> None:
    import json

    assert verdict(json.dumps(base_event()).encode()) == "decoded 1 event(s)"
