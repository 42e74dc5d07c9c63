// bsg-sync web page: drag and drop onto the upload box, and live progress polling.
"use strict";

(function () {
  var drop = document.querySelector("[data-drop]");
  if (drop) {
    var input = drop.querySelector("input[type=file]");
    var form = drop.closest("form");
    ["dragenter", "dragover"].forEach(function (ev) {
      drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (ev) {
      drop.addEventListener(ev, function () { drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        form.requestSubmit ? form.requestSubmit() : form.submit();
      }
    });
  }

  var job = document.getElementById("job");
  if (!job) { return; }
  var url = job.getAttribute("data-status-url");
  var labels = {ok: "OK", unchanged: "Unchanged", planned: "Will change", invalid: "Invalid",
                not_found: "Not found", failed: "Failed", not_sent: "Not sent"};

  function seconds(s) {
    if (s === null || s === undefined) { return "…"; }
    s = Math.round(s);
    return s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
  }

  function render(p) {
    var bar = document.getElementById("bar");
    if (p.total !== null) { bar.max = Math.max(p.total, 1); bar.value = p.done; }
    var text = p.stage;
    if (!p.dry_run && p.total !== null && p.state === "running") {
      text = "sending: " + p.done + " of " + p.total + " rows";
      if (p.rows_per_s !== null) { text += " · " + p.rows_per_s + " rows/s · about " + seconds(p.eta_s) + " left"; }
    }
    if (p.state !== "running") { text = p.state === "done" ? "finished" : "stopped"; }
    document.getElementById("progress-text").textContent = text;
    var list = document.getElementById("progress-counts");
    list.textContent = "";
    Object.keys(p.counts).forEach(function (k) {
      var li = document.createElement("li");
      var badge = document.createElement("span");
      badge.className = "badge s-" + k;
      badge.textContent = labels[k] || k;
      var n = document.createElement("strong");
      n.textContent = String(p.counts[k]);
      li.appendChild(badge); li.appendChild(document.createTextNode(" ")); li.appendChild(n);
      list.appendChild(li);
    });
    var err = document.getElementById("job-error");
    err.textContent = p.error; err.hidden = !p.error;
    if (p.state === "failed") { document.getElementById("job-back").hidden = false; }
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (p) {
        render(p);
        if (p.state === "running") { setTimeout(poll, 500); return; }
        if (p.next) {
          var link = document.getElementById("next-link");
          link.href = p.next;
          document.getElementById("job-next").hidden = false;
          if (!p.error) { window.location.assign(p.next); }
        }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
