"""The service answers POST /v1/orders/check right after the guard (no FastAPI routing);
the FastAPI route, as a mounted router serves it, must answer exactly the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from server_support import LOOPBACK, Api, TestClient

from tradeguard.server import routes_risk
from tradeguard.server.dependencies import install_problem_handlers
from tradeguard.server.middleware import GuardMiddleware
from tradeguard.server.screen import Screen

ACCOUNT = {"account_value": "100000", "prices": {"BTC-USD": "100.00"}}


def _router_only(service: Any) -> FastAPI:
    """The same service behind the guard, with the route served by FastAPI itself."""
    app = FastAPI()
    app.state.service = service
    install_problem_handlers(app)
    app.include_router(routes_risk.router)
    app.add_middleware(GuardMiddleware, screen=Screen(service.validator, service.auth))
    return app


def _bodies(tag: str) -> list[Any]:
    order = {"symbol": "BTC-USD", "side": "buy", "order_type": "limit", "venue": "CRYPTO",
             "account_id": tag}  # fmt: skip
    return [
        {"order": {**order, "quantity": "2", "limit_price": "100.10",
                   "client_order_id": f"{tag}-ok"}, "account": ACCOUNT},
        {"order": {**order, "quantity": "50000", "limit_price": "150",
                   "client_order_id": f"{tag}-big"}, "account": ACCOUNT},
        {"order": {"symbol": "", "side": "sideways", "quantity": "-1"}, "account": ACCOUNT},
        {"order": {**order, "quantity": "1"}, "account": {"account_value": "0"}},
        {"order": {**order, "quantity": "1"}, "account": {"account_value": "1e999999999"}},
        {"order": {**order, "quantity": "1"}},
        {"order": "not a mapping", "account": ACCOUNT},
        {"account": {"account_value": ["no"], "positions": {"k": [1]}}},
        [1, 2, 3],
        # shapes the hot route's plain-document shortcut must hand to the model, or take
        # exactly as the model would: floats, booleans, nulls, timed quotes, ints, extras
        {"order": {**order, "quantity": "1", "client_order_id": f"{tag}-f"},
         "account": {"account_value": 100000.5, "prices": {"BTC-USD": "100"}}},
        {"order": {**order, "quantity": "1", "client_order_id": f"{tag}-b"},
         "account": {"account_value": True, "prices": {"BTC-USD": "100"}}},
        {"order": {**order, "quantity": "1", "client_order_id": f"{tag}-n"},
         "account": {"account_value": "100000", "cash": None, "prices": {"BTC-USD": "100"}}},
        {"order": {**order, "quantity": "1", "limit_price": "100", "client_order_id": f"{tag}-t"},
         "account": {"account_value": "100000",
                     "prices": {"BTC-USD": {"price": "100", "time": "2020-01-01T00:00:00Z"}}}},
        {"order": {**order, "quantity": "1", "limit_price": "100", "client_order_id": f"{tag}-i"},
         "account": {"account_value": 100000, "cash": 5, "positions": {"BTC-USD": -3},
                     "prices": {"BTC-USD": 100}, "open_orders": 2, "extra": [1]}},
        {"order": {**order, "quantity": "1", "client_order_id": f"{tag}-o"},
         "account": {"account_value": "100000", "open_orders": -1}},
        {"order": {**order, "quantity": "1", "client_order_id": f"{tag}-p"},
         "account": {"account_value": "100000", "positions": {"BTC-USD": 1.5}}},
        {"order": {**order, "quantity": "1", "client_order_id": f"{tag}-q"},
         "account": {"account_value": "100000", "prices": ["BTC-USD"]}},
        {"order": {**order, "quantity": "1", "client_order_id": f"{tag}-v"},
         "account": {"prices": {"BTC-USD": "100"}}},
        {"order": {**order, "quantity": "1", "client_order_id": f"{tag}-s"},
         "account": {"account_value": "-5", "prices": {"BTC-USD": "abc"}}},
    ]  # fmt: skip


def _comparable(response: Any) -> tuple[int, str, Any]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
        body.pop("client_order_id", None)
        # pydantic names a non-object body "model_type" or "model_attributes_type"
        # depending on how it is called: compare where the errors are, not their wording
        if "errors" in body:
            body["errors"] = [error["loc"] for error in body["errors"]]
    return response.status_code, response.headers["content-type"], body


def test_hot_route_when_any_body_then_same_answer_as_the_fastapi_route(
    api: Api, as_role: Callable[[str], dict[str, str]]
) -> None:
    trader = as_role("TRADER")
    viewer = as_role("VIEWER")
    service = api.client.app.state.service  # type: ignore[attr-defined]
    service.validator.configure_rate_limit("order_submissions", "1000/minute")  # both routes
    with TestClient(_router_only(service), client=LOOPBACK) as plain:
        for index, body in enumerate(_bodies("a")):
            hot = api.client.post("/v1/orders/check", headers=trader, json=body)
            routed = plain.post("/v1/orders/check", headers=trader,
                                json=_bodies("b")[index])  # fmt: skip
            assert _comparable(hot) == _comparable(routed), (index, hot.text, routed.text)
        for headers in (viewer, {"Authorization": "Bearer nope"}, {}):
            hot = api.client.post("/v1/orders/check", headers=headers, json=_bodies("c")[0])
            routed = plain.post("/v1/orders/check", headers=headers, json=_bodies("d")[0])
            assert hot.status_code in (401, 403)
            assert _comparable(hot) == _comparable(routed)
            assert hot.headers.get("www-authenticate") == routed.headers.get("www-authenticate")


def test_an_approved_decision_is_encoded_as_the_documented_model_says() -> None:
    from tradeguard.risk import OrderDecision
    from tradeguard.risk.violations import Code, Violation

    for cid in ("abc-1", 'q"uote\\back', "\u2028line\u00e9", ""):
        approved = routes_risk._decision(OrderDecision(True, client_order_id=cid))
        expected = {"approved": True, "client_order_id": cid, "violations": []}
        assert routes_risk.DecisionOut.model_validate_json(approved.body).model_dump() == expected
        assert approved.headers["content-type"] == "application/json"
        assert int(approved.headers["content-length"]) == len(approved.body)
    refused = routes_risk._decision(OrderDecision(
        False, (Violation(Code.KILL_SWITCH, "halted", {"state": "HALTED"}),), client_order_id="x"
    ))  # fmt: skip
    document = routes_risk.DecisionOut.model_validate_json(refused.body).model_dump()
    assert document["approved"] is False
    assert document["violations"] == [
        {"code": "KILL_SWITCH", "message": "halted", "detail": {"state": "HALTED"}}
    ]
