"""The lab is verified like the ops: every lab property (spec/lab.py) holds on the lab, every
lab mutant (mixology/lab/mutants.py) is rejected by one, and every property rejects one."""

import pytest

from mixology.lab.mutants import LAB_MUTANTS
from spec.lab import LAB_PROPERTIES


@pytest.mark.parametrize("name", LAB_PROPERTIES)
def test_lab_property_holds(name):
    LAB_PROPERTIES[name]()


def _rejects(prop, mutant) -> bool:
    with LAB_MUTANTS[mutant]():
        try:
            LAB_PROPERTIES[prop]()
        except Exception:
            return True
    return False


@pytest.fixture(scope="module")
def kills():
    """For each mutant, a property that rejects it, trying first the properties that have
    rejected nothing yet (enough of the matrix to show both directions)."""
    covered, found = set(), {}
    for mutant in LAB_MUTANTS:
        order = sorted(LAB_PROPERTIES, key=lambda p: p in covered)
        found[mutant] = next((p for p in order if _rejects(p, mutant)), None)
        covered.add(found[mutant])
    return found


@pytest.mark.parametrize("mutant", LAB_MUTANTS)
def test_lab_mutant_is_rejected(mutant, kills):
    assert kills[mutant], f"lab mutant {mutant} ({LAB_MUTANTS[mutant].__doc__}) passes every property"


def test_every_lab_property_rejects_a_mutant(kills):
    idle = set(LAB_PROPERTIES) - set(kills.values())
    for prop in sorted(idle):  # not the first to reject any: does it reject some mutant?
        assert any(_rejects(prop, m) for m in LAB_MUTANTS), f"{prop} rejects no lab mutant"
