// hoist's dashboard: the one script. It follows a running deployment's
// log over server-sent events; without it the page still shows the log
// as it was, and the plain-text log link streams it too.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var log = document.querySelector("pre[data-events]");
  if (!log || !window.EventSource) {
    return;
  }
  var state = document.getElementById("run-state");
  var source = new EventSource(log.getAttribute("data-events"));
  source.addEventListener("line", function (event) {
    var line = JSON.parse(event.data);
    var span = document.createElement("span");
    if (line.stream === "stderr") {
      span.className = "stderr";
    }
    span.textContent = line.text + "\n";
    log.appendChild(span);
    log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("done", function (event) {
    if (state) {
      state.textContent = event.data;
    }
    source.close();
    // The statuses above came while the page was open: show them.
    window.setTimeout(function () { window.location.reload(); }, 1500);
  });
});
