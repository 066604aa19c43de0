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

// The model page's threshold slider: exact confusion counts at each cut training recorded.
(function () {
  const box = document.getElementById("slider");
  const input = document.getElementById("threshold");
  const data = document.getElementById("cuts");
  if (!box || !input || !data) return;
  const cuts = JSON.parse(data.textContent);
  const pos = Number(box.dataset.positives);
  const neg = Number(box.dataset.negatives);
  const set = (id, v) => { const e = document.getElementById(id); if (e) e.textContent = v; };
  const f4 = (x) => (Number.isFinite(x) ? x.toFixed(4) : "—");
  box.hidden = false;
  input.addEventListener("input", () => {
    const [t, tp, fp] = cuts[Number(input.value)];
    const fn = pos - tp, tn = neg - fp;
    set("tp", tp); set("fp", fp); set("fn", fn); set("tn", tn);
    set("threshold-value", f4(t));
    const precision = tp / (tp + fp), recall = tp / pos;
    const f1 = (2 * precision * recall) / (precision + recall);
    set("at-threshold", "precision " + f4(precision) + ", recall " + f4(recall) + ", f1 " + f4(f1));
  });
})();

// The what-if form: re-scores as values change (the page's address follows the record), so
// the prediction and each column's contribution update without a reload.
(function () {
  const form = document.getElementById("what-if");
  const out = document.getElementById("outcome");
  if (!form || !out || !window.fetch) return;
  let timer = null;
  let asked = 0;
  const update = () => {
    const query = new URLSearchParams(new FormData(form)).toString();
    const n = ++asked;
    fetch("?" + query + "&_fragment=1", { headers: { Accept: "text/html" } })
      .then((r) => r.text())
      .then((html) => {
        if (n !== asked) return; // a newer request is on its way
        out.innerHTML = html;
        history.replaceState(null, "", "?" + query);
      })
      .catch(() => { out.insertAdjacentHTML("afterbegin", '<p class="error">The server is not answering.</p>'); });
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 150); });
  form.addEventListener("change", () => { clearTimeout(timer); update(); });
})();

// A training's page: the progress, the leaderboard and what training said, from
// /train/{id}/events as candidates finish; once it is over, the link to the saved version.
(function () {
  const box = document.getElementById("training");
  if (!box || box.dataset.finished === "true" || !window.EventSource) return;
  const el = (id) => document.getElementById(id);
  const note = el("live-note");
  const text = (tag, value, attrs) => {
    const e = document.createElement(tag);
    e.textContent = value;
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  };
  const source = new EventSource("/train/" + encodeURIComponent(box.dataset.id) + "/events");
  source.addEventListener("training", (e) => {
    const t = JSON.parse(e.data);
    el("train-state").textContent = t.state;
    if (t.metric) el("train-metric").textContent = "metric " + t.metric;
    if (t.seconds != null) el("train-took").textContent = "took " + t.seconds.toFixed(2) + " s";
    const progress = el("train-progress");
    progress.max = Math.max(t.planned, 1);
    progress.value = t.candidates.length;
    el("train-count").textContent = t.candidates.length + " of " + t.planned + " cross-validated";
    const head = document.querySelector("#leaderboard thead th:nth-child(3)");
    if (head && t.metric) head.textContent = "CV " + t.metric;
    const body = document.querySelector("#leaderboard tbody");
    body.replaceChildren(...t.ranked.map((c, i) => {
      const tr = document.createElement("tr");
      tr.append(text("td", String(i + 1), { class: "num" }), text("th", c.name, { scope: "row" }),
        text("td", c.cv.toFixed(4), { class: "num" }), text("td", c.seconds.toFixed(2), { class: "num" }));
      return tr;
    }));
    el("train-lines").replaceChildren(...t.lines.map((l) => text("li", l)));
    if (t.error) { el("train-error").textContent = t.error; el("train-error").hidden = false; }
    if (t.version_link) {
      const link = el("train-version");
      link.href = t.version_link;
      link.textContent = t.name + ":v" + t.version;
      el("train-done").hidden = false;
    }
    const over = t.state === "done" || t.state === "failed";
    if (note) note.textContent = over ? "" : "Live: updated " + new Date().toLocaleTimeString() + ".";
    if (over) {
      box.dataset.finished = "true";
      source.close();
      el("leaderboard-caption").textContent = "Leaderboard, best first (cross-validated on the training part)";
    }
  });
  source.addEventListener("gone", () => source.close());
  source.onerror = () => {
    if (note) note.textContent = "Live updates paused: the server is not answering; retrying.";
  };
})();
