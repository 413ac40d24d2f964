"""``/v1/orders`` and ``/v1/risk``: pre-trade checks, fills and cancels, limits, kill switch.

The order check is ``async``: it is microseconds of arithmetic over in-memory state, so it
runs on the event loop without a thread hop. Everything that writes the database (limits,
the kill switch) is plain ``def`` and runs in the thread pool.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

from tradeguard.auth import Claims
from tradeguard.errors import (
    ConfigurationError,
    InvalidAccountState,
    RiskError,
    TradeguardError,
)
from tradeguard.risk import AccountState, OrderDecision, Quote, RiskLimits, Violation
from tradeguard.risk.violations import Code
from tradeguard.server.context import Service, ServiceDep, service
from tradeguard.server.dependencies import ProblemError, invalid_request, request_id, require
from tradeguard.server.problems import problem, problem_for, retry_after

router = APIRouter(tags=["risk"])
Number = int | str
_may_submit = require("orders:submit")
Submitter = Annotated[Claims, Depends(_may_submit)]
Canceller = Annotated[Claims, Depends(require("orders:cancel"))]
Viewer = Annotated[Claims, Depends(require("risk:view"))]
Configurer = Annotated[Claims, Depends(require("risk:configure"))]
Engager = Annotated[Claims, Depends(require("killswitch:engage"))]
Releaser = Annotated[Claims, Depends(require("killswitch:release"))]


class QuoteIn(BaseModel):
    price: Number
    time: datetime | None = None


class AccountIn(BaseModel):
    account_value: Number
    cash: Number | None = None
    positions: dict[str, Number] = Field(default_factory=dict, max_length=10_000)
    prices: dict[str, QuoteIn | Number] = Field(default_factory=dict, max_length=10_000)
    realized_pnl_today: Number = 0
    unrealized_pnl: Number = 0
    open_orders: int = Field(default=0, ge=0)


class OrderCheck(BaseModel):
    order: dict[str, Any] = Field(description="symbol, side, quantity, order_type, limit_price, "
                                  "stop_price, time_in_force, venue, client_order_id, account_id, "
                                  "strategy_id, reduce_only")  # fmt: skip
    account: AccountIn


class ViolationOut(BaseModel):
    code: str
    message: str
    detail: dict[str, str]


class DecisionOut(BaseModel):
    approved: bool
    client_order_id: str
    violations: list[ViolationOut]


class Fill(BaseModel):
    quantity: Number
    price: Number


class KillSwitchRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class TradingStatusOut(BaseModel):
    state: str
    reason: str
    actor: str
    changed_at: str | None


class _JSON(Response):
    """A JSON body already encoded (Starlette's constructor re-derives what is fixed here)."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json")]  # fmt: skip


def _decision(decision: OrderDecision) -> Response:
    """The decision as JSON (built directly: the hot path skips re-validating our own model;
    ``DecisionOut`` documents the shape)."""
    if decision.approved and not decision.violations:
        cid = json.dumps(decision.client_order_id).encode()
        return _JSON(b'{"approved":true,"client_order_id":%s,"violations":[]}' % cid)
    document = {
        "approved": decision.approved, "client_order_id": decision.client_order_id,
        "violations": [{"code": str(v.code), "message": v.message,
                        "detail": {str(k): str(x) for k, x in v.detail.items()}}
                       for v in decision.violations],
    }  # fmt: skip
    return Response(json.dumps(document, separators=(",", ":")), media_type="application/json")


_AMOUNTS = frozenset({"account_value", "cash", "realized_pnl_today", "unrealized_pnl"})
_COLLECTIONS = frozenset({"positions", "prices"})


def _plain_check(document: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(order, account)`` when ``document`` is an :class:`OrderCheck` that pydantic would
    take unchanged (amounts as strings or ints, prices without times, no ``None``); else
    None, and the model validates it (and words any error)."""
    if type(document) is not dict:
        return None
    order, account = document.get("order"), document.get("account")
    if type(order) is not dict or type(account) is not dict or "account_value" not in account:
        return None
    for key, value in account.items():
        if key in _AMOUNTS:
            if type(value) is not str and type(value) is not int:
                return None
        elif key in _COLLECTIONS:
            if type(value) is not dict or len(value) > 10_000:
                return None
            for item in value.values():
                if type(item) is not str and type(item) is not int:
                    return None
        elif key == "open_orders" and (type(value) is not int or value < 0):
            return None
    return order, account


def _account(body: AccountIn, now: datetime) -> AccountState:
    quotes: dict[str, Quote | tuple[object, datetime]] = {}
    for symbol, quote in body.prices.items():
        if isinstance(quote, QuoteIn):
            quotes[symbol] = Quote(quote.price, quote.time or now)
        else:
            quotes[symbol] = Quote(quote, now)
    return AccountState(
        account_value=body.account_value, cash=body.cash, positions=body.positions,
        prices=quotes, realized_pnl_today=body.realized_pnl_today,
        unrealized_pnl=body.unrealized_pnl, open_orders=body.open_orders,
    )  # fmt: skip


@router.post("/v1/orders/check", response_model=DecisionOut)
async def check_order(body: OrderCheck, request: Request) -> Response:
    """Every pre-trade check; the decision lists every violation with its stable code
    (``orders:submit``). The service answers this route through :func:`check_order_fast`;
    this FastAPI route documents it and serves apps that mount the router alone."""
    return await decide(body.order, partial(_account, body.account), await _may_submit(request),
                        await service(request))  # fmt: skip


async def check_order_fast(request: Request, document: Any) -> Response:
    """The same route without FastAPI's routing, dependency and body machinery (which cost
    more than every guard and risk check together): ``document`` is the JSON body the guard
    already parsed and inspected."""
    try:
        claims = await _may_submit(request)
        plain = _plain_check(document)
        if plain is not None:
            order, account = plain
            svc = await service(request)
            return await decide(order, partial(svc.snapshots.get, account), claims, svc)
        try:
            body = OrderCheck.model_validate(document)
        except ValidationError as exc:
            # located as FastAPI locates body errors
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            return invalid_request(request, errors)
        return await decide(body.order, partial(_account, body.account), claims,
                            await service(request))  # fmt: skip
    except ProblemError as exc:
        return problem(exc.status, exc.code, exc.detail, request_id=request_id(request),
                       headers=exc.headers)  # fmt: skip
    except TradeguardError as exc:
        return problem_for(exc, request_id=request_id(request))


async def decide(
    order: dict[str, Any],
    account_at: Callable[[datetime], AccountState],
    claims: Claims,
    svc: Service,
) -> Response:
    """Rate limit, then every risk check; a decision for any order content.

    ``account_at(now)`` builds the account state (its quotes stamped ``now`` when untimed).
    """
    engine, unreadable = await svc.run(svc.current_risk)
    limited = svc.validator.rate_limit(f"user:{claims.subject}", "order_submissions")
    if not limited.allowed:
        raise ProblemError(429, "RATE_LIMITED", "too many order checks: slow down",
                           retry_after(limited.retry_after))  # fmt: skip
    if unreadable is not None:
        refusal = Violation(Code.RISK_STATE_UNAVAILABLE, unreadable, {"check": "TRADING_STATE"})
        return _decision(engine.refuse(order, (refusal,)))
    now = engine.clock.now()
    try:
        account = account_at(now)
    except (InvalidAccountState, RiskError, ValueError, TypeError, ArithmeticError) as exc:
        why = str(exc) if isinstance(exc, InvalidAccountState) else type(exc).__name__
        refusal = Violation(Code.RISK_STATE_UNAVAILABLE, f"the account state is unusable: {why}",
                            {"check": "ACCOUNT", "reason": why})  # fmt: skip
        return _decision(engine.refuse(order, (refusal,)))
    return _decision(engine.check(order, account, now=now))


@router.post("/v1/orders/{client_order_id}/fill", status_code=204)
def fill(client_order_id: str, body: Fill, claims: Submitter, svc: ServiceDep) -> None:
    """Tell the engine an approved order (partly) filled."""
    try:
        known = svc.risk.on_fill(client_order_id, body.quantity, body.price)
    except (ValueError, RiskError) as exc:
        raise ProblemError(422, "INVALID_FILL", _short(exc)) from None
    if not known:
        raise ProblemError(404, "ORDER_NOT_FOUND", "no open approved order with that id")


@router.post("/v1/orders/{client_order_id}/cancel", status_code=204)
def cancel(client_order_id: str, claims: Canceller, svc: ServiceDep) -> None:
    """Tell the engine an approved order was cancelled."""
    if not svc.risk.on_cancel(client_order_id):
        raise ProblemError(404, "ORDER_NOT_FOUND", "no open approved order with that id")


@router.get("/v1/risk/state")
def risk_state(claims: Viewer, svc: ServiceDep) -> dict[str, Any]:
    """The trading state and the engine's counters."""
    engine = svc.risk
    stats = engine.stats()
    return {"trading": _status(engine.refresh_trading_state()).model_dump(),
            "stats": {k: v for k, v in stats.items() if k != "trading_state"}}  # fmt: skip


@router.put("/v1/risk/limits")
def put_limits(body: dict[str, Any], claims: Configurer, svc: ServiceDep) -> dict[str, Any]:
    """Replace the risk limits (the same fields as the TOML file)."""
    try:
        limits = RiskLimits.from_mapping(body)
    except ConfigurationError:
        raise
    except (TypeError, ValueError) as exc:
        raise ProblemError(422, "INVALID_CONFIGURATION", _short(exc)) from None
    svc.replace_limits(limits, actor=claims.username)
    return {"applied": True}


@router.post("/v1/risk/kill-switch", response_model=TradingStatusOut)
def engage(body: KillSwitchRequest, claims: Engager, svc: ServiceDep) -> TradingStatusOut:
    """HALT all trading now (persisted; every order is refused with KILL_SWITCH)."""
    return _status(svc.risk.engage_kill_switch(body.reason, claims.username))


@router.delete("/v1/risk/kill-switch", response_model=TradingStatusOut)
def release(claims: Releaser, svc: ServiceDep) -> TradingStatusOut:
    """Leave HALTED for ACTIVE."""
    return _status(svc.risk.release_kill_switch(claims.username))


def _status(status: Any) -> TradingStatusOut:
    changed = status.changed_at.isoformat() if status.changed_at is not None else None
    return TradingStatusOut(state=status.state.value, reason=status.reason, actor=status.actor,
                            changed_at=changed)  # fmt: skip


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
