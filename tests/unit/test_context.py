"""Who pays: ids are normalised or refused with an error naming the argument."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costrouter import context
from costrouter.context import MAX_ID_BYTES, Caller, check_id, current_caller, resolve_caller


def resolve(**ids: Any) -> Any:
    arguments: dict[str, Any] = {"session_id": None, "user_id": None, "team_id": None, "tags": None, "metadata": None}
    return resolve_caller(**{**arguments, **ids})


def test_a_string_tag_is_one_tag_not_its_letters() -> None:
    assert resolve(tags="batch").tags == ("batch",)


def test_tags_from_any_iterable_keep_their_order_once_each() -> None:
    assert resolve(tags=("b", "a", "b")).tags == ("b", "a")
    assert resolve(tags=iter(["x", 7])).tags == ("x", "7")


@pytest.mark.parametrize("name", ["session_id", "user_id", "team_id"])
def test_an_int_id_becomes_its_decimal_string(name: str) -> None:
    assert getattr(resolve(**{name: 42}), name) == "42"
    assert resolve(tags=7).tags == ("7",)


@pytest.mark.parametrize("name", ["session_id", "user_id", "team_id"])
@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_an_empty_or_blank_id_is_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must not be empty"):
        resolve(**{name: value})


@pytest.mark.parametrize("name", ["session_id", "user_id", "team_id"])
@pytest.mark.parametrize("value", [b"sess-1", True, 1.5, ["a"], object()])
def test_an_id_of_another_type_is_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"{name} must be a string or an int, not {type(value).__name__}"):
        resolve(**{name: value})


@pytest.mark.parametrize("tags", [b"batch", bytearray(b"x"), {"a": 1}, 3.5, True])
def test_tags_of_another_type_are_refused(tags: object) -> None:
    with pytest.raises(TypeError, match="tags must be a string"):
        resolve(tags=tags)


@pytest.mark.parametrize(
    ("tags", "error", "where"),
    [
        (["ok", ""], ValueError, r"tags\[1\]"),
        (["ok", b"x"], TypeError, r"tags\[1\]"),
        ([None], TypeError, r"tags\[0\]"),
    ],
)
def test_a_bad_tag_in_a_list_is_named_by_its_index(tags: list[Any], error: type[Exception], where: str) -> None:
    with pytest.raises(error, match=where):
        resolve(tags=tags)


def test_the_context_block_checks_and_normalises_the_same_way() -> None:
    with context(session_id=5, tags="batch") as caller:
        assert (caller.session_id, caller.tags) == ("5", ("batch",))
        assert current_caller() == caller
    with pytest.raises(ValueError, match="user_id must not be empty"), context(user_id=""):
        pass
    with pytest.raises(TypeError, match="team_id"), context(team_id=b"t"):
        pass
    assert current_caller().session_id is None


def test_none_means_inherit_from_the_active_context() -> None:
    with context(session_id="outer", tags=["a"]):
        caller = resolve(tags="b")
    assert (caller.session_id, caller.tags) == ("outer", ("a", "b"))


def _refused(text: str) -> bool:
    """The definition the fast path must agree with: blank, over MAX_ID_BYTES, or a Cc character."""
    return (
        not text.strip()
        or len(text.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES
        or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
    )


@given(st.text(max_size=80) | st.text(alphabet=st.characters(codec="utf-8"), min_size=60, max_size=70))
def test_an_id_is_kept_exactly_when_the_definition_allows_it(text: str) -> None:
    if _refused(text):
        with pytest.raises(ValueError, match="session_id"):
            check_id("session_id", text)
    else:
        assert check_id("session_id", text) is text


@pytest.mark.parametrize("text", ["\u00a0", "\u3000 ", "a\u200bb", "x\u2028y", "\U0001f600" * 64, "é" * 64])
def test_printable_edge_ids_follow_the_definition(text: str) -> None:
    if _refused(text):
        with pytest.raises(ValueError, match="session_id"):
            check_id("session_id", text)
    else:
        assert check_id("session_id", text) == text


def test_a_caller_without_a_context_block_is_just_its_ids() -> None:
    caller = resolve(session_id="s", user_id=7, team_id="t")
    assert caller == Caller("s", "7", "t")
    assert resolve(session_id="s", metadata={}).metadata == {}
