"""Orders and limits as inputs: strict parsing, exact decimals, validated configuration."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradeguard.errors import ConfigurationError, RiskError
from tradeguard.risk import (
    InvalidOrder,
    Order,
    OrderType,
    RateWindow,
    RiskLimits,
    Side,
    TimeInForce,
    parse_rates,
)

BASE = {"symbol": "AAPL", "side": "buy", "quantity": 10}


def problems(mapping: object) -> dict[str, str]:
    with pytest.raises(InvalidOrder) as caught:
        Order.parse(mapping)
    return dict(caught.value.problems)


# -- Order.parse --------------------------------------------------------------------------


def test_parse_when_minimal_mapping_then_market_order_with_defaults() -> None:
    order = Order.parse(BASE)
    assert order == Order(symbol="AAPL", side=Side.BUY, quantity=Decimal(10))
    assert order.order_type is OrderType.MARKET
    assert order.time_in_force is TimeInForce.DAY
    assert order.account_id == "default"
    assert order.venue == ""
    assert order.reduce_only is False


def test_parse_when_every_field_given_then_each_is_kept() -> None:
    order = Order.parse(
        {
            "symbol": " msft ",
            "side": "SELL",
            "quantity": "12.5",
            "order_type": "stop-limit",
            "limit_price": "401.10",
            "stop_price": 400,
            "time_in_force": "gtc",
            "venue": "xnas",
            "client_order_id": "c-1",
            "account_id": "acct-9",
            "strategy_id": "mean-revert",
            "reduce_only": True,
        }
    )
    assert order.symbol == "MSFT"
    assert order.side is Side.SELL
    assert order.quantity == Decimal("12.5")
    assert order.order_type is OrderType.STOP_LIMIT
    assert order.limit_price == Decimal("401.10")
    assert order.stop_price == Decimal(400)
    assert order.time_in_force is TimeInForce.GTC
    assert order.venue == "XNAS"
    assert (order.client_order_id, order.account_id, order.strategy_id) == (
        "c-1",
        "acct-9",
        "mean-revert",
    )
    assert order.reduce_only is True


def test_parse_when_float_given_then_converted_through_its_shortest_repr() -> None:
    order = Order.parse({**BASE, "quantity": 0.1, "limit_price": 190.1})
    assert order.quantity == Decimal("0.1")
    assert order.limit_price == Decimal("190.1")
    assert order.quantity != Decimal.from_float(0.1)  # the binary value is not 0.1


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ({}, OrderType.MARKET),
        ({"limit_price": 10}, OrderType.LIMIT),
        ({"price": 10}, OrderType.LIMIT),
        ({"stop_price": 10}, OrderType.STOP),
        ({"limit_price": 10, "stop_price": 11}, OrderType.STOP_LIMIT),
    ],
)
def test_parse_when_no_type_then_inferred_from_prices(
    extra: dict[str, object], kind: OrderType
) -> None:
    assert Order.parse({**BASE, **extra}).order_type is kind


@pytest.mark.parametrize(
    ("quantity", "why"),
    [
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("NaN", "finite"),
        ("-Infinity", "finite"),
        (0, "greater than zero"),
        (-5, "greater than zero"),
        ("0.0", "greater than zero"),
        (True, "boolean"),
        ("ten", "not a number"),
        ([1], "expected a number"),
        (Decimal("1e15"), "below"),
    ],
)
def test_parse_when_quantity_malformed_then_invalid_naming_quantity(
    quantity: object, why: str
) -> None:
    assert why in problems({**BASE, "quantity": quantity})["quantity"]


def test_parse_when_many_faults_then_every_one_is_listed() -> None:
    found = problems({"symbol": "", "side": "hold", "quantity": "x", "colour": "red"})
    assert set(found) == {"symbol", "side", "quantity", "colour"}
    assert found["colour"] == "unknown field"


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({**BASE, "order_type": "limit"}, "limit_price"),
        ({**BASE, "order_type": "stop", "limit_price": 5}, "limit_price"),
        ({**BASE, "order_type": "stop"}, "stop_price"),
        ({**BASE, "order_type": "market", "limit_price": 5}, "limit_price"),
        ({**BASE, "order_type": "limit", "limit_price": 5, "stop_price": 5}, "stop_price"),
        ({**BASE, "order_type": "iceberg"}, "order_type"),
        ({**BASE, "time_in_force": "forever"}, "time_in_force"),
        ({**BASE, "limit_prce": 5}, "limit_prce"),
        ({**BASE, "price": 5, "limit_price": 6}, "limit_price"),
        ({**BASE, "reduce_only": "maybe"}, "reduce_only"),
        ({**BASE, "venue": "NY SE"}, "venue"),
        ({**BASE, "account_id": ""}, "account_id"),
        ({**BASE, "client_order_id": "x" * 200}, "client_order_id"),
        ({**BASE, "symbol": 7}, "symbol"),
        ({"side": "buy", "quantity": 1}, "symbol"),
    ],
)
def test_parse_when_field_wrong_then_invalid_naming_it(
    mapping: dict[str, object], field: str
) -> None:
    assert field in problems(mapping)


def test_parse_when_not_a_mapping_then_invalid() -> None:
    assert "order" in problems(["symbol", "AAPL"])


def test_invalid_order_when_raised_then_is_a_risk_error_and_value_error() -> None:
    with pytest.raises(InvalidOrder) as caught:
        Order.parse({})
    assert isinstance(caught.value, RiskError)
    assert isinstance(caught.value, ValueError)
    assert "symbol: is required" in str(caught.value)


def test_order_when_built_directly_with_bad_values_then_refused() -> None:
    with pytest.raises(InvalidOrder):
        Order(symbol="AAPL", side=Side.BUY, quantity=Decimal("NaN"))
    with pytest.raises(InvalidOrder):
        Order(symbol="aapl", side=Side.BUY, quantity=Decimal(1))  # not normalised
    with pytest.raises(InvalidOrder):
        Order(symbol="AAPL", side=Side.BUY, quantity=1)  # type: ignore[arg-type]


def test_order_when_built_then_immutable_and_replace_validates() -> None:
    order = Order.parse(BASE)
    with pytest.raises(AttributeError):
        order.quantity = Decimal(1)  # type: ignore[misc]
    assert order.replace(quantity=Decimal(5)).quantity == 5
    with pytest.raises(InvalidOrder):
        order.replace(quantity=Decimal(0))
    with pytest.raises(InvalidOrder):
        order._replace(limit_price=Decimal(1))  # a market order takes no limit price


# -- RiskLimits ---------------------------------------------------------------------------


def test_limits_when_defaulted_then_documented_safe_values() -> None:
    limits = RiskLimits()
    assert limits.max_order_quantity == 10_000
    assert limits.max_order_notional == 100_000
    assert limits.max_concentration == Decimal("0.25")
    assert limits.max_gross_exposure == 2
    assert limits.price_collar == Decimal("0.10")
    assert limits.max_quote_age == timedelta(seconds=60)
    assert [str(w) for w in limits.order_rate] == ["10/second", "300/minute"]
    assert [str(w) for w in limits.symbol_order_rate] == ["10/second", "300/minute"]
    assert limits.duplicate_window == timedelta(seconds=2)
    assert limits.max_open_orders == 100
    assert limits.max_daily_loss_fraction == Decimal("0.05")
    assert limits.max_position_quantity is None
    assert limits.restricted_symbols == frozenset()
    assert limits.allowed_symbols is None


def test_limits_when_amounts_given_as_int_str_decimal_float_then_decimals() -> None:
    limits = RiskLimits(
        max_order_quantity=500,
        max_order_notional="12345.67",
        max_position_quantity=Decimal("1000"),
        price_collar=0.05,
    )
    assert limits.max_order_quantity == Decimal(500)
    assert limits.max_order_notional == Decimal("12345.67")
    assert limits.max_position_quantity == Decimal(1000)
    assert limits.price_collar == Decimal("0.05")


def test_limits_when_durations_given_as_seconds_or_timedelta_then_timedeltas() -> None:
    limits = RiskLimits(max_quote_age=timedelta(milliseconds=1500), duplicate_window="0.5")
    assert limits.max_quote_age == timedelta(seconds=1.5)
    assert limits.duplicate_window == timedelta(milliseconds=500)
    assert limits.quote_age_us == 1_500_000


def test_limits_when_symbol_lists_given_as_any_iterable_then_upper_cased_sets() -> None:
    limits = RiskLimits(
        restricted_symbols=(s for s in ["gme", "AMC"]), allowed_symbols={"aapl", "msft"}
    )
    assert limits.restricted_symbols == frozenset({"GME", "AMC"})
    assert limits.allowed_symbols == frozenset({"AAPL", "MSFT"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_order_quantity", 0),
        ("max_order_quantity", -1),
        ("max_order_notional", "lots"),
        ("max_order_notional", float("nan")),
        ("price_collar", True),
        ("max_quote_age", 0),
        ("max_quote_age", "soon"),
        ("order_rate", "10/fortnight"),
        ("order_rate", "0/second"),
        ("symbol_order_rate", 5),
        ("max_open_orders", 1.5),
        ("max_open_orders", 0),
        ("restricted_symbols", "GME"),
        ("allowed_symbols", ["not a symbol!"]),
    ],
)
def test_limits_when_value_bad_then_configuration_error_names_field(
    field: str, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=field):
        RiskLimits(**{field: value})


def test_limits_when_off_or_none_then_check_disabled() -> None:
    limits = RiskLimits(max_order_quantity=None, price_collar="off", order_rate="off")
    assert limits.max_order_quantity is None
    assert limits.price_collar is None
    assert limits.order_rate == ()


def test_limits_when_positional_then_refused() -> None:
    with pytest.raises(TypeError):
        RiskLimits(10)  # type: ignore[misc]


def test_limits_when_built_then_frozen_and_hashable() -> None:
    limits = RiskLimits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_order_quantity = Decimal(1)  # type: ignore[misc]
    assert hash(limits) == hash(RiskLimits())
    assert limits == RiskLimits()


def test_rates_when_spec_parsed_then_windows_sorted_by_length() -> None:
    windows = parse_rates("200/minute; 10/second, 100/10s, 5/2 minutes")
    assert [(w.limit, w.window.total_seconds()) for w in windows] == [
        (10, 1),
        (100, 10),
        (200, 60),
        (5, 120),
    ]
    assert parse_rates([RateWindow(3, timedelta(seconds=1))])[0].micros == 1_000_000


def test_overrides_when_symbol_has_them_then_only_that_symbol_changes() -> None:
    limits = RiskLimits(
        max_order_quantity=1000,
        symbol_overrides={"tsla": {"max_order_quantity": 50, "price_collar": "0.02"}},
    )
    tsla = limits.for_symbol("TSLA")
    assert tsla.max_order_quantity == 50
    assert tsla.price_collar == Decimal("0.02")
    assert tsla.max_order_notional == limits.max_order_notional
    assert limits.for_symbol("AAPL") is limits


def test_overrides_when_account_level_limit_overridden_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"symbols\.TSLA\.max_open_orders"):
        RiskLimits(symbol_overrides={"TSLA": {"max_open_orders": 5}})
    with pytest.raises(ConfigurationError, match=r"symbols\.TSLA\.max_order_quantity"):
        RiskLimits(symbol_overrides={"TSLA": {"max_order_quantity": -5}})


def test_from_mapping_when_unknown_key_then_configuration_error_names_it() -> None:
    with pytest.raises(ConfigurationError, match="max_order_qty"):
        RiskLimits.from_mapping({"max_order_qty": 5})


def test_from_toml_when_file_has_risk_table_and_symbols_then_loaded(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(
        """
[risk]
max_order_quantity = 500
max_order_notional = "250000"
price_collar = 0.05
max_quote_age = 30
order_rate = "10/second;200/minute"
restricted_symbols = ["GME"]
max_position_quantity = "off"

[risk.symbols.TSLA]
max_order_quantity = 20
""",
        encoding="utf-8",
    )
    limits = RiskLimits.from_toml(path)
    assert limits.max_order_quantity == 500
    assert limits.max_order_notional == 250_000
    assert limits.price_collar == Decimal("0.05")
    assert limits.max_quote_age == timedelta(seconds=30)
    assert [str(w) for w in limits.order_rate] == ["10/second", "200/minute"]
    assert limits.restricted_symbols == {"GME"}
    assert limits.max_position_quantity is None
    assert limits.for_symbol("TSLA").max_order_quantity == 20


def test_from_toml_when_file_bad_then_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        RiskLimits.from_toml(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("max_order_quantity = = 1", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        RiskLimits.from_toml(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("max_order_quantity = 0", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="max_order_quantity"):
        RiskLimits.from_toml(wrong)
