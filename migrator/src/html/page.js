// Clicking a legend entry hides or shows that series of the chart.
document.querySelectorAll("#legend li").forEach(function (li) {
  li.addEventListener("click", function () {
    var key = li.getAttribute("data-key");
    var off = li.classList.toggle("off");
    document.querySelectorAll("svg .series").forEach(function (p) {
      var k = p.getAttribute("data-instance") || p.getAttribute("data-series");
      if (k === key) { p.classList.toggle("hidden", off); }
    });
  });
});
