"""The console's HTTP surface without a broker: the signer and the readers are fakes, the routes, cookies, refusals
and session lifetimes are the real ones (console.app). On the real broker: tests/integration/test_console_browser.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from console.app import COOKIE, ConsoleConfig, Sessions, create_app
from console.principals import OPERATIONS
from console.sessions import Buffer, SignInFailed

pytestmark = pytest.mark.unit
PASSWORDS = {"partner-rus": "rus-secret", "partner-usa": "usa-secret", "operations": "ops-secret"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


class FakeReader:
    def __init__(self, principal):
        self.principal = principal
        self.buffer = Buffer(10)
        self.topics = {f"{principal.feed_prefix}air.track"} if principal.feed_prefix else set()
        self.error = None
        self.closed = False

    def snapshot(self):
        return {"outcomes": {"series": [], "totals": []}, "principal": self.principal.name}

    def close(self):
        self.closed = True


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def console():
    signed_in, readers, clock = [], [], Clock()

    def signer(settings, principal, password):  # the broker's answer, played by a table
        signed_in.append(principal.name)
        if PASSWORDS.get(principal.name) != password:
            raise SignInFailed(f"the broker refused the credentials of {principal.name}")
        return SimpleNamespace(principal=principal)

    def reader_of(signed, config):
        readers.append(FakeReader(signed.principal))
        readers[-1].buffer.append({"id": "liaison.partner.rus.air.track/0/7", "type": "AirTrack"})
        return readers[-1]

    config = ConsoleConfig(settings=None, partners=frozenset({"RUS", "USA"}), components=frozenset({"naval"}),
                           grids={}, idle_timeout_s=60.0)
    sessions = Sessions(config, clock=clock, signer=signer, reader_of=reader_of)
    with TestClient(create_app(config, sessions), base_url="http://127.0.0.1") as client:
        yield SimpleNamespace(client=client, signed_in=signed_in, readers=readers, clock=clock, sessions=sessions)


def login(client, user, password):
    return client.post("/login", content=f"username={user}&password={password}", headers=FORM,
                       follow_redirects=False)


def test_a_wrong_password_is_the_brokers_refusal_and_sets_no_cookie(console):
    r = login(console.client, "partner-rus", "guess")
    assert r.status_code == 401
    assert "the broker refused the credentials of partner-rus" in r.text and 'id="sign-in-error"' in r.text
    assert COOKIE not in r.cookies and not console.readers and len(console.sessions) == 0


@pytest.mark.parametrize("user", ["admin", "forwarder", "partner-fra", "<script>"])
def test_a_user_the_console_does_not_serve_is_refused_before_the_broker_is_asked(console, user):
    r = login(console.client, user, "whatever")
    assert r.status_code == 401 and "cannot sign in to the console" in r.text
    assert "<script>" not in r.text  # the name is escaped in the page
    assert console.signed_in == []


def test_a_session_reads_its_own_stream_and_is_refused_anothers(console):
    r = login(console.client, "partner-rus", "rus-secret")
    assert r.status_code == 303 and r.headers["location"] == "/view"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    c = console.client
    assert c.get("/api/me").json() == {"principal": "partner-rus", "kind": "officer", "recipient": "RUS",
                                       "title": "RUS liaison officer"}
    got = c.get("/api/items").json()
    assert [i["id"] for i in got["items"]] == ["liaison.partner.rus.air.track/0/7"] and got["last"] == 1
    assert c.get("/api/items?principal=partner-rus").status_code == 200
    for path in ("/api/items?principal=partner-usa", "/api/stream?principal=partner-usa",
                 "/api/me?principal=operations", "/api/operations", "/api/operations/stream"):
        assert c.get(path).status_code == 403, path
    assert "officer" in c.get("/view").text and 'data-principal="partner-rus"' in c.get("/view").text


def test_operations_gets_the_operations_view_and_no_feed(console):
    assert login(console.client, "operations", "ops-secret").status_code == 303
    c = console.client
    assert console.readers[-1].principal.kind == OPERATIONS
    assert c.get("/api/operations").json()["principal"] == "operations"
    assert c.get("/api/items").status_code == 403 and c.get("/api/stream").status_code == 403
    assert 'class="operations"' in c.get("/view").text


def test_signing_out_closes_the_reader_and_the_session(console):
    login(console.client, "partner-usa", "usa-secret")
    reader = console.readers[-1]
    r = console.client.post("/logout", follow_redirects=False)
    assert r.status_code == 303 and reader.closed and len(console.sessions) == 0
    assert console.client.get("/api/me").status_code == 401
    assert console.client.get("/view", follow_redirects=False).headers["location"] == "/"


def test_an_idle_session_expires_and_its_reader_is_closed(console):
    login(console.client, "partner-rus", "rus-secret")
    console.clock.now += 59
    assert console.client.get("/api/me").status_code == 200  # a request keeps it alive
    console.clock.now += 61
    assert console.client.get("/api/me").status_code == 401
    assert console.readers[-1].closed


def test_without_a_session_every_api_is_401_and_the_pages_lead_to_sign_in(console):
    c = console.client
    for path in ("/api/me", "/api/items", "/api/stream", "/api/operations", "/api/operations/stream"):
        assert c.get(path).status_code == 401, path
    assert 'id="sign-in"' in c.get("/").text
    assert c.get("/view", follow_redirects=False).status_code == 303


def test_the_map_and_its_base_map_are_served_by_the_console_itself(console):
    c = console.client
    assert c.get("/vendor/leaflet/leaflet.js").status_code == 200
    assert c.get("/vendor/topojson-client/topojson-client.min.js").status_code == 200
    atlas = c.get("/vendor/world-atlas/countries-50m.json")
    assert atlas.status_code == 200 and atlas.json()["type"] == "Topology"
    # the pages name no other host: nothing is fetched from a CDN or a tile server
    for page in ("officer.html", "operations.html", "login.html"):
        text = (console.sessions.config.web_dir / page).read_text()
        assert "http://" not in text and "https://" not in text and "//" not in text.replace("://", ""), page
    for script in (console.sessions.config.web_dir / "static").glob("*.js"):
        assert "http" not in script.read_text().replace("http://www.w3.org/2000/svg", ""), script


def test_the_session_buffer_gives_the_items_after_a_number_even_once_old_ones_are_gone():
    b = Buffer(3)
    assert b.after(0) == []
    for x in "abcde":  # 1..5; a and b dropped
        b.append(x)
    assert b.after(0) == [(3, "c"), (4, "d"), (5, "e")]
    assert b.after(3) == [(4, "d"), (5, "e")] and b.after(4, limit=5) == [(5, "e")]
    assert b.after(2, limit=2) == [(3, "c"), (4, "d")] and b.after(5) == [] and b.after(99) == []
