"""A correct independent implementation is never rejected: every candidate in
tests/support/candidates.py passes every property of its op, in every size tier.

The rate over many more cases (``MIXOLOGY_PROFILE=dev`` / ``thorough``) is measured by
``python tests/support/acceptance.py``; docs/tolerance.md has the figures."""

import os

import pytest

from mixology import registry, spec
from mixology.verify import runner
from tests.support import candidates

DEVICE = os.environ["MIXOLOGY_DEVICE"]
CASES = [(p, name) for op, names in candidates.CORRECT.items() for name in names
         for p in spec.properties(op)]


def test_every_op_has_an_independent_implementation():
    missing = [op for op in registry.ops() if op not in candidates.CORRECT]
    # blocks are compositions of the ops above; their `native` implementation is the other one
    assert set(missing) <= {"transformer_block", "rankmixer_block"}, missing


@pytest.mark.parametrize(("prop", "name"), CASES, ids=[f"{n}-{p.name}" for p, n in CASES])
def test_independent_implementation_passes(prop, name):
    out = runner.check(prop, getattr(candidates, name), f"candidate {name}", device=DEVICE,
                       replay_args=f"--candidate {prop.op}=tests.support.candidates:{name}")
    assert out.ok, "\n".join(f"{f.error}\ncounterexample: {f.counterexample}\nreplay: {f.replay}"
                             for f in out.failures)


def test_the_permute_back_candidate_is_rejected():
    fails = [p.name for p in spec.properties("token_mix")
             if not runner.check(p, candidates.bad_token_mix, "bad", device=DEVICE,
                                 shrink=False, sizes="small").ok]
    assert "full_mixing_when_heads_equal_tokens" in fails
