// bsg-sync web page, "Check numbers first": follow the price or the check, then show the result.
"use strict";

(function () {
  var box = document.getElementById("check");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var poll = function () {
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.state !== "quoting" && s.state !== "checking") { window.location.reload(); return; }
        var bar = document.getElementById("check-bar");
        if (s.state === "checking" && s.total) {
          bar.max = Math.max(s.total, 1); bar.value = s.done;
          document.getElementById("check-text").textContent =
            "Checking numbers: " + s.done + " of " + s.total;
        }
        setTimeout(poll, 400);
      })
      .catch(function () { setTimeout(poll, 2000); });
  };
  setTimeout(poll, 300);
})();
