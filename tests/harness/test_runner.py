"""The runner: several distinct failures are each explained; tiers and replay."""

import dataclasses

import torch
from hypothesis import strategies as st

from mixology import spec
from mixology.verify import runner


def _two_bugs(impl, case):
    if case % 2:
        raise ValueError(f"odd case {case}")
    if case >= 4:
        raise KeyError(f"large even case {case}")


def test_each_distinct_failure_has_its_own_error_counterexample_and_replay():
    p = spec.Property("token_mix", "two_bugs", _two_bugs, st.integers(0, 50))
    out = runner.check(p, None, "x", profile="dev", sizes="small")
    assert not out.ok
    errors = sorted(f.error.split(":")[0] for f in out.failures)
    assert errors == ["KeyError", "ValueError"], out.failures
    for f in out.failures:
        assert f.counterexample.startswith("case="), f
        assert "--sizes small --reproduce" in f.replay, f


def test_a_property_without_a_kernel_tier_runs_small_only():
    seen = []
    p = spec.Property("token_mix", "seen", lambda impl, case: seen.append(case),
                      st.integers(0, 3))
    out = runner.check(p, None, "x", profile="ci", sizes="kernel")
    assert out.ok and out.sizes == "small" and seen


def test_kernel_tier_draws_kernel_scale_cases():
    from mixology.spec.token_mix import mix_cases

    seen = []
    p = spec.Property("layer_norm", "seen", lambda impl, case: seen.append(case),
                      mix_cases(num_heads=1, max_head_dim=12))
    assert runner.check(p, None, "x", profile="ci", sizes="kernel").ok
    assert max(c.D * c.B * c.T for c in seen) > 1000, seen  # past one tile of rows or columns
    seen.clear()
    assert runner.check(p, None, "x", profile="ci", sizes="small").ok
    assert max(c.D for c in seen) <= 12 and all(c.offset == 0 for c in seen)


def test_every_implementation_is_judged_on_the_same_cases():
    """Under a derandomized profile the cases a check draws depend on the op, the property
    and the tier, not on the name it runs under: the same function under two names (a
    registered implementation, a candidate) gets the same cases, so the same verdict."""
    from mixology.spec.token_mix import mix_cases

    drawn = {}
    for label in ("reference", "candidate mykernels.norm:rms_norm", "mutant:rms_unchecked"):
        seen = drawn[label] = []
        p = spec.Property("rms_norm", "seen", lambda impl, case, seen=seen: seen.append(case),
                          mix_cases(num_heads=1, max_head_dim=12))
        assert runner.check(p, None, label, profile="ci", sizes="all").ok
    first, *others = drawn.values()
    assert len(first) >= 12 and all(o == first for o in others)


def test_rounding_floor_follows_the_terms_not_the_result():
    """σ of x + (-x) + y in float32 is at the scale of |x| (1e4), not of the result (~1)."""
    from mixology.numerics.rounding import rounding_error

    x = torch.full((4,), 1e4)
    y = torch.ones(4)
    sigma = rounding_error(lambda a, b: (a.sum() - a.sum()) + b.sum(), (x, y))[0]
    assert float(sigma) > 1e4 * torch.finfo(torch.float32).eps / 4


def test_dtypes_enumerated_inside_an_example_are_the_declared_ones():
    """every_input_in_every_layout walks the float dtypes inside each example: for an
    implementation that declares some dtypes it walks those only, and all of them."""
    from mixology.ops.norms.reference import rms_norm

    p = next(q for q in spec.properties("rms_norm") if q.name == "every_input_in_every_layout")
    for declared in ((torch.float32, torch.bfloat16), None):
        seen = set()

        def impl(x, weight, eps=1e-5, seen=seen):
            seen.add(x.dtype)
            return rms_norm(x, weight, eps)

        q = p if declared is None else dataclasses.replace(p, only_dtypes=declared)
        assert runner.check(q, impl, "x", profile="ci", sizes="small").ok
        assert seen == set(declared or spec.strategies.FLOATS), seen
