"""The benchmark's data: secrets, and stacks whose references point at them.

Secrets are ``s0000``, ``s0001``, ... each with two keys (``username``, ``password``). About
10 % of references are broken on purpose: half name a secret that does not exist
(``gone-NN``), half a key that does not exist (``token``). Everything is derived from fixed
seeds, so every run builds the same stacks.
"""

from __future__ import annotations

import random

from stacksecrets import Component, Stack

KEYS = ("username", "password")
REFS_PER_STACK = 20
FLAVOR = "bench_refs"


def secret_name(index: int) -> str:
    return f"s{index:04d}"


def secret_values(index: int) -> dict[str, str]:
    return {"username": f"user-{index}", "password": f"pw-{index}-{random.Random(index).random()}"}


def _ref(name: str, key: str) -> str:
    return "{{" + name + "." + key + "}}"


def _configuration(refs: list[str]) -> dict[str, str]:
    return {f"f{i:02d}": ref for i, ref in enumerate(refs, start=1)}


def realistic_stack(*, broken: bool) -> dict[str, str]:
    """Scenario (a): 20 references to 8 secrets; with ``broken``, 2 of them (10 %) fail."""
    refs = [_ref(secret_name(i % 8), KEYS[(i // 8) % 2]) for i in range(REFS_PER_STACK)]
    if broken:
        refs[5] = _ref("gone-a", "password")  # a missing secret
        refs[13] = _ref(secret_name(3), "token")  # a missing key
    return _configuration(refs)


def platform_stacks(stacks: int = 50, secrets: int = 300) -> dict[str, dict[str, str]]:
    """Scenario (b): ``stacks`` stacks x 20 references over ``secrets`` shared secrets."""
    rng = random.Random(5)
    out = {}
    for s in range(stacks):
        refs = []
        for j in range(REFS_PER_STACK):
            position = s * REFS_PER_STACK + j
            index = position % secrets
            key = KEYS[(position // secrets) % 2]
            roll = rng.random()
            if roll < 0.05:
                refs.append(_ref(f"gone-{rng.randrange(40):02d}", key))
            elif roll < 0.10:
                refs.append(_ref(secret_name(index), "token"))
            else:
                refs.append(_ref(secret_name(index), key))
        out[f"b-{s:02d}"] = _configuration(refs)
    return out


def curve_stacks(unique: int) -> list[Stack]:
    """Scenario (c): stacks that reference ``unique`` secrets, both keys of each (all valid)."""
    refs = [_ref(secret_name(i), key) for i in range(unique) for key in KEYS]
    return [
        Stack(
            f"c{unique}-{n:03d}",
            [
                Component(
                    "experiment_tracker",
                    FLAVOR,
                    "tracker",
                    _configuration(refs[start : start + REFS_PER_STACK]),
                )
            ],
        )
        for n, start in enumerate(range(0, len(refs), REFS_PER_STACK))
    ]


def engine_stacks(stacks: int = 1000, components: int = 5, unique: int = 2000) -> list[Stack]:
    """100,000 references (1,000 stacks x 5 components x 20) for the engine's CPU cost."""
    out = []
    for s in range(stacks):
        parts = []
        for c in range(components):
            base = (s * components + c) * REFS_PER_STACK
            refs = [
                _ref(secret_name((base + j) % unique), KEYS[j % 2]) for j in range(REFS_PER_STACK)
            ]
            parts.append(Component("experiment_tracker", FLAVOR, f"t{c}", _configuration(refs)))
        out.append(Stack(f"e-{s:04d}", parts))
    return out
