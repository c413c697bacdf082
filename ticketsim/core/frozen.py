"""Frozen data classes without ``dataclasses``: every value class of ticketsim's.

They began with what buyer processes build. Under ``spawn`` every buyer is a fresh
interpreter, which imports and builds every class of the modules it runs.
``dataclasses`` imports ``inspect`` (and with it ``ast``, ``dis`` and ``tokenize``),
and builds each class by compiling six methods from source: in a spawned buyer, that
was more than half of the time it took to import ticketsim; ``ticketsim run`` builds
the parent's classes on its way to the sale.
``@frozen`` compiles one method, the class's ``__init__``; ``__repr__``, ``__eq__``,
``__hash__`` and the ``__setattr__`` that refuses are shared by every such class.

``@frozen`` is ``@dataclass(frozen=True)`` for what ticketsim uses of it: fields from
the annotations (a base's first, in order), defaults, :func:`field` with
``default_factory``, ``init``, ``compare`` and ``repr``, and ``slots``, ``kw_only`` and
``order`` for the class; each method only where the class defines none. Assigning to a
field raises :class:`FrozenInstanceError`, an ``AttributeError`` as ``dataclasses``'
own is.

To ``dataclasses``' functions (``replace``, ``fields``, ``asdict``, ``is_dataclass``)
these classes are dataclasses, and a ``@dataclass`` may subclass one: code that handles
the library's data as the dataclasses it documents keeps working. That view is made on
first use, importing ``dataclasses`` in the process that asks, never in a buyer.
:func:`replace` is ``dataclasses.replace`` to a type checker, and ``copy.replace``
(Python 3.13) works too. A ``@frozen`` class may not subclass a ``@dataclass``.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import sys
from operator import attrgetter, ge, gt, le, lt
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

if TYPE_CHECKING:
    from collections.abc import Callable
    from dataclasses import replace as replace  # noqa: PLC0414 - re-exported

    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_kwargs: object) -> Callable[[T], T]:
        return lambda target: target


T = TypeVar("T")

#: The class attribute holding a ``@frozen`` class's fields, in ``__init__``'s order.
FIELDS: Final = "__record_fields__"
_KEY: Final = "__record_key__"
_SHOWN: Final = "__record_repr__"
#: ``(kw_only, order)`` as the nearest ``@frozen`` class was made with.
_FLAGS: Final = "__record_flags__"


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class Field:
    """How one field behaves (:func:`field`); ``name`` and ``type`` are set by ``@frozen``."""

    __slots__ = (
        "compare", "default", "default_factory", "init", "kw_only", "name", "repr", "type"
    )  # fmt: skip

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Any = MISSING,
        *,
        compare: bool = True,
        repr: bool = True,
        init: bool = True,
    ) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("a field takes a default or a default_factory, not both")
        self.name, self.type = "", ""
        self.default, self.default_factory = default, default_factory
        self.compare, self.repr, self.init = compare, repr, init
        #: Set by ``@frozen(kw_only=True)`` for the fields of the class it makes.
        self.kw_only = False

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r})"


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | _Missing = MISSING,
    compare: bool = True,
    repr: bool = True,
    init: bool = True,
) -> Any:
    """A field's default and behaviour, as ``dataclasses.field`` takes them."""
    return Field(default, default_factory, compare=compare, repr=repr, init=init)


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a ``@frozen`` class's instance."""


@overload
@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def frozen(cls: type[T], /) -> type[T]: ...


@overload
def frozen(
    *, slots: bool = False, kw_only: bool = False, order: bool = False
) -> Callable[[type[T]], type[T]]: ...


def frozen(
    cls: type[T] | None = None,
    /,
    *,
    slots: bool = False,
    kw_only: bool = False,
    order: bool = False,
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make ``cls`` a frozen data class: ``@frozen``, or ``@frozen(slots=True)``; with
    ``kw_only``, its own fields are keyword-only in ``__init__``; with ``order``, its
    instances compare with ``<`` and the like as the tuples of their compared fields."""

    def make(target: type[T]) -> type[T]:
        return _build(target, slots=slots, kw_only=kw_only, order=order)

    return make if cls is None else make(cls)


if not TYPE_CHECKING:  # a type checker checks each change as dataclasses.replace's

    def replace(obj, /, **changes):
        """A copy of ``obj`` with ``changes``, as ``dataclasses.replace`` makes it."""
        cls = type(obj)
        fields = _fields_here(cls)
        if fields is None:  # a @dataclass subclass, with fields that dataclasses know
            return sys.modules["dataclasses"].replace(obj, **changes)
        for f in fields:
            if not f.init:
                if f.name in changes:
                    raise ValueError(f"field {f.name!r} is not set by __init__: it cannot change")
            elif f.name not in changes:
                changes[f.name] = getattr(obj, f.name)
        return cls(**changes)


def _fields_here(cls: type) -> tuple[Field, ...] | None:
    """The fields of ``cls``: those of the nearest ``@frozen`` class it is or derives
    from, or ``None`` if a ``@dataclass`` subclass of one comes first (its fields are
    dataclasses' to give, and ``dataclasses`` is imported, since it made the class)."""
    for klass in cls.__mro__:
        if _by_dataclasses(klass):
            return None
        fields: tuple[Field, ...] | None = klass.__dict__.get(FIELDS)
        if fields is not None:
            return fields
    raise TypeError(f"replace() takes a @frozen class's instance, not {cls.__name__}")


def _names(cls: type) -> tuple[str, ...]:
    fields = _fields_here(cls)
    if fields is None:
        return tuple(f.name for f in sys.modules["dataclasses"].fields(cls))
    return tuple(f.name for f in fields)


def _by_dataclasses(klass: type) -> bool:
    """Whether ``@dataclass`` made ``klass`` (not ``@frozen``, nor a view of one)."""
    params = klass.__dict__.get("__dataclass_params__")
    return params is not None and not isinstance(params, _AsDataclass | _Params)


def _text(annotation: object) -> str:
    """An annotation as written (postponed) or as ``repr`` shows it (evaluated)."""
    return annotation if isinstance(annotation, str) else repr(annotation)


def _is_class_var(annotation: object) -> bool:
    return _text(annotation).startswith(("ClassVar", "typing.ClassVar"))


def _is_kw_only_marker(annotation: object) -> bool:
    return _text(annotation) in {"KW_ONLY", "dataclasses.KW_ONLY", "<class 'dataclasses.KW_ONLY'>"}


def _fields_of(cls: type, *, kw_only: bool) -> dict[str, Field]:
    found: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        own = base.__dict__
        if _by_dataclasses(base):
            raise TypeError(f"@frozen {cls.__qualname__} cannot subclass the dataclass "
                            f"{base.__qualname__}: make {base.__qualname__} @frozen")  # fmt: skip
        found.update({f.name: f for f in own.get(FIELDS, ())})
    # Not inspect.get_annotations: a buyer does not import inspect (see above).
    annotations = _annotated(cls)
    for name, annotation in annotations.items():
        if _is_class_var(annotation):
            continue
        if _is_kw_only_marker(annotation):
            raise TypeError(f"{cls.__qualname__}.{name}: @frozen takes no KW_ONLY marker; "
                            "use @frozen(kw_only=True) on a class of its own")  # fmt: skip
        value = cls.__dict__.get(name, MISSING)
        if value is MISSING and name in found:
            # As dataclasses (which find it on the class): a field declared again
            # keeps the default a base gave it.
            value = found[name].default
        made = value if isinstance(value, Field) else Field(value)
        made.name, made.type, made.kw_only = name, annotation, kw_only
        if made.default is not MISSING and type(made.default).__hash__ is None:
            raise ValueError(f"{cls.__qualname__}.{name}: a mutable default "
                             f"{type(made.default).__name__} would be shared by every "
                             "instance: use default_factory")  # fmt: skip
        found[name] = made
        # As dataclasses leave it: the default on the class, or no attribute at all.
        if made.default is MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, made.default)
    return found


def _init(cls: type, fields: tuple[Field, ...]) -> Callable[..., None]:
    """``__init__``, compiled from source once for the class, as dataclasses do it:
    a generic one would cost every instance made, and events are made by the million."""
    helpers: dict[str, Any] = {"__frozen_set": object.__setattr__, "__frozen_missing": MISSING}
    # As dataclasses: a field may be called self, and the instance then goes by another name.
    me = "__frozen_self" if "self" in {f.name for f in fields} else "self"
    params: list[str] = []
    keywords: list[str] = []
    body: list[str] = []
    defaulted = False
    # As dataclasses: keyword-only fields come last in __init__, and may have no default
    # after one that has.
    for f in sorted(fields, key=lambda f: f.kw_only):
        named = keywords if f.kw_only else params
        name = f.name
        if f.default is not MISSING:
            helpers[f"__frozen_d_{name}"] = f.default
            made = f"__frozen_d_{name}"
        elif f.default_factory is not MISSING:
            helpers[f"__frozen_f_{name}"] = f.default_factory
            made = f"__frozen_f_{name}()"
        else:
            made = ""
        value = made
        if f.init and not made:
            if defaulted and not f.kw_only:
                raise TypeError(
                    f"{cls.__qualname__}.{name} has no default but follows one that has"
                )
            named.append(name)
            value = name
        elif f.init:
            defaulted = True
            factory = f.default_factory is not MISSING
            named.append(f"{name}=__frozen_missing" if factory else f"{name}={made}")
            value = f"{made} if {name} is __frozen_missing else {name}" if factory else name
        elif not made:
            raise TypeError(f"{cls.__qualname__}.{name} has init=False and no default")
        body.append(f"__frozen_set({me}, {name!r}, {value})")
    if keywords:
        params += ["*", *keywords]
    if hasattr(cls, "__post_init__"):
        body.append(f"{me}.__post_init__()")
    # As dataclasses: the helpers reach __init__ through a closure, and its globals are
    # its class's module's, in which the annotations of its parameters mean something.
    source = (
        f"def __make__({', '.join(helpers)}):\n"
        f"    def __init__({', '.join([me, *params])}):\n"
        + "".join(f"        {line}\n" for line in body or ["pass"])
        + "    return __init__\n"
    )
    scope: dict[str, Any] = {}
    module = sys.modules.get(cls.__module__)
    exec(source, module.__dict__ if module else {}, scope)  # made above of the field names
    init: Callable[..., None] = scope["__make__"](**helpers)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = {f.name: f.type for f in fields if f.init} | {"return": None}
    return init


def _repr(self: object) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in getattr(self, _SHOWN))
    return f"{type(self).__qualname__}({shown})"


def _eq(self: object, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented  # type: ignore[no-any-return]
    key: Callable[[object], object] = self.__record_key__  # type: ignore[attr-defined]
    return key(self) == key(other)


def _order(cls: type, key: Callable[[object], object]) -> dict[str, Callable[..., bool]]:
    """``__lt__`` and the like for ``cls``, made once for the class that asked for order:
    as dataclasses, they compare the fields of that class, also in a subclass of it
    (which inherits them), and only instances of the very same class."""

    def made(compare: Callable[[Any, Any], bool]) -> Callable[[object, object], bool]:
        def method(self: object, other: object) -> bool:
            if other.__class__ is not self.__class__:
                return NotImplemented  # type: ignore[no-any-return]
            return compare(key(self), key(other))

        method.__name__ = f"__{compare.__name__}__"
        method.__qualname__ = f"{cls.__qualname__}.{method.__name__}"
        return method

    return {f"__{op.__name__}__": made(op) for op in (lt, le, gt, ge)}


def _hash(self: object) -> int:
    return hash(self.__record_key__(self))  # type: ignore[attr-defined]


def _getstate(self: object) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in _names(type(self)))


def _setstate(self: object, state: tuple[Any, ...]) -> None:
    for name, value in zip(_names(type(self)), state, strict=True):
        object.__setattr__(self, name, value)


def _refusals(cls: type, names: frozenset[str]) -> tuple[Callable[..., None], Callable[..., None]]:
    # As dataclasses do: a subclass that is not itself frozen may set its own attributes.
    def __setattr__(self: object, name: str, value: object) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}: {cls.__name__} is frozen")
        object.__setattr__(self, name, value)

    def __delattr__(self: object, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}: {cls.__name__} is frozen")
        object.__delattr__(self, name)

    return __setattr__, __delattr__


def _key(names: tuple[str, ...]) -> staticmethod[[object], tuple[Any, ...]]:
    """The tuple of its compared fields that an instance is compared and hashed by, as
    dataclasses compare tuples (in which a field is equal to itself, even a NaN)."""
    if len(names) > 1:
        return staticmethod(attrgetter(*names))
    if names:
        one = attrgetter(names[0])
        return staticmethod(lambda obj: (one(obj),))
    return staticmethod(lambda _obj: ())


class _AsDataclass:
    """``__dataclass_fields__`` or ``__dataclass_params__``, made when first asked for
    (see the module's docstring), then kept on the class that asked."""

    __slots__ = ("_make", "_name")

    def __init__(self, name: str, make: Callable[[type], object]) -> None:
        self._name, self._make = name, make

    def __get__(self, obj: object, owner: type) -> object:
        made = self._make(owner)
        setattr(owner, self._name, made)
        return made


def _dataclass_fields(owner: type) -> dict[str, Any]:
    import dataclasses  # noqa: PLC0415 - see _AsDataclass

    made = {}
    for f in getattr(owner, FIELDS):
        view: Any = dataclasses.field(
            default=dataclasses.MISSING if f.default is MISSING else f.default,
            default_factory=(
                dataclasses.MISSING if f.default_factory is MISSING else f.default_factory
            ),
            init=f.init,
            repr=f.repr,
            compare=f.compare,
        )
        view.name, view.type, view.kw_only = f.name, f.type, f.kw_only
        # What dataclasses mark a field (not a ClassVar or an InitVar) with; the
        # test of this module checks that replace, fields and asdict still take it.
        view._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
        made[f.name] = view
    return made


class _Params(SimpleNamespace):
    """``__dataclass_params__`` of a ``@frozen`` class: what dataclasses read there."""


def _dataclass_params(owner: type) -> object:
    slots = "__slots__" in owner.__dict__
    kw_only, order = getattr(owner, _FLAGS)
    return _Params(
        init=True, repr=True, eq=True, order=order, unsafe_hash=False, frozen=True,
        match_args=True, kw_only=kw_only, slots=slots, weakref_slot=False,
    )  # fmt: skip


def _annotated(cls: type) -> dict[str, Any]:
    return cls.__dict__.get("__annotations__", {})  # type: ignore[no-any-return]  # noqa: RUF063


def _shown_type(annotation: object) -> str:
    """An annotation as ``inspect.signature`` shows it (a postponed one, quoted)."""
    if isinstance(annotation, type):
        module, name = annotation.__module__, annotation.__qualname__
        return name if module == "builtins" else f"{module}.{name}"
    return repr(annotation)


def _signature(name: str, fields: tuple[Field, ...]) -> str:
    shown, starred = [], False
    for f in sorted((f for f in fields if f.init), key=lambda f: f.kw_only):
        if f.kw_only and not starred:
            shown.append("*")
            starred = True
        default = "" if f.default is MISSING else f" = {f.default!r}"
        factory = "" if f.default_factory is MISSING else " = <factory>"
        shown.append(f"{f.name}: {_shown_type(f.type)}{default}{factory}")
    return f"{name}({', '.join(shown)})"


def _build(cls: type[T], *, slots: bool, kw_only: bool = False, order: bool = False) -> type[T]:
    fields = _fields_of(cls, kw_only=kw_only)
    if slots:
        inherited = {
            name for base in cls.__mro__[1:] for name in base.__dict__.get("__slots__", ())
        }
        body = dict(cls.__dict__)
        for name in ("__dict__", "__weakref__", *fields):
            body.pop(name, None)
        body["__slots__"] = tuple(name for name in fields if name not in inherited)
        qualname = cls.__qualname__
        cls = type(cls)(cls.__name__, cls.__bases__, body)  # type: ignore[misc]
        cls.__qualname__ = qualname
    ordered = tuple(fields.values())
    own = cls.__dict__
    # Defining __eq__ in a class body sets its __hash__ to None: not the class's own
    # choice, which a __hash__ = None of its own would be. As dataclasses decide it.
    hashed = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    attributes: dict[str, Any] = {
        FIELDS: ordered,
        _SHOWN: tuple(f.name for f in ordered if f.repr),
        _KEY: _key(tuple(f.name for f in ordered if f.compare)),
        _FLAGS: (kw_only, order),
        "__dataclass_fields__": _AsDataclass("__dataclass_fields__", _dataclass_fields),
        "__dataclass_params__": _AsDataclass("__dataclass_params__", _dataclass_params),
    }
    methods: dict[str, Any] = {
        "__init__": _init(cls, ordered),
        "__repr__": _repr,
        "__eq__": _eq,
        "__replace__": replace,
        "__match_args__": tuple(f.name for f in ordered if f.init and not f.kw_only),
    }
    if order:
        ordering = _order(cls, attributes[_KEY].__func__)
        defined = sorted(name for name in ordering if name in own)
        if defined:
            raise TypeError(f"@frozen(order=True) {cls.__qualname__} defines {defined[0]}: "
                            "drop order=True, or the method, as dataclasses ask")  # fmt: skip
        methods.update(ordering)
    methods["__setattr__"], methods["__delattr__"] = _refusals(cls, frozenset(fields))
    if slots:
        methods["__getstate__"], methods["__setstate__"] = _getstate, _setstate
    for name, value in attributes.items():
        setattr(cls, name, value)
    for name, value in methods.items():
        if name not in own:
            setattr(cls, name, value)
    if cls.__doc__ is None:  # as dataclasses: help() then shows how to make one
        cls.__doc__ = _signature(cls.__name__, ordered)
    if not hashed:  # a frozen class equal by value hashes by value
        cls.__hash__ = _hash  # type: ignore[method-assign]
    return cls
