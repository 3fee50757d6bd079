"""Logins under a flood: fair password-check slots, made-up names without a password check, the per-account cap."""

from __future__ import annotations

import threading

import pytest

import web.auth as auth_module
from pipeline.archive.audit import AuditFilters, AuditLog
from tests.web.fixtures import Clock, app_for, csrf_of, data_site, login, site_config
from web.auth import DEVICE_COOKIE, NO_SUCH_USER
from web.logins import Busy, Pacer, VerifyGate
from web.users import UserStore

WRONG = "not the password"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return site_config(data_site(tmp_path_factory), login_attempts=3, account_login_attempts=5)


@pytest.fixture
def app(config):
    return app_for(config, Clock())


# --- the gate: fair by source, known devices first ---------------------------------------


def _waiter(gate: VerifyGate, source: str, order: list[str], known: bool = False) -> threading.Thread:
    def wait() -> None:
        with gate.slot(source, known_device=known):
            order.append(source)

    thread = threading.Thread(target=wait)
    thread.start()
    return thread


def _queued(gate: VerifyGate, count: int) -> None:
    """Until ``count`` logins are waiting (the gate's own queues say so)."""
    while sum(len(q) for lanes in gate._lanes for q in lanes.values()) < count:
        threading.Event().wait(0.01)


def test_slots_go_round_robin_by_address_and_to_known_devices_first():
    gate, order = VerifyGate(1, wait_seconds=30), []
    with gate.slot("held"):
        threads = [_waiter(gate, "flood", order) for _ in range(3)]
        _queued(gate, 3)
        threads.append(_waiter(gate, "nurse", order))
        _queued(gate, 4)
        threads.append(_waiter(gate, "flood-too", order, known=True))
        _queued(gate, 5)
    for thread in threads:
        thread.join(30)
    assert order == ["flood-too", "flood", "nurse", "flood", "flood"]


def test_an_address_with_too_many_logins_waiting_is_busy_at_once_and_others_are_not():
    gate = VerifyGate(1, wait_seconds=30, per_source=2)
    order: list[str] = []
    with gate.slot("held"):
        threads = [_waiter(gate, "flood", order) for _ in range(2)]
        _queued(gate, 2)
        with pytest.raises(Busy):
            gate.turn("flood")
        threads.append(_waiter(gate, "nurse", order))
        _queued(gate, 3)
    for thread in threads:
        thread.join(30)
    assert sorted(order) == ["flood", "flood", "nurse"]


def test_a_login_waiting_too_long_is_busy_and_leaves_the_queue():
    gate = VerifyGate(1, wait_seconds=0.05)
    with gate.slot("held"), pytest.raises(Busy):
        gate.turn("late")
    assert not any(lanes for lanes in gate._lanes)
    gate.turn("next")  # the slot is free again


def test_the_pacer_draws_from_the_checks_it_saw():
    pacer = Pacer(keep=3)
    assert pacer.delay() is None
    for seconds in (0.1, 0.2, 0.3, 0.4):
        pacer.observe(seconds)
    assert {pacer.delay() for _ in range(200)} == {0.2, 0.3, 0.4}


# --- made-up names ---------------------------------------------------------------------


def _checks_and_sleeps(monkeypatch) -> tuple[list[str], list[float]]:
    checked: list[str] = []
    slept: list[float] = []
    real = UserStore.authenticate

    def counting(self, name, password):
        checked.append(name)
        return real(self, name, password)

    monkeypatch.setattr(UserStore, "authenticate", counting)
    monkeypatch.setattr(auth_module.time, "sleep", slept.append)
    return checked, slept


def test_made_up_names_are_answered_like_wrong_passwords_without_a_password_check(app, monkeypatch):
    checked, slept = _checks_and_sleeps(monkeypatch)
    client = app.test_client()
    real = login(client, "cal", WRONG, address="10.20.0.1")
    made_up = [login(client, f"ghost-{n}", WRONG, address="10.20.0.3") for n in range(4)]
    assert {r.status_code for r in [real, *made_up]} == {401}
    assert {r.text for r in made_up} == {real.text}
    # A password check for the real name; the made-up ones wait as long as it took, without one.
    assert checked == ["cal"] and len(slept) == 4 and len(set(slept)) == 1 and slept[0] > 0


def test_a_flood_of_made_up_names_is_one_audit_entry_with_a_count(app, config, monkeypatch):
    _checks_and_sleeps(monkeypatch)
    trail = AuditLog.for_config(config)
    before = len(list(trail.entries(AuditFilters(action="login.failed"))))
    client = app.test_client()
    for n in range(12):
        assert login(client, f"made-up-{n}", WRONG, address="10.21.0.1").status_code == 401
    written = list(trail.entries(AuditFilters(action="login.failed")))[before:]
    assert [(e["user"], e["details"]["address"]) for e in written] == [(NO_SUCH_USER, "10.21.0.1")]


# --- the per-account cap ----------------------------------------------------------------


def test_guesses_from_many_addresses_lock_the_account_but_not_its_own_browser(app, config):
    own = app.test_client()
    assert login(own, "rey", address="10.30.0.1").status_code == 302
    assert own.get_cookie(DEVICE_COOKIE) is not None
    own.post("/logout", data={"csrf_token": csrf_of(own.get("/").text)})
    attacker = app.test_client()
    for n in range(config.web.account_login_attempts):
        # Each address stays under its own limit (3).
        assert login(attacker, "rey", WRONG, address=f"10.31.0.{n}").status_code == 401
    assert login(attacker, "rey", address="10.31.0.200").status_code == 429  # the right password, a new address
    assert login(app.test_client(), "rey", address="10.30.0.1").status_code == 429  # the same address, no cookie
    assert login(own, "rey", address="10.30.0.1").status_code == 302  # the browser it logged in from


def test_a_made_up_name_is_locked_out_the_same_way(app, config, monkeypatch):
    _checks_and_sleeps(monkeypatch)
    client = app.test_client()
    statuses = [login(client, "phantom", WRONG, address=f"10.32.0.{n}").status_code for n in range(7)]
    assert statuses == [401] * config.web.account_login_attempts + [429, 429]
