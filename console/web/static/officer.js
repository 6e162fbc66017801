// The officer's and component's view: what the session's principal receives, live, on a map and in a feed.
// Items come from /api/stream (server-sent events) as console.view.item_of built them; this script only draws.
"use strict";
(function () {
  var MAX_ITEMS = 3000, TRAIL = 20;
  var map = L.map("map", { worldCopyJump: true, preferCanvas: false }).setView([45, 20], 4);
  window.liaisonBaseMap(map);
  var layers = {}, items = {}, order = [], trails = {}, types = {}, last = 0, fitted = false;
  var feed = document.getElementById("feed"), detail = document.getElementById("detail");
  var status = document.getElementById("status"), count = document.getElementById("count");
  var fType = document.getElementById("filter-type"), fCall = document.getElementById("filter-callsign"),
      fTime = document.getElementById("filter-time");
  window.liaison = { map: map, items: items, layers: layers };

  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
  function band(p) { return p.floor_ft == null ? "" : " " + p.floor_ft + "–" + p.ceiling_ft + " ft"; }
  function label(it) { return "<b>" + esc(it.type) + "</b> " + esc(it.title || "") + (it.time ? "<br>" + esc(it.time) : ""); }

  function shapesOf(it) {
    var out = [];
    (it.shapes || []).forEach(function (s) {
      var cls = "liaison-shape type-" + it.type + (s.alert ? " liaison-alert" : "");
      if (s.kind === "point") {
        out.push(L.circleMarker([s.lat, s.lon], { radius: 4, weight: 1, className: cls + " liaison-point" }));
      } else if (s.kind === "cell") {
        out.push(L.rectangle([[s.south, s.west], [s.north, s.east]], { weight: 1, fillOpacity: 0.35,
          className: cls + " liaison-cell" }));
      } else if (s.kind === "circle") {
        var text = s.alert ? "<br>" + esc(s.floor_ft) + "–" + esc(s.ceiling_ft) + " ft, " + esc(s.start) + " → " + esc(s.end) : "";
        out.push(L.circle([s.lat, s.lon], { radius: s.radius_m, weight: 1, fillOpacity: 0.2,
          className: cls + " liaison-circle" }).bindTooltip(label(it) + text));
      } else if (s.kind === "route") {
        var latlngs = s.points.map(function (p) { return p.kind === "cell" ? [p.south, p.west] : [p.lat, p.lon]; });
        var win = (s.windows || []).map(function (w) { return esc(w.start) + " → " + esc(w.end); }).join("<br>");
        out.push(L.polyline(latlngs, { weight: 2, dashArray: "6 4", className: cls + " liaison-route" })
          .bindTooltip(label(it) + (win ? "<br>" + win : "")));
        s.points.forEach(function (p, i) {
          out.push(L.circleMarker(latlngs[i], { radius: 3, className: cls + " liaison-waypoint" })
            .bindTooltip(esc(p.name || "") + band(p) + (p.eta ? "<br>ETA " + esc(p.eta) : "")));
        });
      }
    });
    out.forEach(function (l) { if (!l.getTooltip()) l.bindTooltip(label(it)); l.on("click", function () { select(it.id); }); });
    return out;
  }

  function trail(it) {
    if (!it.track) return;
    var s = (it.shapes || [])[0];
    if (!s || (s.kind !== "point" && s.kind !== "cell")) return;
    var t = trails[it.track] || (trails[it.track] = { points: [], line: L.polyline([], { weight: 1.5, className: "liaison-trail type-" + it.type }).addTo(map) });
    t.points.push(s.kind === "cell" ? [s.south, s.west] : [s.lat, s.lon]);
    if (t.points.length > TRAIL) t.points.shift();
    t.line.setLatLngs(t.points);
  }

  function visible(it) {
    if (fType.value && it.type !== fType.value) return false;
    var c = fCall.value.trim().toLowerCase();
    if (c && String(it.title || "").toLowerCase().indexOf(c) < 0 && JSON.stringify(it.summary || []).toLowerCase().indexOf(c) < 0) return false;
    var secs = +fTime.value;
    if (secs && it.timestamp < Date.now() - secs * 1000) return false;
    return true;
  }

  function applyFilters() {
    order.forEach(function (id) {
      var it = items[id], show = visible(it);
      it.li.classList.toggle("hidden", !show);
      (layers[id] || []).forEach(function (l) { if (show) { if (!map.hasLayer(l)) l.addTo(map); } else if (map.hasLayer(l)) map.removeLayer(l); });
    });
  }

  function select(id) {
    var it = items[id];
    if (!it) return;
    feed.querySelectorAll("li.selected").forEach(function (li) { li.classList.remove("selected"); });
    it.li.classList.add("selected");
    detail.textContent = JSON.stringify({ topic: it.topic, partition: it.partition, offset: it.offset,
      timestamp: new Date(it.timestamp).toISOString(), key: it.key, message_id: it.message_id, value: it.value || it.error }, null, 2);
  }

  function add(it) {
    if (items[it.id]) return;
    var li = document.createElement("li");
    li.className = "item" + (it.type === "DeconflictionAlert" ? " alert" : "");
    li.dataset.id = it.id; li.dataset.type = it.type;
    if (it.message_id) li.dataset.messageId = it.message_id;
    li.dataset.json = JSON.stringify(it.value || {});
    var fields = (it.summary || []).map(function (kv) { return esc(kv[0]) + "=" + esc(kv[1]); }).join("  ");
    li.innerHTML = '<span class="type">' + esc(it.type) + (it.origin ? " (" + esc(it.origin) + ")" : "") + '</span> ' +
      '<span class="title">' + esc(it.title || "") + '</span> <span class="when">' + esc(it.time || "") + '</span>' +
      (it.classification ? ' <span class="cls">[' + esc(it.classification) + ']</span>' : "") +
      '<div class="fields">' + (it.error ? '<span class="error">' + esc(it.error) + '</span>' : fields) + '</div>';
    li.addEventListener("click", function () { select(it.id); });
    it.li = li;
    feed.insertBefore(li, feed.firstChild);
    items[it.id] = it; order.push(it.id);
    layers[it.id] = shapesOf(it);
    if (!types[it.type]) { types[it.type] = 1; var o = document.createElement("option"); o.value = o.textContent = it.type; fType.appendChild(o); }
    var show = visible(it);
    li.classList.toggle("hidden", !show);
    if (show) layers[it.id].forEach(function (l) { l.addTo(map); });
    trail(it);
    if (!fitted && layers[it.id].length) { fitted = true; var l0 = layers[it.id][0]; map.setView(l0.getLatLng ? l0.getLatLng() : l0.getBounds().getCenter(), 6); }
    while (order.length > MAX_ITEMS) {
      var old = order.shift(), gone = items[old];
      (layers[old] || []).forEach(function (l) { map.removeLayer(l); });
      gone.li.remove(); delete items[old]; delete layers[old];
    }
    count.textContent = order.length + " records";
  }

  [fType, fCall, fTime].forEach(function (el) { el.addEventListener("input", applyFilters); el.addEventListener("change", applyFilters); });

  function connect() {
    var es = new EventSource("/api/stream?after=" + last);
    es.addEventListener("open", function () { status.textContent = "live"; status.className = "status live"; });
    es.addEventListener("item", function (e) { var it = JSON.parse(e.data); last = Math.max(last, it.seq); add(it); });
    es.addEventListener("signed-out", function () { es.close(); window.location = "/"; });
    es.addEventListener("error", function () { status.textContent = "reconnecting…"; status.className = "status down"; });
  }
  connect();
})();
