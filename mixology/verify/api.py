"""Check your own implementation of an op against the spec, from Python.

    import mixology
    report = mixology.check("rms_norm", my_rms_norm, profile="ci")
    print(report)            # a line per property; each failure with error, case and replay
    assert report.ok

``mixology.testing.assert_satisfies_spec`` raises an AssertionError carrying the report, and
``mixology.testing.spec_tests`` turns the spec into one pytest test per property.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mixology import registry


@dataclass
class Report:
    """The spec's verdict on one implementation of one op: an Outcome per property."""

    op: str
    label: str
    device: str
    profile: str
    sizes: str
    strict: bool = False
    outcomes: list = field(default_factory=list)  # mixology.verify.runner.Outcome

    @property
    def failed(self) -> list:
        """Failing properties; contract ones (bad input not refused with a ValueError or
        TypeError naming the argument) only when strict."""
        return [o for o in self.outcomes if not o.ok and (self.strict or o.kind != "contract")]

    @property
    def contract(self) -> list:
        """Contract failures not counted (strict=False)."""
        return [o for o in self.outcomes if not o.ok and not self.strict
                and o.kind == "contract"]

    @property
    def passed(self) -> list:
        return [o for o in self.outcomes if o.ok and not o.skipped]

    @property
    def skipped(self) -> list:
        """Properties that could not be checked (each Outcome says why)."""
        return [o for o in self.outcomes if o.skipped]

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"mixology.check {self.op} [{self.label}] device={self.device} "
                 f"profile={self.profile} sizes={self.sizes}"]
        for o in self.outcomes:
            mark = o.status if o.ok else ("contract" if o in self.contract else "FAIL")
            why = f": not checked, {o.skipped}" if o.skipped else ""
            lines.append(f"  {mark:8s} {o.prop} ({o.kind}, {o.seconds:.1f}s){why}")
        for o in self.failed + self.contract:
            lines.append(format_failure(o))
        extra = f", {len(self.contract)} contract failure(s) not counted" if self.contract else ""
        extra += f", {len(self.skipped)} not checked" if self.skipped else ""
        lines.append(f"{len(self.passed)} passed, {len(self.failed)} failed{extra}")
        return "\n".join(lines)


def format_failure(o) -> str:
    """A failing Outcome: every distinct failure with its error, counterexample and replay."""
    many = len(o.failures) > 1
    lines = [f"\nFAIL {o.op}/{o.prop} [{o.impl}] ({o.kind}, sizes: {o.sizes})"
             + (f": {len(o.failures)} distinct failures" if many else "")]
    pad = "    " if many else "  "
    for i, f in enumerate(o.failures, 1):
        if many:
            lines.append(f"  ({i})")
        lines.append(f"{pad}error: {f.error}")
        if f.counterexample:
            lines.append(f"{pad}counterexample: {f.counterexample}")
        if f.replay:
            lines.append(f"{pad}replay: {f.replay}")
    return "\n".join(lines)


def check(op: str, fn: Callable | str, *, device: str | None = None, profile: str = "ci",
          sizes: str | None = None, properties: list[str] | None = None, strict: bool = False,
          reproduce: str | None = None, on_result: Callable | None = None,
          dtypes=None) -> Report:
    """Run every property of ``op`` (or those named in ``properties``) on ``fn``, a callable
    with the op's signature or a ``"package.module:function"`` string.

    device: "cpu" | "cuda" (default: cuda if available); profile: "ci" | "dev" | "thorough";
    sizes: "small" | "kernel" | "all" (default $MIXOLOGY_SIZES or all); strict: contract
    failures count too; reproduce: a failure's blob, to replay exactly that example (with
    one property and its sizes); dtypes: the only dtypes ``fn`` supports (names such as
    "float32,bfloat16", or torch dtypes): cases in others are not drawn, and without float64
    the float64-only properties are replaced by ``gradients_against_float64``; the report
    lists what could not be checked, and why. Returns a :class:`Report`; never raises for a failing
    property. Each failure's replay is a `python -m mixology verify --candidate ...` command
    when ``fn`` can be imported by name, else the ``mixology.check(...)`` call that replays it.
    """
    # here, not at the top: `import mixology` stays free of hypothesis and the spec
    from mixology.spec.strategies import sizes_name
    from mixology.verify import runner

    if op not in registry.ops():
        raise ValueError(f"op: unknown op {op!r}; known: {', '.join(registry.ops())}")
    dtypes = runner.parse_dtypes(dtypes, "dtypes")
    fn, target = runner.resolve(fn)
    device = device or registry.default_device()
    props = runner.plan(candidates={op: fn}, device=device, dtypes=dtypes)
    known = [c[5].name for c in props]
    unknown = [p for p in properties or [] if p not in known]
    if unknown:
        raise ValueError(f"properties: {op} has no property {unknown[0]!r}")
    label = f"candidate {target}" if target else f"candidate {getattr(fn, '__name__', fn)!s}"
    replay = props[0][3] if props else ""  # plan's: --candidate OP=target [--dtypes ...]
    report = Report(op, label, device, profile, sizes_name(sizes), strict)
    for p in (c[5] for c in props):
        if properties and p.name not in properties:
            continue
        out = runner.check(p, fn, label, device=device, profile=profile, replay_args=replay,
                           sizes=sizes, reproduce=reproduce)
        if not target:  # a lambda or a local function: replay through the API
            for f in out.failures:
                blob = f.replay.rsplit(" ", 1)[-1] if f.replay else ""
                f.replay = (f"mixology.check({op!r}, fn, properties=[{p.name!r}], sizes="
                            f"{out.sizes!r}, device={device!r}, reproduce={blob!r})"
                            if blob else "")
        report.outcomes.append(out)
        if on_result:
            on_result(out)
    return report
