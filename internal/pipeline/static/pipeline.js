// Live job logs on the run page: each <pre class="log" data-log=URL>
// follows the job's server-sent events (ANSI colours rendered as spans;
// text inserted as text, never as HTML).
(function () {
  "use strict";
  function appendANSI(pre, state, text) {
    var re = /\x1b\[([0-9;]*)m/g, last = 0, m;
    function put(s) {
      if (!s) return;
      var span = document.createElement("span");
      if (state.fg) span.classList.add("fg-" + state.fg);
      if (state.bold) span.classList.add("bold");
      span.textContent = s;
      pre.appendChild(span);
    }
    while ((m = re.exec(text)) !== null) {
      put(text.slice(last, m.index));
      last = re.lastIndex;
      (m[1] || "0").split(";").forEach(function (c) {
        var n = parseInt(c || "0", 10);
        if (n === 0) { state.fg = 0; state.bold = false; }
        else if (n === 1) state.bold = true;
        else if (n === 22) state.bold = false;
        else if (n >= 30 && n <= 37) state.fg = n;
        else if (n === 39) state.fg = 0;
      });
    }
    // Other escape sequences (cursor movement) are dropped.
    put(text.slice(last).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ""));
    pre.scrollTop = pre.scrollHeight;
  }
  function follow(pre) {
    var state = { fg: 0, bold: false };
    var url = pre.getAttribute("data-log");
    var done = ["success", "failed", "cancelled", "skipped"].indexOf(pre.getAttribute("data-status")) >= 0;
    if (done) {
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (t) {
        appendANSI(pre, state, t);
        pre.setAttribute("data-ended", pre.getAttribute("data-status"));
      });
      return;
    }
    var es = new EventSource(url + "?follow=1");
    es.addEventListener("log", function (e) { appendANSI(pre, state, JSON.parse(e.data)); });
    es.addEventListener("end", function (e) {
      es.close();
      var status = JSON.parse(e.data);
      pre.setAttribute("data-status", status);
      pre.setAttribute("data-ended", status);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("pre.log[data-log]").forEach(follow);
  });
})();
