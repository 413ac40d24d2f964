"""In-process tests of the /v1/auth and /v1/users routes: success and every bad path."""

from __future__ import annotations

from collections.abc import Callable

import pyotp
import pytest
from server_support import (
    ADMIN_PASSWORD,
    INITIAL_ADMIN_PASSWORD,
    USER_PASSWORDS,
    Api,
    assert_problem,
    bearer,
)

from tradeguard.facade import get_auth_handler

# -- the first-run gate ------------------------------------------------------------------


def test_first_admin_must_change_password_then_enrol_mfa(api: Api) -> None:
    first = api.headers("admin", INITIAL_ADMIN_PASSWORD)
    assert_problem(api.client.get("/v1/users", headers=first), 403, "PASSWORD_CHANGE_REQUIRED")
    assert api.client.get("/v1/auth/sessions", headers=first).status_code == 200  # exempt
    changed = api.client.post(
        "/v1/auth/password",
        headers=first,
        json={"old_password": INITIAL_ADMIN_PASSWORD, "new_password": ADMIN_PASSWORD},
    )
    assert changed.status_code == 204
    assert_problem(api.client.get("/v1/users", headers=first), 401, "INVALID_TOKEN")
    second = api.headers("admin", ADMIN_PASSWORD)
    assert_problem(api.client.get("/v1/users", headers=second), 403, "MFA_ENROLMENT_REQUIRED")
    secret = api.client.post("/v1/auth/mfa/enroll", headers=second).json()["secret"]
    code = pyotp.TOTP(secret).now()
    bad = api.client.post("/v1/auth/mfa/confirm", headers=second, json={"code": "000000"})
    if code != "000000":
        assert_problem(bad, 401, "INVALID_MFA_CODE")
    assert api.client.post("/v1/auth/mfa/confirm", headers=second, json={"code": code}).is_success
    assert api.client.get("/v1/users", headers=second).status_code == 200
    # from now on a login needs the second factor
    assert_problem(api.login("admin", ADMIN_PASSWORD), 401, "MFA_REQUIRED")


def test_password_change_bad_paths(api: Api, admin: dict[str, str]) -> None:
    wrong = {"old_password": "not the password at all 1", "new_password": USER_PASSWORDS["VIEWER"]}
    assert_problem(api.client.post("/v1/auth/password", headers=admin, json=wrong),
                   401, "INVALID_CREDENTIALS")  # fmt: skip
    weak = {"old_password": ADMIN_PASSWORD, "new_password": "password1234"}
    body = assert_problem(api.client.post("/v1/auth/password", headers=admin, json=weak),
                          422, "WEAK_PASSWORD")  # fmt: skip
    assert "password1234" not in str(body)
    assert_problem(api.client.post("/v1/auth/password", json=weak), 401, "AUTHENTICATION_REQUIRED")


def test_a_gated_admin_cannot_end_other_users_sessions(api: Api) -> None:
    get_auth_handler().create_user("trader1", USER_PASSWORDS["TRADER"], role="TRADER")
    trader = api.login("trader1", USER_PASSWORDS["TRADER"]).json()
    first = api.headers("admin", INITIAL_ADMIN_PASSWORD)  # must change the password first
    ended = api.client.delete(f"/v1/auth/sessions/{trader['session_id']}", headers=first)
    assert_problem(ended, 404, "SESSION_NOT_FOUND")
    assert api.client.get("/v1/auth/sessions", headers=bearer(trader["access_token"])).is_success


# -- login, refresh, logout, sessions ----------------------------------------------------


def test_login_bad_paths(api: Api, admin: dict[str, str]) -> None:
    assert_problem(api.login("admin", "wrong passphrase entirely 42"), 401, "INVALID_CREDENTIALS")
    assert_problem(api.login("nobody", "wrong passphrase entirely 42"), 401, "INVALID_CREDENTIALS")
    assert_problem(api.login("admin", ADMIN_PASSWORD, "123"), 401, "INVALID_MFA_CODE")
    missing = api.client.post("/v1/auth/login", json={"username": "admin"})
    body = assert_problem(missing, 422, "INVALID_REQUEST")
    assert body["errors"] == [{"loc": ["body", "password"], "type": "missing"}]


def test_refresh_rotates_and_reuse_ends_the_session(api: Api, admin: dict[str, str]) -> None:
    get_auth_handler().create_user("trader1", USER_PASSWORDS["TRADER"], role="TRADER")
    first = api.login("trader1", USER_PASSWORDS["TRADER"]).json()
    second = api.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert pair["session_id"] == first["session_id"]
    assert api.client.get("/v1/auth/sessions", headers=bearer(pair["access_token"])).is_success
    reuse = api.client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(reuse, 401, "REFRESH_TOKEN_REUSED")
    assert reuse.headers["www-authenticate"].startswith("Bearer ")
    for token in (first["access_token"], pair["access_token"]):
        assert_problem(api.client.get("/v1/risk/state", headers=bearer(token)),
                       401, "INVALID_TOKEN")  # fmt: skip
    again = api.client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(again, 401, "INVALID_TOKEN")
    forged = api.client.post("/v1/auth/refresh", json={"refresh_token": "not.a.token"})
    assert_problem(forged, 401, "INVALID_TOKEN")
    # an access token is no refresh token
    swapped = api.client.post("/v1/auth/refresh", json={"refresh_token": pair["access_token"]})
    assert_problem(swapped, 401, "INVALID_TOKEN")


def test_logout_and_sessions(api: Api, admin: dict[str, str]) -> None:
    get_auth_handler().create_user("viewer1", USER_PASSWORDS["VIEWER"], role="VIEWER")
    one = api.login("viewer1", USER_PASSWORDS["VIEWER"]).json()
    two = api.login("viewer1", USER_PASSWORDS["VIEWER"]).json()
    listed = api.client.get("/v1/auth/sessions", headers=bearer(one["access_token"])).json()
    assert {s["id"] for s in listed} == {one["session_id"], two["session_id"]}
    assert [s["current"] for s in listed if s["id"] == one["session_id"]] == [True]
    # a session of someone else is not found for a non-admin; an admin may end any
    admin_sid = api.client.get("/v1/auth/sessions", headers=admin).json()[0]["id"]
    other = api.client.delete(f"/v1/auth/sessions/{admin_sid}", headers=bearer(one["access_token"]))
    assert_problem(other, 404, "SESSION_NOT_FOUND")
    ended = api.client.delete(f"/v1/auth/sessions/{two['session_id']}", headers=admin)
    assert ended.status_code == 204
    assert_problem(api.client.get("/v1/auth/sessions", headers=bearer(two["access_token"])),
                   401, "INVALID_TOKEN")  # fmt: skip
    unknown = api.client.delete("/v1/auth/sessions/nope", headers=admin)
    assert_problem(unknown, 404, "SESSION_NOT_FOUND")
    out = api.client.post("/v1/auth/logout", headers=bearer(one["access_token"]))
    assert out.status_code == 204
    assert_problem(api.client.post("/v1/auth/logout", headers=bearer(one["access_token"])),
                   401, "INVALID_TOKEN")  # fmt: skip


def test_mfa_login_with_totp_and_recovery_code(api: Api, admin: dict[str, str]) -> None:
    get_auth_handler().create_user("trader1", USER_PASSWORDS["TRADER"], role="TRADER")
    headers = api.headers("trader1", USER_PASSWORDS["TRADER"])
    assert_problem(api.client.post("/v1/auth/mfa/confirm", headers=headers, json={"code": "1"}),
                   403, "FORBIDDEN")  # nothing pending  # fmt: skip
    enrolment = api.client.post("/v1/auth/mfa/enroll", headers=headers).json()
    assert enrolment["provisioning_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrolment["secret"])
    code = totp.now()
    assert api.client.post("/v1/auth/mfa/confirm", headers=headers, json={"code": code}).is_success
    assert_problem(api.login("trader1", USER_PASSWORDS["TRADER"]), 401, "MFA_REQUIRED")
    # the confirmation used this step's code: a replay of it is refused
    assert_problem(api.login("trader1", USER_PASSWORDS["TRADER"], code), 401, "INVALID_MFA_CODE")
    recovery = enrolment["recovery_codes"][0]
    assert api.login("trader1", USER_PASSWORDS["TRADER"], recovery).status_code == 200
    assert_problem(api.login("trader1", USER_PASSWORDS["TRADER"], recovery),
                   401, "INVALID_MFA_CODE")  # one use only  # fmt: skip


# -- users -------------------------------------------------------------------------------


def test_user_crud(api: Api, admin: dict[str, str]) -> None:
    made = api.client.post("/v1/users", headers=admin,
                           json={"username": "carol", "role": "viewer"})  # fmt: skip
    assert made.status_code == 201
    created = made.json()
    assert created["role"] == "VIEWER" and created["must_change_password"] is True
    generated = created["initial_password"]
    assert generated and len(generated) >= 20
    assert api.client.get("/v1/users/carol", headers=admin).json()["initial_password"] is None
    names = {u["username"] for u in api.client.get("/v1/users", headers=admin).json()}
    assert names == {"admin", "carol"}
    patched = api.client.patch("/v1/users/carol", headers=admin, json={"role": "TRADER"})
    assert patched.json()["role"] == "TRADER"
    carol = api.headers("carol", generated)
    assert_problem(api.client.get("/v1/risk/state", headers=carol), 403,
                   "PASSWORD_CHANGE_REQUIRED")  # fmt: skip
    disabled = api.client.patch("/v1/users/carol", headers=admin, json={"disabled": True})
    assert disabled.json()["disabled"] is True
    assert_problem(api.client.get("/v1/auth/sessions", headers=carol), 401, "INVALID_TOKEN")
    assert api.client.patch("/v1/users/carol", headers=admin,
                            json={"disabled": False}).json()["disabled"] is False  # fmt: skip
    reset = api.client.post("/v1/users/carol/password", headers=admin, json={})
    assert reset.status_code == 200 and reset.json()["initial_password"]
    chosen = api.client.post("/v1/users/carol/password", headers=admin,
                             json={"password": USER_PASSWORDS["TRADER"]})  # fmt: skip
    assert chosen.json()["initial_password"] is None
    assert USER_PASSWORDS["TRADER"] not in chosen.text
    assert api.client.post("/v1/users/carol/unlock", headers=admin).status_code == 204
    assert api.client.post("/v1/users/carol/mfa/reset", headers=admin).status_code == 204
    assert api.client.delete("/v1/users/carol", headers=admin).status_code == 204
    assert_problem(api.client.get("/v1/users/carol", headers=admin), 404, "USER_NOT_FOUND")


def test_user_bad_paths(api: Api, admin: dict[str, str]) -> None:
    body = {"username": "dave", "role": "TRADER", "password": USER_PASSWORDS["TRADER"]}
    assert api.client.post("/v1/users", headers=admin, json=body).status_code == 201
    assert_problem(api.client.post("/v1/users", headers=admin, json=body), 409, "USER_EXISTS")
    weak = {"username": "erin", "role": "TRADER", "password": "erin-password"}
    problem = assert_problem(api.client.post("/v1/users", headers=admin, json=weak),
                             422, "WEAK_PASSWORD")  # fmt: skip
    assert "erin-password" not in str(problem)
    empty = {"username": "erin", "role": "TRADER", "password": ""}  # not "generate one"
    assert_problem(api.client.post("/v1/users", headers=admin, json=empty), 422, "WEAK_PASSWORD")
    reset = api.client.post("/v1/users/dave/password", headers=admin, json={"password": ""})
    assert_problem(reset, 422, "WEAK_PASSWORD")
    role = {"username": "erin", "role": "ROOT", "password": USER_PASSWORDS["TRADER"]}
    assert_problem(api.client.post("/v1/users", headers=admin, json=role), 422, "UNKNOWN_ROLE")
    for verb, path in (("GET", "/v1/users/ghost"), ("PATCH", "/v1/users/ghost"),
                       ("DELETE", "/v1/users/ghost"), ("POST", "/v1/users/ghost/unlock"),
                       ("POST", "/v1/users/ghost/mfa/reset"),
                       ("POST", "/v1/users/ghost/password")):  # fmt: skip
        json = {} if verb in ("PATCH", "POST") else None
        found = api.client.request(verb, path, headers=admin, json=json)
        assert_problem(found, 404, "USER_NOT_FOUND")
    assert_problem(api.client.delete("/v1/users/admin", headers=admin), 409, "CANNOT_DELETE_SELF")


@pytest.mark.parametrize(
    "body",
    [
        {"username": "frank", "role": "TRADER", "password": ["s3cret-in-a-list-9f2e"]},
        {"username": "frank", "role": "TRADER", "password": 918273645546372819},
        {"username": "frank", "role": "TRADER", "display_name": "x" * 300},
        {"username": "s3cret-in-a-list-9f2e" * 5, "role": "TRADER"},
        {"role": "TRADER"},
    ],
)
def test_schema_errors_never_echo_input(
    api: Api, admin: dict[str, str], body: dict[str, object]
) -> None:
    response = api.client.post("/v1/users", headers=admin, json=body)
    problem = assert_problem(response, 422, "INVALID_REQUEST")
    assert problem["errors"]
    assert all(set(e) == {"loc", "type"} for e in problem["errors"])  # type: ignore[union-attr]
    for marker in ("s3cret-in-a-list-9f2e", "918273645546372819", "xxxxxxxxxx"):
        assert marker not in response.text


@pytest.mark.parametrize("password", ["it's a \"quoted\" <pass> -- word; DROP 77",
                                      "' OR '1'='1' -- and then <script>x</script> 5"])  # fmt: skip
def test_credential_fields_are_not_inspected(
    api: Api, admin: dict[str, str], password: str
) -> None:
    body = {"username": "quoter", "role": "TRADER", "password": password}
    assert api.client.post("/v1/users", headers=admin, json=body).status_code == 201
    assert api.login("quoter", password).status_code == 200
    assert_problem(api.login("quoter", password + "x"), 401, "INVALID_CREDENTIALS")
    headers = api.headers("quoter", password)
    change = {"old_password": password, "new_password": password[::-1] + " <!-- 9"}
    assert api.client.post("/v1/auth/password", headers=headers, json=change).status_code == 204


def test_service_accounts_use_api_keys(
    api: Api, admin: dict[str, str], as_role: Callable[[str], dict[str, str]]
) -> None:
    handler = get_auth_handler()
    handler.create_user("bot", USER_PASSWORDS["SERVICE"], role="SERVICE")
    key = handler.create_api_key("bot", name="ci")
    assert key.startswith("tg_")
    headers = bearer(key)
    assert api.client.get("/v1/risk/state", headers=headers).status_code == 200
    assert api.client.get("/v1/secrets", headers=headers).status_code == 200
    assert_problem(api.client.get("/v1/users", headers=headers), 403, "FORBIDDEN")
    for route in ("/v1/auth/logout", "/v1/auth/mfa/enroll"):
        assert_problem(api.client.post(route, headers=headers), 403, "NOT_A_SESSION")
    change = {"old_password": USER_PASSWORDS["SERVICE"], "new_password": "x" * 40}
    answer = api.client.post("/v1/auth/password", headers=headers, json=change)
    assert_problem(answer, 403, "NOT_A_SESSION")
    assert api.client.get("/v1/auth/sessions", headers=headers).status_code == 403
    forged = bearer(key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB"))
    assert_problem(api.client.get("/v1/risk/state", headers=forged), 401, "INVALID_TOKEN")
    handler.revoke_api_key(key.split("_")[1])
    assert_problem(api.client.get("/v1/risk/state", headers=headers), 401, "INVALID_TOKEN")
