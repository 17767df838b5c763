"""The store contract (``docs/stores.md``) as one reusable test class.

A store joins the suite with one factory: a function from the pytest request to a
``StoreTarget`` (how to open a fresh store, which credentials must never show, where the store
still disagrees with the contract). ``tests/test_store_conformance.py`` lists the factories of
the stores stacksecrets ships and runs ``StoreContract`` against each, on asyncio and trio::

    def my_store(request: pytest.FixtureRequest) -> StoreTarget:
        return StoreTarget(open=lambda: MyStore(...), credentials=("the-token",))

A third-party store reuses it the same way: subclass ``StoreContract`` in a ``Test*`` class and
give a ``store_target`` fixture.

Every test names its secrets through ``names`` (a prefix no other test uses), so stores that
live on a shared server (one ZenML server per test session) never see two tests collide.
"""

from __future__ import annotations

import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any

import anyio
import attrs
import pytest

from stacksecrets import (
    ClosedError,
    ConfigurationError,
    ForbiddenError,
    Secret,
    SecretExistsError,
    SecretNotFoundError,
    StackSecretsError,
)
from stacksecrets.stores import SecretStore, StoreCapabilities

#: Values that must come back exactly: empty, NUL, control characters, astral planes,
#: combining marks, leading and trailing blanks, long.
ODD_VALUES = {
    "empty": "",
    "nul": "a\x00b",
    "control": "tab\there\nnew line\r\x1b[0m",
    "unicode": "ünïcödé 名前 \U0001f600 e\u0301",
    "blanks": "  padded  ",
    "long": "x" * 10_000,
    "json-ish": '{"a": [1, "\\u0000"]}',
}
#: Names that are odd but valid: each must be its own secret, found only by itself.
ODD_NAMES = [
    "sp ace",
    "dot.ted",
    "slash/ed",
    "ünï-名前",
    "new\nline",
    "trailing ",
    "UPPER",
    "upper",
    "%2e%2e",
    "\U0001f600",
]


@attrs.frozen
class StoreTarget:
    """One store under test.

    ``open`` makes a new, not yet entered store (on the same data each time, where the data
    lives outside the store object: a file, a server). ``credentials``
    are strings that must never show (passwords, tokens, keys). ``gaps`` maps a contract test's
    name to why this store does not meet it yet: the test runs as a strict xfail, so it fails
    the day the store is fixed and the gap must be removed. ``cleanup`` runs after each test.
    """

    open: Callable[[], SecretStore]
    credentials: tuple[str, ...] = attrs.field(default=(), repr=False)
    gaps: Mapping[str, str] = attrs.field(factory=dict)
    cleanup: Callable[[str], None] | None = None
    #: For a read-only store: puts a secret where the store reads it (sets environment
    #: variables, writes a mounted file). The tests then read what it put; the tests of
    #: writes are skipped, and the store must refuse every write instead.
    put: Callable[[str, Mapping[str, str]], None] | None = None


StoreFactory = Callable[[pytest.FixtureRequest], StoreTarget]


class Names:
    """Secret names unique to one test: ``names("db")`` is ``"<prefix>db"``."""

    def __init__(self) -> None:
        self.prefix = f"c{uuid.uuid4().hex[:8]}-"

    def __call__(self, name: str) -> str:
        return self.prefix + name

    def mine(self, listed: Sequence[str], *others: object) -> list[str]:
        """The names of ``listed`` this test could have made (its prefix, or one of
        ``others``): a server shared with other tests running at once lists theirs too."""
        return [n for n in listed if n.startswith(self.prefix) or n in others]


async def seed(store: SecretStore, secrets: Mapping[str, Mapping[str, str]]) -> None:
    """Create ``secrets`` through the store, eight at a time."""
    limiter = anyio.CapacityLimiter(8)

    async def one(name: str, values: Mapping[str, str]) -> None:
        async with limiter:
            await store.create_secret(name, values)

    async with anyio.create_task_group() as group:
        for name, values in secrets.items():
            group.start_soon(one, name, values)


async def values_of(store: SecretStore, name: str) -> dict[str, str]:
    return (await store.get_secret(name)).secret_values


def shows_none(texts: Collection[str], forbidden: Collection[str]) -> list[str]:
    """Which texts (by number) hold a forbidden string; never the strings themselves."""
    return [
        f"text #{i} holds a forbidden string"
        for i, text in enumerate(texts)
        if any(bad and bad in text for bad in forbidden)
    ]


# Bad writes every store refuses before changing anything: (name, values, remove_keys).
BAD_WRITES: dict[str, tuple[Any, Any, Any]] = {
    "empty-name": ("", {"k": "v"}, ()),
    "name-not-a-string": (42, {"k": "v"}, ()),
    "values-not-a-mapping": ("NAME", [("k", "hidden-value-1")], ()),
    "value-not-a-string": ("NAME", {"k": 987654321}, ()),
    "value-none": ("NAME", {"k": None}, ()),
    "key-not-a-string": ("NAME", {7: "hidden-value-2"}, ()),
    "empty-key": ("NAME", {"": "hidden-value-3"}, ()),
    "lone-surrogate-value": ("NAME", {"k": "hidden-\udc80-value"}, ()),
    "lone-surrogate-key": ("NAME", {"k\ud800": "hidden-value-4"}, ()),
    "remove-keys-a-string": ("NAME", {}, "password"),
    "set-and-removed": ("NAME", {"k": "hidden-value-5"}, ["k"]),
}


Put = Callable[[Mapping[str, Mapping[str, str]]], Awaitable[None]]


def needs_writes(store: SecretStore) -> None:
    """Skip a test of write semantics for a read-only store (which refuses every write:
    ``test_writes_match_the_writable_capability``)."""
    if not store.capabilities.writable:
        pytest.skip("a read-only store: it refuses every write, which another test checks")


class StoreContract:
    """Every rule of docs/stores.md, for the store given by the ``store_target`` fixture."""

    @pytest.fixture
    def put(self, store: Any, store_target: StoreTarget) -> Put:
        """Makes secrets: through the store, or the target's ``put`` for a read-only one."""

        async def put(secrets: Mapping[str, Mapping[str, str]]) -> None:
            if store.capabilities.writable:
                await seed(store, secrets)
                return
            assert store_target.put is not None, "a read-only store's target needs put"
            for name, values in secrets.items():
                store_target.put(name, values)

        return put

    @pytest.fixture
    def names(self, store_target: StoreTarget) -> Iterator[Names]:
        names = Names()
        yield names
        if store_target.cleanup is not None:
            store_target.cleanup(names.prefix)

    @pytest.fixture
    async def store(self, store_target: StoreTarget, anyio_backend: str) -> AsyncIterator[Any]:
        async with store_target.open() as store:
            yield store

    # -- what the store says about itself

    @pytest.mark.anyio
    async def test_is_a_secret_store_with_sane_capabilities(self, store: Any) -> None:
        """The store satisfies the protocol; its capabilities are a constant
        ``StoreCapabilities`` with a positive ``max_batch`` or none; it has a description."""
        assert isinstance(store, SecretStore)
        capabilities = store.capabilities
        assert isinstance(capabilities, StoreCapabilities)
        assert capabilities.max_batch is None or capabilities.max_batch >= 1
        assert capabilities == store.capabilities  # constant
        assert isinstance(store.description, str)
        assert store.description

    @pytest.mark.anyio
    async def test_writes_match_the_writable_capability(self, store: Any, names: Names) -> None:
        """A read-only store refuses every write with ``ForbiddenError`` and changes nothing;
        a writable one creates."""
        name = names("w")
        if store.capabilities.writable:
            await store.create_secret(name, {"k": "v"})
            assert await store.secrets_exist([name]) == {name}
            return
        before = names.mine(await store.list_secrets())
        for call in (
            lambda: store.create_secret(name, {"k": "v"}),
            lambda: store.update_secret(name, {"k": "v"}),
            lambda: store.delete_secret(name),
        ):
            with pytest.raises(ForbiddenError):
                await call()
        assert names.mine(await store.list_secrets()) == before

    # -- reads and writes, by exact name

    @pytest.mark.anyio
    async def test_created_secret_reads_back_exactly(
        self, store: Any, names: Names, put: Put
    ) -> None:
        """create then get: the same name, exactly the values given (odd ones too), every key
        readable; the name shows in ``list_secrets`` and ``secrets_exist``."""
        name = names("db")
        await put({name: ODD_VALUES})
        secret = await store.get_secret(name)
        assert isinstance(secret, Secret)
        assert secret.name == name
        assert secret.secret_values == ODD_VALUES
        assert secret.unreadable_keys == frozenset()
        assert name in await store.list_secrets()
        assert await store.secrets_exist([name]) == {name}

    @pytest.mark.anyio
    async def test_odd_but_valid_names_are_each_their_own_secret(
        self, store: Any, names: Names, put: Put
    ) -> None:
        """Names with blanks, dots, slashes, newlines, unicode, case differences and
        trailing blanks each hold their own values and are found only by themselves."""
        wanted = {names(odd): {"which": str(i)} for i, odd in enumerate(ODD_NAMES)}
        await put(wanted)
        for name, values in wanted.items():
            assert await values_of(store, name) == values, repr(name)
        assert await store.secrets_exist([*wanted, names("Upper"), names("trailing")]) == set(
            wanted
        )
        with pytest.raises(SecretNotFoundError):
            await store.get_secret(names("trailing"))  # "trailing " exists; no stripping
        listed = [n for n in await store.list_secrets() if n.startswith(names.prefix)]
        assert listed == sorted(wanted)

    @pytest.mark.anyio
    async def test_names_are_exact_never_a_prefix(self, store: Any, names: Names, put: Put) -> None:
        """With ``db``, ``db-old`` and 25 names starting with ``db``, every read and write
        touches exactly the name given; a prefix of a name is not a name."""
        db, old = names("db"), names("db-old")
        similar = {names(f"db{suffix}-{i}"): {"i": str(i)} for i, suffix in enumerate("_-.x" * 6)}
        similar.update({names("db-extra"): {"i": "extra"}})
        assert len(similar) == 25
        await put({db: {"password": "db-1"}, old: {"password": "old-1"}, **similar})

        assert await values_of(store, db) == {"password": "db-1"}
        for missing in (names("d"), names("db-"), names("db-ol"), names("DB"), names("db ")):
            with pytest.raises(SecretNotFoundError):
                await store.get_secret(missing)
        asked = [db, names("d"), names("db-"), names("DB"), old, *similar]
        assert await store.secrets_exist(asked) == {db, old, *similar}
        if not store.capabilities.writable:
            return

        await store.update_secret(db, {"password": "db-2"})
        assert await values_of(store, old) == {"password": "old-1"}
        await store.delete_secret(db)
        assert await values_of(store, old) == {"password": "old-1"}
        assert await store.secrets_exist([db, old, *similar]) == {old, *similar}
        for name, values in similar.items():
            assert await values_of(store, name) == values

    @pytest.mark.anyio
    async def test_secrets_exist_answers_a_mix_exactly(
        self, store: Any, names: Names, put: Put
    ) -> None:
        """Present, missing and repeated names in one call, more than ``max_batch`` of them:
        exactly the present ones; no names is an empty answer."""
        present = [names(f"here-{i}") for i in range(3)]
        await put({name: {"k": "v"} for name in present})
        batch = store.capabilities.max_batch or 50
        missing = [names(f"gone-{i}") for i in range(2 * batch + 1)]
        asked = [missing[0], present[0], *missing[1:], *present, present[1]]
        assert await store.secrets_exist(asked) == frozenset(present)
        assert await store.secrets_exist(missing) == frozenset()
        assert await store.secrets_exist([]) == frozenset()

    @pytest.mark.anyio
    async def test_list_secrets_is_sorted_and_unique(
        self, store: Any, names: Names, put: Put
    ) -> None:
        """Every name once, in ``str`` order (uppercase before lowercase, by code point)."""
        made = [names(n) for n in ("b", "a", "B", "a-1", "\u00e9", "a.1")]
        await put({name: {"k": "v"} for name in made})
        listed = await store.list_secrets()
        assert listed == sorted(set(listed))
        assert [n for n in listed if n.startswith(names.prefix)] == sorted(made)

    @pytest.mark.anyio
    async def test_a_missing_secret_is_a_key_error_naming_it(
        self, store: Any, names: Names
    ) -> None:
        """get of a name that does not exist: ``SecretNotFoundError``, a ``KeyError``, whose
        message and ``name`` say which."""
        name = names("nowhere")
        with pytest.raises(KeyError) as caught:
            await store.get_secret(name)
        assert isinstance(caught.value, SecretNotFoundError)
        assert caught.value.name == name
        assert repr(name) in str(caught.value)

    @pytest.mark.anyio
    async def test_creating_a_taken_name_fails_and_keeps_the_original(
        self, store: Any, names: Names
    ) -> None:
        """A second create of one name: ``SecretExistsError``; the first secret unchanged."""
        needs_writes(store)
        name = names("taken")
        await store.create_secret(name, {"user": "first"})
        with pytest.raises(SecretExistsError) as caught:
            await store.create_secret(name, {"user": "second", "extra": "x"})
        assert caught.value.name == name
        assert await values_of(store, name) == {"user": "first"}

    @pytest.mark.anyio
    async def test_update_sets_replaces_and_removes_keys(self, store: Any, names: Names) -> None:
        """update adds and replaces ``values`` and removes ``remove_keys``; other keys stay; a
        key to remove that is not there is no error; removing every key leaves an empty
        secret that still exists."""
        needs_writes(store)
        name = names("app")
        await store.create_secret(name, {"user": "u", "password": "p1", "old": "o"})
        await store.update_secret(name, {"password": "p2", "new": ""}, remove_keys=["old"])
        assert await values_of(store, name) == {"user": "u", "password": "p2", "new": ""}
        await store.update_secret(name, {}, remove_keys=("never-there",))
        assert await values_of(store, name) == {"user": "u", "password": "p2", "new": ""}
        await store.update_secret(name, {}, remove_keys={"user", "password", "new"})
        assert (await store.get_secret(name)).keys == frozenset()
        assert await store.secrets_exist([name]) == {name}

    @pytest.mark.anyio
    async def test_update_or_delete_of_a_missing_secret_fails_and_creates_nothing(
        self, store: Any, names: Names
    ) -> None:
        """update and delete of a name that does not exist: ``SecretNotFoundError``; the name
        still does not exist afterwards."""
        needs_writes(store)
        name = names("ghost")
        with pytest.raises(SecretNotFoundError):
            await store.update_secret(name, {"k": "v"})
        with pytest.raises(SecretNotFoundError):
            await store.delete_secret(name)
        assert await store.secrets_exist([name]) == frozenset()

    @pytest.mark.anyio
    async def test_deleted_secret_is_gone(self, store: Any, names: Names) -> None:
        """After delete, get raises not found, exists says no, and the name can be created
        again from scratch."""
        needs_writes(store)
        name = names("short-lived")
        await store.create_secret(name, {"a": "1", "b": "2"})
        await store.delete_secret(name)
        with pytest.raises(SecretNotFoundError):
            await store.get_secret(name)
        assert await store.secrets_exist([name]) == frozenset()
        assert name not in await store.list_secrets()
        await store.create_secret(name, {"c": "3"})
        assert await values_of(store, name) == {"c": "3"}

    @pytest.mark.anyio
    @pytest.mark.parametrize("case", list(BAD_WRITES))
    async def test_bad_writes_are_refused_without_showing_values(
        self, store: Any, names: Names, case: str
    ) -> None:
        """A name, key or value outside the shared rules: ``ConfigurationError`` on create and
        on update, naming the problem but no value, and nothing changes."""
        needs_writes(store)
        raw_name, values, remove_keys = BAD_WRITES[case]
        name = names("bad") if raw_name == "NAME" else raw_name
        hidden = [v for v in (values.values() if isinstance(values, dict) else []) if v]
        hidden += ["hidden-value-1", "987654321"]
        if isinstance(name, str) and name:
            await store.create_secret(name, {"kept": "yes"})
        before = names.mine(await store.list_secrets(), raw_name)
        errors: list[StackSecretsError] = []
        if not remove_keys:
            with pytest.raises(ConfigurationError) as created:
                await store.create_secret(name if name == raw_name else names("bad2"), values)
            errors.append(created.value)
        with pytest.raises(ConfigurationError) as updated:
            await store.update_secret(name, values, remove_keys=remove_keys)
        errors.append(updated.value)
        texts = [str(error) for error in errors]
        assert not shows_none(texts, [str(v) for v in hidden])
        if isinstance(name, str) and name:
            assert repr(name) in texts[-1]
        assert names.mine(await store.list_secrets(), raw_name) == before
        if isinstance(name, str) and name:
            assert await values_of(store, name) == {"kept": "yes"}

    # -- life cycle

    @pytest.mark.anyio
    async def test_a_closed_store_refuses_every_call(
        self, store_target: StoreTarget, names: Names, anyio_backend: str
    ) -> None:
        """After ``aclose`` every method raises ``ClosedError``; ``aclose`` again is a no-op;
        entering the closed store raises ``ClosedError`` too."""
        store = store_target.open()
        async with store:
            await store.secrets_exist([names("x")])  # opened for real (connections, files)
        await store.aclose()
        calls = {
            "get_secret": lambda: store.get_secret(names("x")),
            "secrets_exist": lambda: store.secrets_exist([names("x")]),
            "list_secrets": store.list_secrets,
            "create_secret": lambda: store.create_secret(names("x"), {"k": "v"}),
            "update_secret": lambda: store.update_secret(names("x"), {"k": "v"}),
            "delete_secret": lambda: store.delete_secret(names("x")),
        }
        refused: dict[str, bool] = {}
        for method, call in calls.items():
            try:
                await call()
            except ClosedError:
                refused[method] = True
            else:
                refused[method] = False
        assert all(refused.values()), refused
        with pytest.raises(ClosedError):
            async with store:
                pass

    @pytest.mark.anyio
    async def test_no_value_or_credential_shows(
        self, store: Any, store_target: StoreTarget, names: Names, put: Put
    ) -> None:
        """repr, description, a Secret's repr and str, and the messages of not-found, exists
        (or read-only) and closed errors hold no secret value and no credential."""
        name = names("shown")
        values = {"password": "pw-" + uuid.uuid4().hex, "token": "tk-" + uuid.uuid4().hex}
        await put({name: values})
        secret = await store.get_secret(name)
        texts = [repr(store), str(store), store.description, repr(secret), str(secret)]
        for call in (
            lambda: store.get_secret(names("missing")),
            lambda: store.create_secret(name, values),
            lambda: store.update_secret(names("missing"), values),
        ):
            with pytest.raises(StackSecretsError) as caught:
                await call()
            texts.extend([str(caught.value), repr(caught.value)])
        assert not shows_none(texts, [*values.values(), *store_target.credentials])

    @pytest.mark.anyio
    async def test_many_calls_at_once(self, store: Any, names: Names, put: Put) -> None:
        """50 gets of 5 secrets at once, beside 5 creates (puts before, for a read-only
        store) and 5 existence calls: each get with the right values, each existence answer
        right, no create lost."""
        first = {names(f"s{i}"): {"i": str(i), "v": "x" * i} for i in range(5)}
        await put(first)
        later = {names(f"late{i}"): {"i": str(i)} for i in range(5)}
        writable = store.capabilities.writable
        if not writable:
            await put(later)
        order = list(first)
        got: dict[int, dict[str, str]] = {}
        exists: list[frozenset[str]] = []

        async def get(number: int) -> None:
            got[number] = await values_of(store, order[number % len(order)])

        async def exist() -> None:
            exists.append(await store.secrets_exist(order))

        async with anyio.create_task_group() as group:
            for number in range(50):
                group.start_soon(get, number)
            for name, values in later.items():
                if writable:
                    group.start_soon(store.create_secret, name, values)
                group.start_soon(exist)
        assert got == {number: first[order[number % len(order)]] for number in range(50)}
        assert exists == [frozenset(first)] * len(later)
        assert await store.secrets_exist([*first, *later]) == {*first, *later}
