"""A failure inside redis-py reaches the caller as a BudgetStoreError, never raw; our own bugs stay bugs."""

from __future__ import annotations

import pytest
import redis.asyncio

from costrouter.budget.redis import wrap_errors
from costrouter.errors import BudgetStoreError


async def test_a_connection_closed_under_a_command_is_a_store_error() -> None:
    # What redis-py's async cluster client hit during a failover: a connection whose writer is gone.
    connection = redis.asyncio.Connection()
    with pytest.raises(BudgetStoreError, match="reserve") as caught, wrap_errors("reserve"):
        await connection._send_packed_command([b"PING"])
    assert isinstance(caught.value.__cause__, AttributeError)


def test_an_attribute_error_of_our_own_is_not_hidden() -> None:
    with pytest.raises(AttributeError), wrap_errors("reserve"):
        _ = object().missing  # type: ignore[attr-defined]
