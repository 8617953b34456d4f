"""Symbolic values on the stack of the pickle machine.

Constants are plain Python values (``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None``)
when small; large strings and byte strings are :class:`Blob` references (offset and length into
the scanned buffer), never copies. Containers keep at most
:attr:`~mltrust.config.Limits.max_pickle_container_items` items (the default): the analysis
needs small structures (joblib wrapper states, dtype states), not the model's data.
"""

from __future__ import annotations

from mltrust.config import DEFAULT_LIMITS

__all__ = ["Blob", "Global", "Obj", "SDict", "SList", "SSet", "Unknown"]

#: Items kept per symbolic container; the rest are counted but dropped (bound once here: the
#: containers are made in the machine's hot loop, where no configured Limits reaches them).
_ITEMS = DEFAULT_LIMITS.max_pickle_container_items


class Blob:
    """A large ``str``/``bytes`` constant left in the buffer: ``kind`` is ``str`` or ``bytes``."""

    __slots__ = ("kind", "length", "offset")

    def __init__(self, kind: str, offset: int, length: int) -> None:
        self.kind = kind
        self.offset = offset
        self.length = length

    def __repr__(self) -> str:
        return f"<{self.kind} of {self.length} bytes at {self.offset}>"


class Global:
    """The result of GLOBAL/STACK_GLOBAL/INST's import: ``module:name``.

    ``entry`` is its allowlist entry (how it may be used) when allowed. A *restricted* global
    (a nested deserialiser, ``getattr``) is acceptable only as the callable of a direct call
    whose arguments the analyser checked; ``escaped`` records that it flowed anywhere else
    (an argument, a container, BUILD state, the result), ``safe`` counts its checked calls.
    """

    __slots__ = (
        "allowed",
        "entry",
        "escaped",
        "index",
        "module",
        "name",
        "offset",
        "restricted",
        "safe",
    )

    def __init__(
        self,
        module: str,
        name: str,
        offset: int,
        index: int,
        allowed: bool,
        entry: object = None,
        restricted: bool = False,
    ) -> None:
        self.module = module
        self.name = name
        self.offset = offset
        self.index = index
        self.allowed = allowed
        self.entry = entry
        self.restricted = restricted
        self.escaped = False
        self.safe = 0

    @property
    def target(self) -> str:
        return f"{self.module}:{self.name}"

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


class Obj:
    """The result of a call (REDUCE, NEWOBJ, OBJ, INST...) with the state set by BUILD."""

    __slots__ = ("args", "func", "state")

    def __init__(self, func: object, args: object) -> None:
        self.func = func
        self.args = args
        self.state: object = None

    def __repr__(self) -> str:
        return f"{self.func!r}(...)"


class Unknown:
    """A value the analysis cannot know (persistent IDs, buffers, extension codes)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


class SList:
    """A list (or the target of APPEND/APPENDS) with a capped item store."""

    __slots__ = ("count", "items")

    def __init__(self) -> None:
        self.items: list[object] = []
        self.count = 0

    def extend(self, values: list[object]) -> None:
        self.count += len(values)
        room = _ITEMS - len(self.items)
        if room > 0:
            self.items.extend(values[:room])


class SDict:
    """A dict with a capped store of ``(key, value)`` pairs.

    ``index`` maps each string key of the stored pairs to its last value, so :meth:`get` and
    key tests take constant time however often a pickle BUILDs from the same large dict.
    """

    __slots__ = ("count", "index", "items")

    def __init__(self) -> None:
        self.items: list[tuple[object, object]] = []
        self.index: dict[str, object] = {}
        self.count = 0

    def set(self, key: object, value: object) -> None:
        self.count += 1
        if len(self.items) < _ITEMS:
            self.items.append((key, value))
            if type(key) is str:
                self.index[key] = value

    def update(self, flat: list[object]) -> None:
        """Set the pairs of ``flat`` (key, value, key, value...) as SETITEMS does."""
        self.count += len(flat) // 2
        room = _ITEMS - len(self.items)
        for i in range(0, min(len(flat) - 1, 2 * room), 2):
            key = flat[i]
            self.items.append((key, flat[i + 1]))
            if type(key) is str:
                self.index[key] = flat[i + 1]

    def get(self, key: str, default: object = None) -> object:
        return self.index.get(key, default)

    def key_list(self) -> list[object]:
        return [k for k, _ in self.items]


class SSet:
    """A set or frozenset with a capped item store."""

    __slots__ = ("count", "frozen", "items")

    def __init__(self, frozen: bool = False) -> None:
        self.items: list[object] = []
        self.count = 0
        self.frozen = frozen

    def extend(self, values: list[object]) -> None:
        self.count += len(values)
        room = _ITEMS - len(self.items)
        if room > 0:
            self.items.extend(values[:room])
