"""``@frozen`` behaves as ``@dataclass(frozen=True)`` does, for what ticketsim uses of it,
and code that treats its classes as the dataclasses the library documents keeps working."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
import typing
from abc import ABC, abstractmethod
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketsim.core.db import Sale, TicketDB
from ticketsim.core.events import Event, Step
from ticketsim.core.frozen import FrozenInstanceError, field, frozen, replace


@frozen(slots=True)
class Point:
    x: int
    y: str = "a"


@frozen(slots=True)
class Tagged(Point):
    tag: bytes = field(default=b"", compare=False, repr=False)
    z: int = 0


class Shape(ABC):
    @abstractmethod
    def area(self) -> int: ...


@frozen
class Square(Shape):
    side: int
    marks: list[int] = field(default_factory=list, compare=False, repr=False)

    def area(self) -> int:
        return self.side * self.side


@dataclasses.dataclass(frozen=True)
class DataPoint:
    x: int
    y: str = "a"


@dataclasses.dataclass(frozen=True)
class DataTagged(DataPoint):
    tag: bytes = dataclasses.field(default=b"", compare=False, repr=False)
    z: int = 0


_VALUES = st.one_of(st.integers(), st.text(max_size=5), st.none(), st.tuples(st.integers()))


def _twins(x: Any, y: Any, tag: bytes, z: Any) -> tuple[Tagged, DataTagged]:
    return Tagged(x, y, tag, z), DataTagged(x, y, tag, z)


@given(
    a=st.tuples(_VALUES, _VALUES, st.binary(max_size=3), _VALUES),
    b=st.tuples(_VALUES, _VALUES, st.binary(max_size=3), _VALUES),
)
def test_equality_hash_and_repr_are_those_of_the_same_dataclass(
    a: tuple[Any, Any, bytes, Any], b: tuple[Any, Any, bytes, Any]
) -> None:
    mine_a, theirs_a = _twins(*a)
    mine_b, theirs_b = _twins(*b)
    assert (mine_a == mine_b) == (theirs_a == theirs_b)
    assert repr(mine_a).removeprefix("Tagged") == repr(theirs_a).removeprefix("DataTagged")
    if mine_a == mine_b:
        assert hash(mine_a) == hash(mine_b)
    assert hash(mine_a) == hash(theirs_a)  # both hash the tuple of compared fields


def test_fields_come_in_order_with_their_defaults() -> None:
    assert Tagged(1) == Tagged(1, "a", b"", 0)
    assert Tagged(1, z=3).z == 3
    assert [f.name for f in dataclasses.fields(Tagged)] == ["x", "y", "tag", "z"]
    assert Tagged(1) != Point(1)  # another class is never equal, as dataclasses
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        Point()  # type: ignore[call-arg]


def test_a_field_without_a_default_cannot_follow_one_with_a_default() -> None:
    with pytest.raises(TypeError, match=r"Late.b has no default but follows one that has"):

        @frozen
        class Late:
            a: int = 0
            b: int  # type: ignore[misc]


def test_a_default_factory_makes_a_fresh_value_for_each_instance() -> None:
    one, two = Square(2), Square(2)
    assert one.marks == []
    assert one.marks is not two.marks
    assert Square(2, [1]) == Square(2, [5])  # compare=False
    assert Square(3).area() == 9


@pytest.mark.parametrize("made", [Point(1), Tagged(1, "b", b"x", 2), Square(2, [1])])
def test_fields_cannot_be_set_or_deleted(made: object) -> None:
    with pytest.raises(FrozenInstanceError, match="is frozen"):
        made.x = 5  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        del made.x  # type: ignore[attr-defined]


def test_slots_leave_no_instance_dict() -> None:
    assert not hasattr(Tagged(1), "__dict__")
    assert tuple(Tagged.__slots__) == ("tag", "z")
    assert hasattr(Square(1), "__dict__")


@pytest.mark.parametrize("made", [Point(1, "q"), Tagged(1, "b", b"x", 2), Square(2, [1])])
def test_instances_pickle_and_copy_whole(made: object) -> None:
    for again in (pickle.loads(pickle.dumps(made)), copy.copy(made), copy.deepcopy(made)):
        assert again == made
        assert type(again) is type(made)
    assert pickle.loads(pickle.dumps(Tagged(1, "b", b"x", 2))).tag == b"x"  # not compared


def test_replace_as_dataclasses_and_copy_replace_make_it() -> None:
    made = Tagged(1, "b", b"x", 2)
    for changed in (
        replace(made, z=7),
        dataclasses.replace(made, z=7),
        made.__replace__(z=7),  # type: ignore[attr-defined]  # copy.replace, Python 3.13
    ):
        assert changed == Tagged(1, "b", b"x", 7)
        assert changed.tag == b"x"
    with pytest.raises(TypeError, match="takes a @frozen class's instance, not int"):
        replace(3)  # type: ignore[type-var]


def test_the_librarys_data_are_dataclasses_to_dataclasses_own_functions() -> None:
    sale = Sale("buyer-1", 1, 42, 1.5)
    db = TicketDB(tickets=2, remaining=1, ledger=(sale,))
    event = Event(1, Step.OK, 2.5, 42, seat=1)
    assert all(dataclasses.is_dataclass(x) for x in (sale, db, event))
    as_dict = {"buyer": "buyer-1", "seat": 1, "pid": 42, "time": 1.5}
    assert dataclasses.asdict(db)["ledger"] == (as_dict,)  # a tuple stays one
    assert dataclasses.astuple(sale) == ("buyer-1", 1, 42, 1.5)
    assert dataclasses.replace(event, seat=2).seat == 2


@dataclasses.dataclass(frozen=True)
class Labelled(Tagged):
    label: str = ""


def test_a_dataclass_may_subclass_a_frozen_class_and_keeps_its_fields() -> None:
    made = Labelled(1, "b", b"t", 2, "c")
    assert (made.x, made.y, made.tag, made.z, made.label) == (1, "b", b"t", 2, "c")
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.label = "d"  # type: ignore[misc]
    for changed in (replace(made, x=2), made.__replace__(x=2)):  # type: ignore[attr-defined]
        assert changed == Labelled(2, "b", b"t", 2, "c")
    again = pickle.loads(pickle.dumps(made))  # through the slots base's own state
    assert (again, again.tag) == (made, b"t")


def test_a_frozen_class_may_not_subclass_a_dataclass() -> None:
    with pytest.raises(TypeError, match="cannot subclass the dataclass DataPoint: make DataPoint"):

        @frozen
        class Wrong(DataPoint):
            w: int = 0


def test_a_mutable_default_is_refused_as_dataclasses_refuse_it() -> None:
    with pytest.raises(ValueError, match=r"Shared.xs: a mutable default list .* default_factory"):

        @frozen
        class Shared:
            xs: list[int] = []  # noqa: RUF012 - the mistake under test


def test_positional_patterns_and_type_hints_see_the_fields() -> None:
    match Event(3, Step.OK, 2.5, 42, seat=1):
        case Event(buyer, Step.OK):
            assert buyer == 3
        case _:
            pytest.fail("Event matched no positional pattern")
    hints = typing.get_type_hints(Event.__init__)
    assert hints["buyer"] is int
    assert hints["step"] is Step


@frozen
class Counted:
    #: Not a field: dataclasses leave a ClassVar out of __init__, and so does @frozen.
    made: typing.ClassVar[int] = 0
    n: int
    double: int = field(default=0, init=False)
    checked: list[int] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "double", 2 * self.n)
        self.checked.append(self.n)


def test_class_vars_init_false_fields_and_post_init_behave_as_in_dataclasses() -> None:
    made = Counted(3)
    assert (made.double, made.checked) == (6, [3])
    assert [f.name for f in dataclasses.fields(Counted)] == ["n", "double", "checked"]
    with pytest.raises(TypeError):
        Counted(3, double=6)  # type: ignore[call-arg]  # double is not an argument
    assert replace(made, n=4).double == 8
    with pytest.raises(ValueError, match="'double' is not set by __init__"):
        replace(made, double=1)
    with pytest.raises(TypeError, match=r"Bad\.x has init=False and no default"):

        @frozen
        class Bad:
            x: int = field(init=False)


def test_a_plain_subclass_may_set_its_own_attributes_but_not_the_fields() -> None:
    class Noted(Square):
        pass

    made = Noted(2)
    made.note = "mine"  # type: ignore[attr-defined]
    with pytest.raises(FrozenInstanceError):
        made.side = 3  # type: ignore[misc]


def test_the_dataclass_view_is_made_once_and_says_slots() -> None:
    assert dataclasses.fields(Tagged) == dataclasses.fields(Tagged)
    assert isinstance(vars(Tagged)["__dataclass_fields__"], dict)  # kept after first use
    assert Tagged.__dataclass_params__.slots  # type: ignore[attr-defined]
    assert not Square.__dataclass_params__.slots  # type: ignore[attr-defined]


def test_odd_fields_as_dataclasses_take_them() -> None:
    @frozen
    class Odd:
        self: int  # a field may be named self
        other: int = 0

    assert Odd(1, 2).self == 1
    assert Odd(self=1) == Odd(1, 0)

    @frozen
    class Single:
        x: float

    nan = float("nan")
    assert Single(nan) == Single(nan)  # compared as a tuple, as dataclasses do: a NaN is itself

    @frozen
    class Unhashable:
        x: int
        __hash__ = None  # type: ignore[assignment]  # the class's own choice: kept

    with pytest.raises(TypeError, match="unhashable"):
        hash(Unhashable(1))

    @frozen
    class Again(Point):
        y: str  # declared again without a default: keeps the base's, as dataclasses

    assert Again(1) == Again(1, "a")  # type: ignore[call-arg]  # mypy thinks y required


def test_replace_on_a_plain_subclass_needs_no_dataclasses() -> None:
    """A buyer never imports dataclasses: a plain subclass of a @frozen class (a pacer
    of a test's, say) is copied by its base's fields, not by dataclasses.replace."""
    code = (
        "import sys\n"
        "from ticketsim.core.frozen import frozen, replace\n"
        "@frozen\n"
        "class Base:\n"
        "    x: int\n"
        "class Plain(Base):\n"
        "    pass\n"
        "made = replace(Plain(1), x=2)\n"
        "print(type(made).__name__, made.x, 'dataclasses' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "Plain 2 False", done.stderr


@frozen(kw_only=True)
class Options:
    name: str
    size: int = 1
    flags: tuple[str, ...] = ()


@frozen(kw_only=True)
class MoreOptions(Point):  # a positional base, keyword-only fields of its own
    label: str
    level: int = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataMoreOptions(DataPoint):
    label: str
    level: int = 0


def test_keyword_only_fields_come_last_and_take_no_position() -> None:
    assert Options(name="a") == Options(name="a", size=1, flags=())
    with pytest.raises(TypeError, match="positional"):
        Options("a")  # type: ignore[call-arg]
    # As dataclasses: the base's positional fields first, then this class's by keyword,
    # which may have no default after a default of the base's.
    mine = MoreOptions(1, "b", label="c")
    theirs = DataMoreOptions(1, "b", label="c")
    assert repr(mine).removeprefix("MoreOptions") == repr(theirs).removeprefix("DataMoreOptions")
    assert MoreOptions.__match_args__ == DataMoreOptions.__match_args__ == ("x", "y")
    assert [(f.name, f.kw_only) for f in dataclasses.fields(MoreOptions)] == [
        (f.name, f.kw_only) for f in dataclasses.fields(DataMoreOptions)
    ]
    assert replace(mine, level=3) == MoreOptions(1, "b", label="c", level=3)
    assert dataclasses.replace(mine, x=2).x == 2
    assert MoreOptions.__dataclass_params__.kw_only  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(mine)) == mine


@frozen(order=True)
class Ranked:
    rank: int
    name: str
    note: str = field(default="", compare=False)


@dataclasses.dataclass(frozen=True, order=True)
class DataRanked:
    rank: int
    name: str
    note: str = dataclasses.field(default="", compare=False)


_RANKED = st.tuples(st.integers(-2, 2), st.sampled_from("ab"), st.sampled_from("xy"))


@given(a=_RANKED, b=_RANKED)
def test_ordered_classes_compare_as_the_same_dataclass(
    a: tuple[int, str, str], b: tuple[int, str, str]
) -> None:
    mine, theirs = (Ranked(*a), Ranked(*b)), (DataRanked(*a), DataRanked(*b))
    for op in ("__lt__", "__le__", "__gt__", "__ge__"):
        assert getattr(mine[0], op)(mine[1]) == getattr(theirs[0], op)(theirs[1]), op
    assert sorted(mine) == sorted(mine, key=lambda r: (r.rank, r.name))


def test_only_the_same_ordered_class_is_ordered() -> None:
    with pytest.raises(TypeError, match="'<' not supported"):
        assert Ranked(1, "a") < (1, "a")  # type: ignore[operator]
    with pytest.raises(TypeError, match="'<' not supported"):
        assert Point(1) < Point(2)  # type: ignore[operator]  # not ordered
    assert Ranked.__dataclass_params__.order  # type: ignore[attr-defined]
    assert not Point.__dataclass_params__.order  # type: ignore[attr-defined]


def test_order_is_refused_beside_a_comparison_of_the_classs_own() -> None:
    with pytest.raises(TypeError, match=r"Own defines __lt__: drop order=True"):

        @frozen(order=True)
        class Own:
            x: int

            def __lt__(self, other: object) -> bool:  # type: ignore[misc]  # mypy refuses it too
                return True


def test_a_subclass_inherits_the_order_of_its_bases_fields_as_dataclasses() -> None:
    @frozen
    class More(Ranked):
        extra: int = 0

    @dataclasses.dataclass(frozen=True)
    class DataMore(DataRanked):
        extra: int = 0

    # Both compare the fields of the class that asked for order: extra is not one.
    assert (More(1, "a", extra=1) < More(1, "a", extra=2)) is False
    assert (DataMore(1, "a", extra=1) < DataMore(1, "a", extra=2)) is False
    assert More(1, "a") < More(2, "a")
    assert not More.__dataclass_params__.order  # type: ignore[attr-defined]
    assert not DataMore.__dataclass_params__.order  # type: ignore[attr-defined]


def test_a_kw_only_marker_is_refused_rather_than_made_a_field() -> None:
    with pytest.raises(TypeError, match=r"Marked._: @frozen takes no KW_ONLY marker"):

        @frozen
        class Marked:
            a: int
            _: dataclasses.KW_ONLY
            b: int


def test_a_class_without_a_docstring_gets_its_signature_as_dataclasses_give() -> None:
    @frozen(kw_only=True)
    class Bare:
        a: int
        b: str = "x"
        c: list[int] = field(default_factory=list)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class DataBare:
        a: int
        b: str = "x"
        c: list[int] = dataclasses.field(default_factory=list)

    assert Bare.__doc__ == "Bare(*, a: 'int', b: 'str' = 'x', c: 'list[int]' = <factory>)"
    assert DataBare.__doc__ is not None
    assert Bare.__doc__.removeprefix("Bare") == DataBare.__doc__.removeprefix("DataBare")

    # Annotations that are types, not postponed strings, are shown by their names.
    typed: type = frozen(type("Typed", (), {"__annotations__": {"a": int, "b": Sale}}))
    made = dataclasses.make_dataclass("DataTyped", [("a", int), ("b", Sale)], frozen=True)
    assert typed.__doc__ is not None
    assert made.__doc__ is not None
    assert typed.__doc__.removeprefix("Typed") == made.__doc__.removeprefix("DataTyped")
