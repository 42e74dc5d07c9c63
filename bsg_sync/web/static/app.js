// bsg-sync web page: drag and drop onto the upload box, live progress, and the run in progress.
"use strict";

(function () {
  // after each page load, focus the page's main heading (not the body), so a screen reader
  // starts at what the page is about; a page reached by a link to an anchor keeps its anchor
  var heading = document.querySelector("main h1");
  if (heading && !window.location.hash) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({preventScroll: true});
  }

  // the mapping page: say next to a column when its values do not fit the target chosen
  document.querySelectorAll("tr[data-misfit]").forEach(function (tr) {
    var misfit = JSON.parse(tr.getAttribute("data-misfit") || "{}");
    var select = tr.querySelector("select");
    var warn = tr.querySelector(".warn");
    var type = tr.querySelector(".type");
    if (!select || !warn) { return; }
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var kind = option.getAttribute("data-kind");
      var text = kind && misfit[kind];
      warn.textContent = text ? "Check this: " + text + "." : "";
      warn.hidden = !text;
      if (type) {
        type.textContent = select.value === "ignore" ? "Not sent to BSG." : "Type: " + option.getAttribute("data-type");
      }
    });
  });

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

  var labels = {ok: "OK", unchanged: "Unchanged", planned: "Will change", invalid: "Invalid",
                not_found: "Not found", failed: "Failed", not_sent: "Not sent", skipped: "Skipped"};

  function renderCounts(list, counts) {
    list.textContent = "";
    Object.keys(counts).forEach(function (k) {
      var li = document.createElement("li");
      var badge = document.createElement("span");
      badge.className = "badge s-" + k;
      badge.textContent = labels[k] || k;
      var n = document.createElement("strong");
      n.textContent = String(counts[k]);
      li.appendChild(badge); li.appendChild(document.createTextNode(" ")); li.appendChild(n);
      list.appendChild(li);
    });
  }

  // Someone's run in progress: the banner, the "please wait" note and the live view follow it;
  // buttons that wait for it come back when it ends.
  var watcher = document.querySelector("[data-running-url]");
  if (watcher) {
    var runningUrl = watcher.getAttribute("data-running-url");
    var watch = function () {
      fetch(runningUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (v) {
          var running = v.state === "running";
          var sentence = v.sentence || "The run has ended";
          var banner = document.getElementById("live-text");
          if (banner) { banner.textContent = sentence; }
          var wait = document.getElementById("wait-text");
          if (wait) { wait.textContent = running ? sentence : "That run has ended; you can go on now"; }
          var live = document.getElementById("live-sentence");
          if (live) {
            live.textContent = sentence + ".";
            var bar = document.getElementById("live-bar");
            if (v.total !== null && v.total !== undefined) { bar.max = Math.max(v.total, 1); bar.value = v.done; }
            renderCounts(document.getElementById("live-counts"), v.counts || {});
            if (v.history_url) {
              var h = document.getElementById("live-history");
              h.querySelector("a").href = v.history_url; h.hidden = false;
            }
          }
          if (running) { setTimeout(watch, 1000); return; }
          document.querySelectorAll("[data-wait-for-run]").forEach(function (b) {
            b.disabled = false; b.removeAttribute("data-wait-for-run");
          });
        })
        .catch(function () { setTimeout(watch, 3000); });
    };
    watch();
  }

  var job = document.getElementById("job");
  if (!job) { return; }
  var url = job.getAttribute("data-status-url");

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
    if (p.state !== "running") {
      text = p.state === "done" ? "finished" : "stopped";
      if (p.stopped && p.total !== null) { text = "Stopped: " + p.done + " of " + p.total + " sent"; }
      var stop = document.getElementById("stop-form");
      if (stop) { stop.hidden = true; }
    }
    document.getElementById("progress-text").textContent = text;
    renderCounts(document.getElementById("progress-counts"), p.counts);
    var err = document.getElementById("job-error");
    err.textContent = p.error; err.hidden = !p.error;
    if (p.state === "failed") {
      document.getElementById("job-back").hidden = false;
      var heading = document.getElementById("job-heading");
      if (heading) { heading.textContent = heading.getAttribute("data-failed"); }
      document.getElementById("bar-line").hidden = true;  // no bar left moving after a failure
      document.getElementById("progress-text").textContent = "stopped by an error (below)";
    }
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
          if (!p.error) {
            // say where the page goes before it goes (the live region is read out)
            document.getElementById("progress-text").textContent =
              p.dry_run ? "The preview is ready; opening it." : "Done; opening the result.";
            setTimeout(function () { window.location.assign(p.next); }, 700);
          }
        }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
})();
