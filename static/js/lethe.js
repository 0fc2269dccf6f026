/* Draws every figure the server embedded (json_script) and polls live runs. No inline scripts:
   pages carry data only, so a strict Content-Security-Policy needs no exception. */
(function () {
  "use strict";

  var PLOT_CONFIG = { responsive: true, displaylogo: false };

  function readJson(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  function draw(container, figure) {
    if (!figure || !window.Plotly) { return; }
    // autosize + responsive: the chart takes its frame's width and follows it when it changes.
    var layout = Object.assign({ autosize: true, margin: { t: 40, r: 20, b: 50, l: 60 } }, figure.layout || {});
    window.Plotly.react(container, figure.data || [], layout, PLOT_CONFIG);
    if (!container.dataset.clickBound && container.on) {
      // A point whose customdata is a path of this site opens that page (lineage nodes, verdicts, a sweep's Pareto points).
      container.dataset.clickBound = "1";
      container.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        var url = point && point.customdata;
        if (typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/") { window.location.assign(url); }
      });
    }
  }

  function drawAll() {
    document.querySelectorAll("[data-figure]").forEach(function (container) {
      draw(container, readJson(container.getAttribute("data-figure")));
    });
  }

  function updateText(selector, text) {
    document.querySelectorAll(selector).forEach(function (element) { element.textContent = text; });
  }

  function poll(element) {
    var url = element.getAttribute("data-poll-url");
    var interval = parseInt(element.getAttribute("data-poll-interval") || "2000", 10);
    var timer = null;

    function apply(state) {
      var bar = element.querySelector("progress");
      if (bar) { bar.value = state.progress; }
      updateText("[data-run-status]", state.status);
      updateText("[data-run-percent]", Math.round(state.progress * 100) + "%");
      updateText("[data-run-message]", state.progress_message || "");
      Object.keys(state.figures || {}).forEach(function (id) {
        var container = document.querySelector('[data-figure="' + id + '"]');
        if (container) { draw(container, state.figures[id]); }
      });
      if (state.finished) {
        window.clearInterval(timer);
        // The finished page shows what the run produced; render it from the server once.
        window.location.reload();
      }
    }

    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (state) { if (state) { apply(state); } })
        .catch(function () { /* a missed poll is retried at the next tick */ });
    }

    timer = window.setInterval(tick, interval);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll();
    document.querySelectorAll("[data-poll-url]").forEach(poll);
  });
})();
