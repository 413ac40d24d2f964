"""Identical account documents share one snapshot for a moment; anything else builds anew."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from server_support import Api

from tradeguard.clock import FixedClock
from tradeguard.errors import InvalidAccountState
from tradeguard.server.snapshots import SnapshotCache

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


def _doc(**changes: Any) -> dict[str, Any]:
    return {"account_value": "100000", "prices": {"BTC-USD": "100.50"}, **changes}


def test_identical_documents_share_a_snapshot_until_the_ttl_passes() -> None:
    clock = FixedClock(NOW)
    cache = SnapshotCache(clock, ttl=0.05)
    first = cache.get(_doc(), NOW)
    assert cache.get(_doc(), NOW) is first  # a new but identical document
    clock.advance(0.05)
    assert cache.get(_doc(), NOW) is first  # the edge is inside
    clock.advance(0.001)
    rebuilt = cache.get(_doc(), clock.now())
    assert rebuilt is not first and rebuilt == cache.get(_doc(), clock.now())
    assert rebuilt.prices["BTC-USD"].time == clock.now()  # stamped when built


@pytest.mark.parametrize(
    "other",
    [
        _doc(account_value="100001"),
        _doc(prices={"BTC-USD": "100.51"}),
        _doc(positions={"BTC-USD": "1"}),
        _doc(open_orders=1),
        _doc(account_value=100000),  # an int, not the string
        {"prices": {"BTC-USD": "100.50"}, "account_value": "100000"},  # another key order
    ],
)
def test_a_document_that_differs_in_anything_gets_its_own(other: dict[str, Any]) -> None:
    cache = SnapshotCache(FixedClock(NOW))
    first = cache.get(_doc(), NOW)
    assert cache.get(other, NOW) is not first


def test_unhashable_extras_and_bad_documents_are_never_kept() -> None:
    cache = SnapshotCache(FixedClock(NOW))
    with_list = _doc(extra=[1, 2])
    assert cache.get(with_list, NOW) is not cache.get(with_list, NOW)  # built each time
    for _ in range(2):  # an error is raised every time, never remembered
        with pytest.raises(InvalidAccountState):
            cache.get(_doc(account_value="abc"), NOW)


def test_the_cache_is_bounded() -> None:
    cache = SnapshotCache(FixedClock(NOW), max_entries=3)
    kept = [cache.get(_doc(open_orders=i), NOW) for i in range(3)]
    assert cache.get(_doc(open_orders=0), NOW) is kept[0]
    cache.get(_doc(open_orders=3), NOW)  # full: starts afresh
    assert cache.get(_doc(open_orders=0), NOW) is not kept[0]
    with pytest.raises(ValueError):
        SnapshotCache(FixedClock(NOW), ttl=-1)


def test_a_changed_account_is_decided_on_its_own_content_at_once(
    api: Api, as_role: Callable[[str], dict[str, str]]
) -> None:
    trader = as_role("TRADER")
    order = {"symbol": "BTC-USD", "side": "buy", "quantity": "1", "order_type": "limit",
             "limit_price": "100.50", "venue": "CRYPTO", "account_id": "snap"}  # fmt: skip
    flat = {"account_value": "100000", "prices": {"BTC-USD": "100.50"}}
    loaded = {**flat, "positions": {"BTC-USD": "900"}}  # ~90 % of the account in one symbol

    def check(n: int, account: dict[str, Any]) -> Any:
        # a different quantity each time: never a DUPLICATE_ORDER
        body = {"order": {**order, "quantity": str(n), "client_order_id": f"snap-{n}"},
                "account": account}  # fmt: skip
        response = api.client.post("/v1/orders/check", headers=trader, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    assert check(1, flat)["approved"] is True
    refused = check(2, loaded)  # within the snapshot ttl of the first
    assert refused["approved"] is False
    assert {"CONCENTRATION", "MAX_POSITION"} & {v["code"] for v in refused["violations"]}
    assert check(3, flat)["approved"] is True
