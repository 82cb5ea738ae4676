"""Bad input gets the *same* error, word for word, from every implementation."""

import os

import pytest

from mixology import registry, spec

DEVICE = os.environ["MIXOLOGY_DEVICE"]
# every bad input of every op's contract properties (spec/<family>.py)
CASES = [(p.op, c) for p in spec.properties() if p.kind == "contract" for c in p.cases.elements]


def _error(fn, args):
    try:
        fn(*args)
    except Exception as e:
        return type(e), str(e)
    return None, "accepted"


@pytest.mark.parametrize(("op", "bad"), CASES, ids=[f"{op}-{c.what}" for op, c in CASES])
def test_identical_errors(op, bad):
    errors = {impl: _error(registry.get(op, impl).fn, bad.args)
              for impl in registry.implementations(op, DEVICE)}
    assert len(set(errors.values())) == 1, errors
    kind, message = errors["reference"]
    assert kind is bad.error, message
    assert all(name in message for name in bad.names), message
