// Small inline SVG line plots for the operations view (no plotting library: a polyline per series).
"use strict";
window.liaisonPlot = function (values, opts) {
  opts = opts || {};
  var w = opts.width || 180, h = opts.height || 28, pad = 2, ns = "http://www.w3.org/2000/svg";
  var svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "plot"); svg.setAttribute("width", w); svg.setAttribute("height", h);
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  var nums = values.map(function (v) { return v == null ? 0 : +v; });
  var max = Math.max.apply(null, nums.concat([1]));
  var pts = nums.map(function (v, i) {
    var x = pad + (nums.length > 1 ? i * (w - 2 * pad) / (nums.length - 1) : 0);
    return x.toFixed(1) + "," + (h - pad - v * (h - 2 * pad) / max).toFixed(1);
  }).join(" ");
  var line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts); line.setAttribute("fill", "none");
  line.setAttribute("stroke", opts.color || "#1f4e79"); line.setAttribute("stroke-width", "1.5");
  svg.appendChild(line);
  var title = document.createElementNS(ns, "title");
  title.textContent = "max " + max + (opts.unit ? " " + opts.unit : "");
  svg.appendChild(title);
  return svg;
};
