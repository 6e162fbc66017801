"""The console in headless Chromium (Debian's chromium + chromium-driver, Selenium) on the real broker.

One console process serves the module, started like `liaison console` with no credentials of its own (the test
removes LIAISON_CREDENTIALS_DIR from its environment): every session reads with the password typed into the
sign-in page. A forwarder (RUS strikes bucketed to 5 s, so the held ones fall due within the test), the RUS
ingress guard and the ledger run beside it. Three browsers sign in before a simulator run with sentinels: the
RUS officer, the USA officer and operations. During the run the RUS page's DOM is read at every poll: it never
holds a record only USA receives, nor a sentinel RUS may not see; it ends with every record the broker holds
for RUS from this run, each once. Then: coarsened strikes drawn as their grid cells, the operations counts equal
to the audit's, the ledger equal to the ledger service's, a live record reaching the page, refused sign-ins
and refused requests for another principal's stream. Screenshots go to <test state>/screenshots.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from core import REPO_ROOT
from console.ops_model import OUTCOME_OF_DECISION
from console.precision import load_grids
from core.readback import end_offsets, read_between
from core.settings import get_settings
from core.topics import AUDIT_TOPIC, PARTNER_PREFIX
from forwarder_helpers import (ALL, LIAISON, ForwarderLog, audits, fresh_group, header, publish,
                               short_bucket_policies, start_forwarder)
from producers.simulate import Simulator
from release import SecretStore, decide, load_policies
from schemas.models import to_avro

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = Path(os.environ.get("LIAISON_TEST_STATE", REPO_ROOT / ".state" / "test")) / "screenshots"
BUCKET_S = 5
RUS_TOPICS = lambda: [t for t in ALL if t.startswith(PARTNER_PREFIX + "rus.")]  # noqa: E731
USA_TOPICS = lambda: [t for t in ALL if t.startswith(PARTNER_PREFIX + "usa.")]  # noqa: E731
SENTINEL = re.compile(r"SENTINEL-([a-z_.]+)-[0-9a-f]{8}")
#: sentinel fields RUS may receive (as in test_forwarder / test_envelope): anything else planted must not show
RUS_ALLOWED_SENTINELS = {"observed_activity", "travel_indicators"}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def password_of(principal: str) -> str:
    return get_settings().security().credentials(principal)[1]


def liaison(*args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([LIAISON, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or os.environ)


def stop(p: subprocess.Popen, log: ForwarderLog) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
    log.finish()
    p.stdout.close()


def wait_line(log: ForwarderLog, prefix: str, timeout: float = 60.0) -> str:
    """The first stderr line of the process starting with ``prefix`` (fails if it exits first)."""
    with log._cond:
        if not log._cond.wait_for(lambda: any(line.startswith(prefix) for line in log.lines) or log._closed,
                                  timeout):
            raise AssertionError(f"no {prefix!r} within {timeout:.0f}s:\n{''.join(log.lines[-20:])}")
        for line in log.lines:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
    raise AssertionError(f"the process exited before {prefix!r}:\n{''.join(log.lines[-20:])}")


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} does not answer")
        time.sleep(0.2)


@contextmanager
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,900"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver, url: str, username: str, password: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "username"))
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 40).until(lambda d: d.find_elements(By.CSS_SELECTOR, "body.officer, body.operations, "
                                                                                "#sign-in-error"))


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000, f"{path}: an empty screenshot"
    return path


def dom_items(driver) -> list[list]:
    """[id, message_id, type] of every record in the page's feed."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#feed li.item'))"
        ".map(function (li) { return [li.dataset.id, li.dataset.messageId || null, li.dataset.type]; });")


def fetch_status(driver, path: str) -> int:
    """The status of a request the page itself makes (with its session cookie)."""
    return driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(function (r) { done(r.status); })"
        ".catch(function (e) { done(-1); });", path)


@pytest.fixture(scope="module")
def services(bus, tmp_path_factory):
    """Forwarder, RUS guard, ledger and console; yields their URLs and what the run needs."""
    SecretStore().ensure("RUS"), SecretStore().ensure("USA")
    policies = short_bucket_policies(tmp_path_factory.mktemp("console") / "policies", BUCKET_S)
    group, instance = fresh_group()
    fwd_port, guard_port, ledger_port = free_port(), free_port(), free_port()
    procs = {"forwarder": start_forwarder(group, instance, "--metrics-port", str(fwd_port), policies=policies),
             "guard": liaison("ingress", "--partner", "RUS", "--policies", str(policies), "--metrics-port",
                              str(guard_port)),
             "ledger": liaison("ledger", "run", "--metrics-port", str(ledger_port))}
    # the console holds no credentials: it can only use the passwords typed into its sign-in page
    env = {k: v for k, v in os.environ.items() if k not in ("LIAISON_CREDENTIALS_DIR", "LIAISON_SASL_USERNAME",
                                                            "LIAISON_SASL_PASSWORD")}
    health = f"forwarder=http://127.0.0.1:{fwd_port},guard-rus=http://127.0.0.1:{guard_port}"
    procs["console"] = liaison("console", "--port", "0", "--policies", str(policies), "--since", "1",
                               "--health", health, env=env)
    logs = {name: ForwarderLog(p) for name, p in procs.items()}
    try:
        url = wait_line(logs["console"], "console: ")
        for port in (fwd_port, guard_port, ledger_port):
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120)
        yield {"url": url, "policies": policies, "group": group, "logs": logs, "procs": procs,
               "ledger": f"http://127.0.0.1:{ledger_port}/ledger"}
    finally:
        for name, p in procs.items():
            stop(p, logs[name])


def test_wrong_credentials_and_principals_the_console_does_not_serve_are_refused(services):
    url = services["url"]
    with browser() as driver:
        sign_in(driver, url, "partner-rus", "not-the-password")
        error = driver.find_element(By.ID, "sign-in-error").text
        assert "refused the credentials of partner-rus" in error, error
        assert not driver.find_elements(By.CSS_SELECTOR, "body.officer")
        assert not [c for c in driver.get_cookies() if c["name"] == "liaison_console"]
        screenshot(driver, "sign-in-refused")
    with httpx.Client(base_url=url) as client:
        def login(user, password):
            return client.post("/login", content=urllib.parse.urlencode({"username": user, "password": password}),
                               headers={"content-type": "application/x-www-form-urlencoded"})

        refused = login("partner-rus", "not-the-password")
        assert refused.status_code == 401 and "liaison_console" not in refused.cookies
        # the super user, a service's principal and an unknown name are not people the console serves, even with
        # the right password: refused before any Kafka client is made
        for user in ("admin", "forwarder"):
            r = login(user, password_of(user))
            assert r.status_code == 401 and "cannot sign in to the console" in r.text, (user, r.text[:300])
        assert login("partner-xyz", "x").status_code == 401
        for path in ("/api/me", "/api/items", "/api/stream", "/api/operations", "/api/operations/stream"):
            assert client.get(path).status_code == 401, path
        assert client.get("/view", follow_redirects=False).status_code == 303


def test_a_session_reads_its_own_principal_only(services):
    url = services["url"]
    with browser() as driver:
        sign_in(driver, url, "partner-rus", password_of("partner-rus"))
        assert driver.find_elements(By.CSS_SELECTOR, "body.officer[data-principal='partner-rus']")
        cookie = [c for c in driver.get_cookies() if c["name"] == "liaison_console"]
        assert cookie and cookie[0]["httpOnly"] and cookie[0]["sameSite"] == "Strict"
        assert driver.execute_script("return document.cookie") == "", "the session token is readable by scripts"
        for path in ("/api/stream?principal=partner-usa", "/api/items?principal=partner-usa",
                     "/api/items?principal=component-naval", "/api/me?principal=operations",
                     "/api/operations", "/api/operations/stream"):
            assert fetch_status(driver, path) == 403, path
        assert fetch_status(driver, "/api/items?principal=partner-rus") == 200
        got = json.loads(driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "fetch('/api/items').then(function (r) { return r.text(); }).then(done);"))
        # the topics this session's reader found are those the broker lets partner-rus see: RUS's feed only
        assert got["topics"] and all(t.startswith(PARTNER_PREFIX + "rus.") for t in got["topics"]), got["topics"]
        assert got["error"] is None


@pytest.fixture(scope="module")
def run(services):
    """Three browsers signed in, then a simulator run with sentinels; the RUS DOM read at every poll."""
    url, policies = services["url"], services["policies"]
    pols = load_policies(policies, SecretStore())
    with browser() as rus, browser() as usa, browser() as ops:
        sign_in(rus, url, "partner-rus", password_of("partner-rus"))
        sign_in(usa, url, "partner-usa", password_of("partner-usa"))
        sign_in(ops, url, "operations", password_of("operations"))
        for d in (rus, usa, ops):
            WebDriverWait(d, 30).until(lambda d: d.find_element(By.ID, "status").text == "live")
        WebDriverWait(ops, 30).until(lambda d: d.execute_script("return +(document.body.dataset.snapshots||0)") > 0)
        start = end_offsets(ALL)
        sim = Simulator({"naval", "air", "intel"}, seed=9090, start=now(), sentinels=True)
        models = [m for _, m in sim.events(40.0, 30.0)]
        sent = publish(models)
        decisions = {}
        for mid, m in sent.items():
            name = type(m).__name__
            for code, pol in pols.items():
                decisions[(mid, code)] = decide(name, to_avro(m), pol).decision
        released = {code: {mid for (mid, c), d in decisions.items() if c == code and d == "RELEASE"} for code in pols}
        usa_only = released["USA"] - released["RUS"]
        # never for RUS: every input the pure decision does not release to RUS (USA-only records among them). The
        # forwarder may withhold more (a reciprocity pause, as the servers' ledger stands), never release more.
        not_for_rus = set(sent) - released["RUS"]
        assert usa_only, "the run gives the check nothing to see"

        polls, leaks, due = Counter(), [], {}

        def due_for_rus() -> set[str] | None:
            """Once the forwarder has decided every input for RUS (the audit): the records it released at once
            or holds until a moment within the next minute (strikes: BUCKET_S; a day's hold stays held)."""
            rows = [a for a in audits(read_between({tp: o for tp, o in start.items() if tp[0] == AUDIT_TOPIC},
                                                   end_offsets([AUDIT_TOPIC]), timeout=60)) if a["partner"] == "RUS"]
            decided = [a for a in rows if a["decision"] != "RELEASED"]
            if len(decided) < len(sent):
                return None
            soon = time.time() + 60
            return {a["message_id"] for a in decided if a["decision"] == "RELEASE"
                    or (a["decision"] == "HELD" and a["due_at"].timestamp() < soon)}

        def rus_page_holds_every_due_record(driver):
            items = dom_items(driver)
            ids = {mid for _id, mid, _t in items if mid}
            polls["polls"] += 1
            polls["max_items"] = max(polls["max_items"], len(items))
            leaked = ids & not_for_rus
            if leaked:
                leaks.append(("record not released to RUS", sorted(leaked)[:5]))
            for field in set(SENTINEL.findall(driver.page_source)) - RUS_ALLOWED_SENTINELS:
                leaks.append(("sentinel", field))
            assert not leaks, f"the RUS page shows what RUS must not see: {leaks[:5]}"
            if "ids" not in due and polls["polls"] % 4 == 1:  # the audit, read every other second
                got = due_for_rus()
                if got is not None:
                    assert got and got <= released["RUS"], "the forwarder released what decide() does not"
                    due["ids"] = got
            return "ids" in due and due["ids"] <= ids

        try:
            WebDriverWait(rus, 240, poll_frequency=0.5).until(rus_page_holds_every_due_record)
        except TimeoutException:
            ids = {mid for _i, mid, _t in dom_items(rus) if mid}
            raise AssertionError(f"the RUS page lacks {len(due.get('ids', set()) - ids)} of "
                                 f"{len(due.get('ids', ()))} records due (audit complete: {'ids' in due}); "
                                 f"{len(ids)} shown") from None
        # what the broker holds for RUS from this run, now that every due record was released
        msgs = read_between(start, end_offsets(ALL), timeout=120)
        rus_msgs = [m for m in msgs if m.topic() in RUS_TOPICS()]
        WebDriverWait(rus, 60, poll_frequency=0.5).until(
            lambda d: len({i for i, _m, _t in dom_items(d)} & {f"{m.topic()}/{m.partition()}/{m.offset()}"
                                                               for m in rus_msgs}) == len(rus_msgs))
        yield {"rus": rus, "usa": usa, "ops": ops, "sent": sent, "policies": policies, "start": start, "msgs": msgs, "rus_msgs": rus_msgs,
               "usa_only": usa_only, "not_for_rus": not_for_rus, "due": due["ids"], "polls": polls}


def test_the_rus_page_never_shows_what_only_usa_receives_and_shows_all_rus_receives(run):
    rus, usa = run["rus"], run["usa"]
    assert run["polls"]["polls"] >= 3, "the DOM was not read during the run"
    items = dom_items(rus)
    ids = Counter(i for i, _m, _t in items)
    assert max(ids.values()) == 1, "a record shown twice"
    assert not {mid for _i, mid, _t in items if mid} & run["not_for_rus"]
    # each record shown is one the broker holds on a RUS topic (this run's or none at all: --since 1 s)
    on_rus = {f"{m.topic()}/{m.partition()}/{m.offset()}" for m in run["rus_msgs"]}
    assert on_rus <= set(ids), f"{len(on_rus - set(ids))} RUS records not shown"
    assert all(i.startswith(PARTNER_PREFIX + "rus.") for i in ids), [i for i in ids if "rus." not in i][:3]
    # the shown message ids are those of RUS's records (headers), no other
    assert {mid for _i, mid, _t in items if mid} == {header(m, "message_id") for m in run["rus_msgs"]} - {None}
    # positive control: the same DOM reading sees USA-only records on the USA page
    WebDriverWait(usa, 60, poll_frequency=0.5).until(lambda d: {mid for _i, mid, _t in dom_items(d) if mid}
                                                     & run["usa_only"])
    assert set(SENTINEL.findall(rus.page_source)) <= RUS_ALLOWED_SENTINELS
    assert rus.execute_script("return document.getElementById('map').dataset.basemap") == "loaded"
    assert rus.execute_script("return document.querySelectorAll('#map path.liaison-shape').length") > 0
    screenshot(rus, "officer-rus")
    screenshot(usa, "officer-usa")


def test_a_coarsened_strike_is_drawn_as_its_grid_cell(run):
    rus = run["rus"]
    (grid,) = load_grids(run["policies"] / "RUS.yaml")[(None, "StrikeReport", "position")]
    strikes = rus.execute_script(
        "var out = []; Object.keys(window.liaison.items).forEach(function (id) {"
        "  var it = window.liaison.items[id]; if (it.type !== 'StrikeReport') return;"
        "  out.push({id: id, position: it.value.position,"
        "    layers: window.liaison.layers[id].map(function (l) {"
        "      var b = l.getBounds ? l.getBounds() : null;"
        "      return {rect: l instanceof L.Rectangle,"
        "              cls: l.getElement() ? l.getElement().getAttribute('class') : null,"
        "              bounds: b ? [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()] : null}; })}); });"
        "return out;")
    assert strikes, "no strike report reached the RUS page"
    for s in strikes:
        lat, lon = s["position"]["lat"], s["position"]["lon"]
        assert [layer["rect"] for layer in s["layers"]] == [True], s  # one cell, no point
        assert "liaison-cell" in s["layers"][0]["cls"].split(), s
        south, west, north, east = s["layers"][0]["bounds"]
        # the released position is the cell's south-west corner (release.transforms snaps down to the grid)
        assert (south, west) == pytest.approx((lat, lon)), s
        assert (north - south, east - west) == pytest.approx((grid, grid)), s
    # as drawn in the page: one SVG path per strike, with the cell's class
    drawn = rus.execute_script("return document.querySelectorAll('#map path.type-StrikeReport.liaison-cell').length")
    assert drawn == len(strikes)
    rus.execute_script("window.liaison.map.fitBounds(window.liaison.layers[arguments[0]][0].getBounds().pad(20));",
                       strikes[0]["id"])
    screenshot(rus, "officer-rus-strike-cell")


def table(driver, table_id: str) -> list[dict]:
    """The rows of one operations table: each row's data-* attributes and its cells' text by class."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr')).map(function (tr) {"
        "  var row = Object.assign({}, tr.dataset); row.cells = Array.from(tr.cells).map(function (td) {"
        "    return td.textContent; }); row.plots = tr.querySelectorAll('svg.plot').length;"
        "  Array.from(tr.cells).forEach(function (td) { if (td.className) row[td.className] = td.textContent; });"
        "  return row; });", table_id)


def test_operations_view_shows_the_audits_counts_the_ledger_lag_and_health(run, services):
    ops = run["ops"]
    rows = audits(read_between(run["start"], end_offsets([AUDIT_TOPIC]), timeout=120))
    assert rows
    want = Counter()
    for a in rows:
        want[(a["partner"], OUTCOME_OF_DECISION[a["decision"]])] += 1
    assert want[("RUS", "released")] and want[("RUS", "withheld")] and want[("RUS", "held")]
    assert want[("RUS", "released_from_hold")], "no held strike was released in the run"

    def outcomes(d):
        return Counter({(r["recipient"], r["outcome"]): int(r["total"]) for r in table(d, "outcomes")})

    try:  # the reader started (1 s before) the sign-in, before the run: its totals are exactly the run's
        WebDriverWait(ops, 60, poll_frequency=0.5).until(lambda d: outcomes(d) == want)
    except TimeoutException:
        got = outcomes(ops)
        raise AssertionError(f"operations view {dict(got - want)} more, {dict(want - got)} fewer than the "
                             f"audit") from None

    def ledger_matches(d):
        service = {(r["partner"], r["category"], r["window"]): (r["given"]["count"], r["received"]["count"])
                   for r in httpx.get(services["ledger"], timeout=10).json()}
        shown = {(r["partner"], r["category"], r["window"]): (int(r["given"]), int(r["received"]))
                 for r in table(d, "ledger")}
        given = sum(g for (p, _c, w), (g, _r) in shown.items() if p == "RUS" and w == "day")
        return shown == service and given >= want[("RUS", "released")] + want[("RUS", "released_from_hold")]

    WebDriverWait(ops, 120, poll_frequency=1).until(ledger_matches)

    def healthy(d):
        return {r["service"]: r["cells"][1:3] for r in table(d, "health")} == {
            "forwarder": ["live", "ready"], "guard-rus": ["live", "ready"]}

    WebDriverWait(ops, 60, poll_frequency=0.5).until(healthy)
    # the forwarder's group, caught up and running: OK, with its history plotted
    def forwarder_lag(d):
        rows = [r for r in table(d, "lag") if r["group"] == services["group"]]
        return rows[0] if rows and rows[0]["status"] == "OK" else None

    try:
        mine = WebDriverWait(ops, 60, poll_frequency=0.5).until(forwarder_lag)
    except TimeoutException:
        raise AssertionError(f"lag rows: {table(ops, 'lag')}") from None
    assert mine["plots"] == 1 and mine["cells"][2] == "1", mine  # one member
    screenshot(ops, "operations")


def test_a_record_committed_reaches_the_open_page_within_seconds(run):
    rus, pols = run["rus"], load_policies(run["policies"], SecretStore())
    sim = Simulator({"air"}, seed=9191, start=now())
    live = next(m for _, m in sim.events(5.0, 600.0)
                if type(m).__name__ == "AirTrack" and decide("AirTrack", to_avro(m), pols["RUS"]).decision == "RELEASE")
    mid = str(live.label.message_id)
    assert mid not in {m for _i, m, _t in dom_items(rus)}
    before = end_offsets(RUS_TOPICS())
    publish([live])
    deadline = time.monotonic() + 120
    while end_offsets(RUS_TOPICS()) == before:  # committed by the forwarder: visible to read_committed readers
        assert time.monotonic() < deadline, "the forwarder did not release the record"
        time.sleep(0.1)
    WebDriverWait(rus, 5, poll_frequency=0.1).until(lambda d: mid in {m for _i, m, _t in dom_items(d)})
    screenshot(rus, "officer-rus-live")


def test_the_feed_filters_by_type_and_callsign_and_shows_a_record_as_released(run):
    from selenium.webdriver.support.ui import Select

    rus = run["rus"]

    def shown():
        return rus.execute_script(
            "return Array.from(document.querySelectorAll('#feed li.item:not(.hidden)'))"
            ".map(function (li) { return [li.dataset.type, li.textContent]; });")

    everything = shown()
    types = Counter(t for t, _ in everything)
    assert types["StrikeReport"] and types["AirTrack"], types
    Select(rus.find_element(By.ID, "filter-type")).select_by_value("StrikeReport")
    assert Counter(t for t, _ in shown()) == {"StrikeReport": types["StrikeReport"]}
    Select(rus.find_element(By.ID, "filter-type")).select_by_value("")
    callsign = rus.execute_script("var it = Object.values(window.liaison.items).find(function (i) {"
                                  " return i.type === 'AirTrack' && i.value.callsign; }); return it.value.callsign;")
    rus.find_element(By.ID, "filter-callsign").send_keys(callsign)
    narrowed = shown()
    assert narrowed and len(narrowed) < len(everything)
    assert all(callsign.lower() in text.lower() for _, text in narrowed)
    rus.find_element(By.ID, "filter-callsign").clear()
    rus.execute_script("document.getElementById('filter-callsign').dispatchEvent(new Event('input'))")
    assert len(shown()) == len(everything)
    # a record's details: what was released, where it sits on the broker
    first = rus.find_element(By.CSS_SELECTOR, "#feed li.item[data-type='AirTrack']")
    first.click()
    detail = json.loads(rus.find_element(By.ID, "detail").text)
    topic, partition, offset = first.get_attribute("data-id").rsplit("/", 2)
    assert (detail["topic"], detail["partition"], detail["offset"]) == (topic, int(partition), int(offset))
    assert detail["value"] == json.loads(first.get_attribute("data-json"))
    screenshot(rus, "officer-rus-detail")
