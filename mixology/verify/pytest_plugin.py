"""pytest plugin (entry point ``pytest11``): the spec as test items in any pytest run.

    pytest --mixology-candidate rms_norm=pkg.mod:my_rms_norm [--mixology-profile dev]
           [--mixology-sizes small|kernel|all] [--mixology-device cpu|cuda] [-n 4]

adds one test item per property of the op, named ``mixology::rms_norm::<property>``, with its
own pass/fail and, on failure, the error, the counterexample and a replay command.
``--mixology-verify`` adds the registered implementations instead (what ``python -m mixology
verify -n N`` runs under pytest-xdist), filtered by ``--mixology-op`` and ``--mixology-impl``.
"""

from __future__ import annotations

import json
import os

import pytest


def pytest_addoption(parser):
    g = parser.getgroup("mixology", "the mixology spec as test items")
    g.addoption("--mixology-candidate", action="append", default=[], metavar="OP=MOD:FN",
                help="check this callable against OP's spec (repeatable)")
    g.addoption("--mixology-verify", action="store_true",
                help="check the registered implementations")
    g.addoption("--mixology-dtypes", default=None, metavar="LIST",
                help="the candidates' only dtypes, e.g. float32,bfloat16")
    g.addoption("--mixology-op", action="append", default=[], help="only this op")
    g.addoption("--mixology-impl", action="append", default=[], help="only this implementation")
    g.addoption("--mixology-property", action="append", default=[], help="only this property")
    g.addoption("--mixology-profile", default=None, help="ci | dev | thorough (default: ci)")
    g.addoption("--mixology-sizes", default=None, help="small | kernel | all")
    g.addoption("--mixology-device", default=None, help="cpu | cuda (default: cuda if any)")
    g.addoption("--mixology-report", default=None, metavar="JSONL",
                help="append each outcome as a JSON line here (used by verify -n N)")


class SpecFailure(Exception):
    pass


class SpecItem(pytest.Item):
    """One property of one op on one implementation."""

    def __init__(self, *, op, prop, fn, label, replay, cost, **kw):
        super().__init__(**kw)
        self.op, self.prop, self.fn, self.label = op, prop, fn, label
        self.replay, self.cost = replay, cost
        self.outcome = None

    def runtest(self):
        from mixology.verify import runner  # on use: the plugin loads in every pytest run

        cfg = self.config
        device = cfg.getoption("mixology_device") or _default_device()
        self.outcome = runner.check(self.prop, self.fn, self.label, device=device,
                                    profile=cfg.getoption("mixology_profile") or "ci",
                                    replay_args=self.replay, cost=self.cost,
                                    sizes=cfg.getoption("mixology_sizes"))
        path = cfg.getoption("mixology_report")
        if path:
            _append(path, self.outcome)
        if self.outcome.skipped:
            pytest.skip(f"not checked: {self.outcome.skipped}")
        lenient = not cfg.getoption("mixology_verify") and self.outcome.kind == "contract"
        if not self.outcome.ok and not lenient:
            raise SpecFailure()
        if not self.outcome.ok:
            self.add_marker(pytest.mark.xfail(reason="contract", strict=False))
            pytest.xfail("contract failure (bad input not refused with a ValueError/TypeError "
                         "naming the argument); counted only by verify --strict")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, SpecFailure) and self.outcome is not None:
            from mixology.verify.api import format_failure  # on use: the plugin loads in every pytest run

            return format_failure(self.outcome).strip()
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"mixology::{self.op}::{self.prop.name} [{self.label}]"


def _default_device():
    from mixology import registry  # on use: the plugin loads in every pytest run

    return registry.default_device()


def _append(path, o):
    row = {"op": o.op, "impl": o.impl, "prop": o.prop, "ok": o.ok, "seconds": o.seconds,
           "sizes": o.sizes, "kind": o.kind, "skipped": o.skipped,
           "failures": [{"error": f.error, "counterexample": f.counterexample,
                         "replay": f.replay} for f in o.failures]}
    with open(path, "a") as f:  # one short line per write: safe from several workers
        f.write(json.dumps(row) + "\n")


def _checks(config):
    """(op, label, fn, replay args, cost, property) of what the options ask for: the same
    plan as ``mixology verify`` (runner.plan); bad options are a pytest usage error."""
    from mixology.verify import runner  # on use: the plugin loads in every pytest run

    verify = config.getoption("mixology_verify")
    try:
        candidates = runner.parse_candidates(config.getoption("mixology_candidate"),
                                             "--mixology-candidate")
        if not candidates and not verify:
            return []
        return runner.plan(config.getoption("mixology_op") if not candidates else None,
                           config.getoption("mixology_impl") or None,
                           config.getoption("mixology_property") or None,
                           device=config.getoption("mixology_device") or _default_device(),
                           candidates=candidates,
                           dtypes=runner.parse_dtypes(config.getoption("mixology_dtypes"),
                                                      "--mixology-dtypes"))
    except ValueError as e:
        raise pytest.UsageError(str(e).splitlines()[0]) from e


def pytest_collection_modifyitems(session, config, items):
    for op, label, fn, replay, cost, p in _checks(config):
        items.append(SpecItem.from_parent(
            session, name=f"mixology::{op}::{p.name}[{label}]", op=op, prop=p, fn=fn,
            label=label, replay=replay, cost=cost))


def pytest_configure(config):
    if config.getoption("mixology_verify") or config.getoption("mixology_candidate"):
        os.environ.setdefault("MIXOLOGY_POISON", "1")  # unwritten kernel output is NaN
        _pin_worker_to_a_gpu()


def _pin_worker_to_a_gpu():
    """Under pytest-xdist with several GPUs, worker gwK uses GPU K mod count."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    import torch  # on use: the plugin loads in every pytest run

    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        torch.cuda.set_device(int(worker[2:]) % torch.cuda.device_count())
