// Search by name over messages, types, close codes and requirements. The
// index is a script (search-index.js), not fetched JSON, so it works from
// file:// too. Without JavaScript the site is fully navigable by links.
(function () {
  "use strict";
  function init() {
    var input = document.getElementById("q");
    var list = document.getElementById("results");
    var index = window.COURIER_SEARCH || [];
    var root = document.body.getAttribute("data-root") || "";
    if (!input || !list) return;
    function render(query) {
      list.textContent = "";
      var q = query.trim().toLowerCase();
      if (!q) { list.hidden = true; return; }
      var hits = index.filter(function (e) { return e.n.toLowerCase().indexOf(q) !== -1; });
      hits.sort(function (a, b) {
        var ap = a.n.toLowerCase().indexOf(q) === 0 ? 0 : 1, bp = b.n.toLowerCase().indexOf(q) === 0 ? 0 : 1;
        return ap - bp || a.n.length - b.n.length;
      });
      hits.slice(0, 20).forEach(function (e) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = root + e.u;
        a.textContent = e.n;
        var kind = document.createElement("small");
        kind.textContent = e.k;
        a.appendChild(kind);
        li.appendChild(a);
        list.appendChild(li);
      });
      list.hidden = hits.length === 0;
    }
    input.addEventListener("input", function () { render(input.value); });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        var first = list.querySelector("a");
        if (first) window.location.href = first.href;
      } else if (ev.key === "Escape") {
        input.value = ""; render("");
      }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
