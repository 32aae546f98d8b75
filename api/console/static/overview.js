/* The overview's time-series charts, drawn with the vendored uPlot from #chart-data. */
(function () {
  "use strict";
  const COLORS = ["#1f5fbf", "#1a7f37", "#cf222e", "#9a6700", "#8250df", "#0a7d8c", "#bc4c00"];
  function draw(el, days, series) {
    const names = Object.keys(series);
    const x = days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
    const width = Math.max(280, el.clientWidth || 500);
    const opts = {
      width, height: 220,
      scales: { x: { time: true } },
      series: [{}].concat(names.map((name, i) => ({
        label: name, stroke: COLORS[i % COLORS.length], width: 2, points: { show: false },
      }))),
      axes: [{}, { size: 40 }],
    };
    if (!names.length) { el.textContent = "No data in the last 30 days."; return; }
    const plot = new uPlot(opts, [x].concat(names.map((n) => series[n])), el);
    window.addEventListener("resize", () => plot.setSize({ width: Math.max(280, el.clientWidth), height: 220 }));
  }
  document.addEventListener("DOMContentLoaded", () => {
    const data = JSON.parse(document.getElementById("chart-data").textContent);
    document.querySelectorAll("[data-chart]").forEach((el) => {
      if (window.uPlot) draw(el, data.days, data[el.dataset.chart]);
      el.dataset.drawn = "true";
    });
  });
})();
