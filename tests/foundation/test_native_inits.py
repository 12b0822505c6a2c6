"""Classes made on every order are dataclasses with ``init=False`` and a hand-written
``__init__`` (compiled, that ``__init__`` is native: see gateway/core/model.py). The hand-written
one must take exactly the fields (positional ones in order), with the same defaults: checked here on the
pure-Python source so a field added to one place and not the other fails."""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from gateway.common import accel

MODULES = ["gateway.core.model", "gateway.core.orders", "gateway.core.hub", "gateway.core.matching.events",
           "gateway.core.strategies.touch", "gateway.core.strategies.roundtrip"]


def _hand_written(name: str) -> list[type]:
    module = accel.load_pure([name])[name.rsplit(".", 1)[-1]]
    return [c for c in vars(module).values()
            if isinstance(c, type) and c.__module__ == name and dataclasses.is_dataclass(c)
            and not c.__dataclass_params__.init and "__init__" in c.__dict__]


@pytest.mark.parametrize("name", MODULES)
def test_hand_written_inits_take_the_fields_with_their_defaults(name):
    classes = _hand_written(name)
    assert classes, f"{name}: no init=False dataclass with its own __init__ (update MODULES here)"
    for cls in classes:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        fields = [f for f in dataclasses.fields(cls) if f.init]
        positional = [f.name for f in fields if f.kw_only is not True]
        assert [p.name for p in params][:len(positional)] == positional, cls.__name__
        assert sorted(p.name for p in params) == sorted(f.name for f in fields), cls.__name__
        by_name = {p.name: p for p in params}       # keyword-only: any order
        for f in fields:
            p = by_name[f.name]
            if f.default is not dataclasses.MISSING:
                assert p.default == f.default, f"{cls.__name__}.{f.name}: {p.default!r} != {f.default!r}"
            elif f.default_factory is not dataclasses.MISSING:
                assert p.default is None, f"{cls.__name__}.{f.name}: a factory field takes None"
            else:
                assert p.default is inspect.Parameter.empty, f"{cls.__name__}.{f.name} must be required"
            assert (p.kind is inspect.Parameter.KEYWORD_ONLY) == (f.kw_only is True), f"{cls.__name__}.{f.name}"


def test_every_module_with_hand_written_inits_is_checked():
    import re
    from gateway.common.paths import REPO_ROOT
    found = {name for name in accel.MODULES
             if re.search(r"@dataclass\([^)]*init=False", accel.source(name, REPO_ROOT).read_text())}
    assert found <= set(MODULES), sorted(found - set(MODULES))
