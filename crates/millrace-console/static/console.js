// millrace console: keeps the overview live from /events (server-sent events). Pages read
// the same without it.
"use strict";
(function () {
  const table = document.querySelector("table.stages");
  if (!table || !window.EventSource) return;
  const note = document.getElementById("live-note");
  const source = new EventSource("/events");
  source.addEventListener("stages", (e) => {
    const stages = JSON.parse(e.data);
    for (const s of stages) {
      const row = document.getElementById("row-" + s.key);
      if (row) {
        row.className = s.state;
        row.querySelector('[data-field="state"]').textContent = s.state;
        row.querySelector('[data-field="detail"]').textContent = s.detail;
        row.querySelector('[data-field="error"]').textContent = s.error || "";
      }
      const box = document.getElementById("box-" + s.key);
      if (box) box.setAttribute("class", "stage " + s.state);
      const state = document.getElementById("svg-state-" + s.key);
      if (state) state.textContent = s.state;
    }
    if (note) note.textContent = "Live: updated " + new Date().toLocaleTimeString() + ".";
  });
  source.onerror = () => {
    if (note) note.textContent = "Live updates paused: the server is not answering; retrying.";
  };
})();
