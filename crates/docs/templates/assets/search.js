// Search over messages, types, close codes, requirements and spec sections: by
// name, then full text (descriptions, field names, spec prose). The index is
// a script (search-index.js), not fetched JSON, so it works from file:// too.
// Also the page helpers that need the DOM: a table of contents beside long
// pages, and column labels for tables shown as stacked rows on phones.
// Without JavaScript the site is fully navigable by links.
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
      // Names first (prefix matches before others, shorter first), then full-text matches:
      // every word of the query in the name or the text (descriptions, field names, spec prose).
      var words = q.split(/\s+/);
      var hits = [];
      index.forEach(function (e) {
        var name = e.n.toLowerCase();
        var rank;
        if (name.indexOf(q) === 0) rank = 0;
        else if (name.indexOf(q) !== -1) rank = 1;
        else {
          var all = name + " " + (e.t || "").toLowerCase();
          if (!words.every(function (w) { return all.indexOf(w) !== -1; })) return;
          rank = 2;
        }
        hits.push({ e: e, rank: rank });
      });
      hits.sort(function (a, b) { return a.rank - b.rank || a.e.n.length - b.e.n.length; });
      hits = hits.map(function (h) { return h.e; });
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
  // Long pages (four or more h2/h3): a table of contents in an <aside>, a
  // sidebar on wide screens (style.css) and a list at the top on phones.
  function toc() {
    var main = document.querySelector("main");
    if (!main || main.querySelector("aside.page-toc")) return;
    var heads = Array.prototype.filter.call(main.querySelectorAll("h2[id], h3[id]"), function (h) { return h.textContent.trim(); });
    if (heads.length < 4) return;
    var aside = document.createElement("aside");
    aside.className = "page-toc";
    aside.setAttribute("aria-label", "on this page");
    // A <details>: open beside the text on wide screens, one line to tap on phones.
    var box = document.createElement("details");
    box.open = window.matchMedia("(min-width: 64rem)").matches;
    var title = document.createElement("summary");
    title.textContent = "On this page";
    box.appendChild(title);
    aside.appendChild(box);
    var ol = document.createElement("ol");
    heads.forEach(function (h) {
      var li = document.createElement("li");
      if (h.tagName === "H3") li.className = "sub";
      var a = document.createElement("a");
      a.href = "#" + h.id;
      a.textContent = h.textContent.replace(/^§\s*/, "").trim();
      li.appendChild(a);
      ol.appendChild(li);
    });
    box.appendChild(ol);
    main.classList.add("with-toc");
    main.insertBefore(aside, main.firstChild);
  }
  // Each cell gets its column's heading as `data-label`: on narrow screens
  // style.css shows rows as stacked cards, each value under its label.
  function labels() {
    Array.prototype.forEach.call(document.querySelectorAll("table"), function (table) {
      var names = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
      if (!names.length) return;
      table.classList.add("stackable");
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
        Array.prototype.forEach.call(tr.children, function (td, i) {
          if (names[i]) td.setAttribute("data-label", names[i]);
        });
      });
    });
  }
  function start() { init(); toc(); labels(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
