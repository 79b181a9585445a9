// Skyport console: refreshes every element marked data-live from its URL (a server-rendered
// fragment) every two seconds while the page is visible. No framework, nothing else runs.
"use strict";
(function () {
  var EVERY = 2000;
  function banner(text) {
    var b = document.getElementById("live-status");
    if (!b) {
      b = document.createElement("p");
      b.id = "live-status";
      b.className = "note";
      b.setAttribute("role", "status");
      var main = document.getElementById("main");
      if (main) main.insertBefore(b, main.firstChild);
    }
    b.textContent = text;
    b.hidden = !text;
  }
  function refresh() {
    if (document.hidden) return;
    var els = document.querySelectorAll("[data-live]");
    Array.prototype.forEach.call(els, function (el) {
      fetch(el.getAttribute("data-live"), {
        credentials: "same-origin",
        headers: { "X-Console-Live": "1" },
        cache: "no-store"
      }).then(function (r) {
        if (r.status === 401) {
          banner("Your session ended: reload the page to sign in again.");
          return null;
        }
        if (!r.ok) {
          banner("Live updates paused: the server answered " + r.status + ".");
          return null;
        }
        return r.text();
      }).then(function (html) {
        if (html === null || html === undefined) return;
        banner("");
        if (el.innerHTML !== html) el.innerHTML = html;
      }).catch(function () {
        banner("Live updates paused: the server cannot be reached. Retrying.");
      });
    });
  }
  setInterval(refresh, EVERY);
})();
