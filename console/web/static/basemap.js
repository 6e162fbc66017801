// The offline base map: countries and borders from world-atlas (Natural Earth 1:50m, TopoJSON), served by the
// console from its npm packages. No tile server, no CDN: nothing is fetched from anywhere but the console.
"use strict";
window.liaisonBaseMap = function (map) {
  return fetch("/vendor/world-atlas/countries-50m.json")
    .then(function (r) { if (!r.ok) throw new Error("world map: HTTP " + r.status); return r.json(); })
    .then(function (world) {
      var land = topojson.feature(world, world.objects.countries);
      var borders = topojson.mesh(world, world.objects.countries, function (a, b) { return a !== b; });
      L.geoJSON(land, { interactive: false, style: { color: "#8a8f73", weight: 0.6, fillColor: "#eceadf", fillOpacity: 1 } }).addTo(map);
      L.geoJSON(borders, { interactive: false, style: { color: "#9e9e9e", weight: 0.8, dashArray: "3 2", fill: false } }).addTo(map);
      document.getElementById("map").dataset.basemap = "loaded";
    })
    .catch(function (e) { document.getElementById("map").dataset.basemap = "failed: " + e.message; });
};
