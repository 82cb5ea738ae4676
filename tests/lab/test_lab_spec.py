"""The lab is verified like the ops. Two suites, each a dict of properties (plain functions
in spec/) and a dict of mutants (context managers that put one bug in): the lab's
(spec/lab.py, mixology/lab/mutants.py) and the circuits' (spec/circuits.py). Every property
holds, every mutant is rejected by one, and every property rejects one."""

import pytest

from mixology.lab.mutants import LAB_MUTANTS
from mixology.spec.circuits import CIRCUIT_MUTANTS, CIRCUIT_PROPERTIES
from mixology.spec.lab import LAB_PROPERTIES

SUITES = {"lab": (LAB_PROPERTIES, LAB_MUTANTS), "circuits": (CIRCUIT_PROPERTIES, CIRCUIT_MUTANTS)}


@pytest.mark.parametrize("suite, name", [(s, n) for s, (props, _) in SUITES.items()
                                         for n in props])
def test_property_holds(suite, name):
    SUITES[suite][0][name]()


def _rejects(suite, prop, mutant) -> bool:
    props, mutants = SUITES[suite]
    with mutants[mutant]():
        try:
            props[prop]()
        except Exception:
            return True
    return False


@pytest.fixture(scope="module")
def kills():
    """Per suite and mutant, a property that rejects it, trying first the properties that
    have rejected nothing yet (enough of the matrix to show both directions)."""
    found = {}
    for suite, (props, mutants) in SUITES.items():
        covered = set()
        for mutant in mutants:
            order = sorted(props, key=lambda p: p in covered)
            found[suite, mutant] = next((p for p in order if _rejects(suite, p, mutant)), None)
            covered.add(found[suite, mutant])
    return found


@pytest.mark.parametrize("suite, mutant", [(s, m) for s, (_, muts) in SUITES.items()
                                           for m in muts])
def test_mutant_is_rejected(suite, mutant, kills):
    doc = SUITES[suite][1][mutant].__doc__
    assert kills[suite, mutant], f"{suite} mutant {mutant} ({doc}) passes every property"


@pytest.mark.parametrize("suite", SUITES)
def test_every_property_rejects_a_mutant(suite, kills):
    props, mutants = SUITES[suite]
    idle = set(props) - {p for (s, _), p in kills.items() if s == suite}
    for prop in sorted(idle):  # not the first to reject any: does it reject some mutant?
        assert any(_rejects(suite, prop, m) for m in mutants), f"{prop} rejects no mutant"
