// The audit overview's chart: issuances per day, stacked by outcome (Chart.js, served from our static files).
// The numbers come from the page's JSON data block (json_script); the table below the chart has the same.
(function () {
  "use strict";

  var COLOURS = { issued: "#2e7d32", reused: "#1565c0", refused: "#b26a00", failed: "#c62828" }; // as the badges

  function draw() {
    var canvas = document.getElementById("overview-chart");
    var source = document.getElementById("overview-chart-data");
    if (!canvas || !source || typeof window.Chart !== "function") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.days,
        datasets: data.series.map(function (series) {
          return {
            label: series.label,
            data: series.counts,
            backgroundColor: COLOURS[series.outcome] || "#888",
            stack: "outcomes",
          };
        }),
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
        },
        plugins: { legend: { position: "bottom" } },
      },
    });
    canvas.dataset.ready = "true"; // for tests and people automating the page
    canvas.dataset.points = String(chart.data.datasets.reduce(function (n, d) { return n + d.data.length; }, 0));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
