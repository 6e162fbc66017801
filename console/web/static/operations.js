// The operations view: the operations principal's snapshot (/api/operations/stream) as tables and small plots.
"use strict";
(function () {
  var status = document.getElementById("status");
  var COLORS = { released: "#1a7f37", withheld: "#57606a", held: "#9a6700", released_from_hold: "#0969da",
                 dead_lettered: "#cf222e", accepted: "#1a7f37", quarantined: "#cf222e" };
  function cell(tr, text, cls) { var td = document.createElement("td"); td.textContent = text == null ? "–" : text; if (cls) td.className = cls; tr.appendChild(td); return td; }
  function body(id) { var tb = document.querySelector("#" + id + " tbody"); tb.textContent = ""; return tb; }
  function row(tb, data) { var tr = document.createElement("tr"); Object.keys(data).forEach(function (k) { tr.dataset[k] = data[k]; }); tb.appendChild(tr); return tr; }
  function ratio(v) { return v == null ? "–" : v.toFixed(2); }

  function render(s) {
    var tb = body("health");
    s.health.forEach(function (h) {
      var tr = row(tb, { service: h.service });
      cell(tr, h.service); cell(tr, h.healthy ? "live" : "down", h.healthy ? "ok" : "down");
      if (h.ready === null) cell(tr, "–"); else cell(tr, h.ready ? "ready" : "not ready", h.ready ? "ok" : "down");
      cell(tr, (h.readyz === 404 ? h.healthz_detail : h.readyz_detail || "").slice(0, 120));
    });
    tb = body("lag");
    s.lag.forEach(function (g) {
      var tr = row(tb, { group: g.group, status: g.status });
      cell(tr, g.group); cell(tr, g.status, g.status).title = g.reason || ""; cell(tr, g.members);
      cell(tr, g.lag_offsets); cell(tr, g.max_lag_seconds == null ? null : g.max_lag_seconds.toFixed(1) + " s");
      cell(tr, "").appendChild(window.liaisonPlot(g.history.map(function (p) { return p[2]; }), { unit: "offsets" }));
    });
    tb = body("outcomes");
    s.outcomes.series.forEach(function (x) {
      var tr = row(tb, { recipient: x.recipient, outcome: x.outcome });
      var total = s.outcomes.totals.filter(function (t) { return t.recipient === x.recipient && t.outcome === x.outcome; })
        .reduce(function (a, t) { return a + t.count; }, 0);
      cell(tr, x.recipient); cell(tr, x.outcome); cell(tr, total).className = "total";
      cell(tr, "").appendChild(window.liaisonPlot(x.counts, { color: COLORS[x.outcome], unit: "per minute" }));
    });
    tb = body("outcome-types");
    s.outcomes.totals.forEach(function (t) {
      var tr = row(tb, { recipient: t.recipient, type: t.type, outcome: t.outcome });
      cell(tr, t.recipient); cell(tr, t.type); cell(tr, t.outcome); cell(tr, t.count);
    });
    tb = body("ledger");
    s.ledger.forEach(function (r) {
      var tr = row(tb, { partner: r.partner, category: r.category, window: r.window });
      cell(tr, r.partner); cell(tr, r.category); cell(tr, r.window); cell(tr, r.given.count).className = "given";
      cell(tr, r.received.count).className = "received"; cell(tr, ratio(r.ratio));
    });
    var notes = [];
    if (s.error) notes.push("reader: " + s.error);
    if (s.lag_error) notes.push("lag: " + s.lag_error);
    notes.push(s.counts.audits + " audit records and " + s.counts.ledger_records + " ledger records read" +
               (s.counts.unreadable ? ", " + s.counts.unreadable + " unreadable" : ""));
    document.getElementById("notes").textContent = notes.join("; ");
    document.body.dataset.snapshots = (+(document.body.dataset.snapshots || 0) + 1);
  }

  var es = new EventSource("/api/operations/stream");
  es.addEventListener("open", function () { status.textContent = "live"; status.className = "status live"; });
  es.addEventListener("snapshot", function (e) { render(JSON.parse(e.data)); });
  es.addEventListener("signed-out", function () { es.close(); window.location = "/"; });
  es.addEventListener("error", function () { status.textContent = "reconnecting…"; status.className = "status down"; });
})();
