/* Dashin console: live updates over Server-Sent Events, no build step.
 *
 * - Every signed-in page opens /api/v1/events (the session cookie authenticates it) and shows
 *   notifications as they arrive; job_status events are re-dispatched as `dashin:job-status`.
 * - The jobs table sets a row's chip at once from the event, then re-reads the row; a response
 *   older than the newest request for that row is dropped, so a row never goes back in time.
 * - The job page re-reads its summary on each status change (dropping the old status's buttons
 *   until then) and tails the job's log stream;
 *   the browser's EventSource resends Last-Event-ID when it reconnects (no gap, no repeat).
 */
(function () {
  "use strict";
  // the job statuses that still change on their own, as the server declares them
  const LIVE = JSON.parse(document.body.dataset.liveStatuses || "[]");
  const TONES = JSON.parse(document.body.dataset.statusTones || "{}");
  const csrf = () => {
    const h = document.body.getAttribute("hx-headers");
    try { return h ? JSON.parse(h)["X-CSRF-Token"] : ""; } catch (e) { return ""; }
  };

  function setStatus(el, status) {
    if (!el || el.dataset.status === status) return;
    el.dataset.status = status;
    el.querySelectorAll("[data-chip]").forEach((chip) => {
      chip.textContent = status;
      chip.className = "chip chip-" + (TONES[status] || status);
    });
  }

  const latest = new Map(); // url -> request number
  let counter = 0;
  async function fetchFragment(url) {
    const n = ++counter;
    latest.set(url, n);
    const response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (latest.get(url) !== n) return null; // a newer request for the same fragment is on its way
    if (response.status === 401 || response.redirected) { window.location.reload(); return null; }
    if (!response.ok) return null;
    return response.text();
  }

  function replaceWith(el, html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const fresh = tpl.content.firstElementChild;
    if (!fresh || !el.parentNode) return null;
    el.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    return fresh;
  }

  // --- the domain's live events --------------------------------------------------------------
  function openEvents() {
    const url = document.body.dataset.eventsUrl;
    if (!url || !window.EventSource) return;
    const source = new EventSource(url, { withCredentials: true });
    source.addEventListener("job_status", (e) => {
      const data = JSON.parse(e.data);
      document.dispatchEvent(new CustomEvent("dashin:job-status", { detail: data }));
    });
    source.addEventListener("resync", () => document.dispatchEvent(new CustomEvent("dashin:resync")));
    source.addEventListener("notification", (e) => showNotification(JSON.parse(e.data)));
    source.addEventListener("ready", () => { document.body.dataset.eventsReady = "true"; });
  }

  function showNotification(note) {
    const region = document.getElementById("notifications");
    if (!region) return;
    const p = document.createElement("p");
    p.className = "note";
    p.dataset.kind = note.kind;
    const payload = note.payload || {};
    const link = payload.job_id ? ` <a href="/console/jobs/${payload.job_id}">open</a>` : "";
    p.innerHTML = `<strong></strong> <span></span>${link} <button type="button" aria-label="Dismiss">×</button>`;
    p.querySelector("strong").textContent = note.kind;
    p.querySelector("span").textContent = payload.status ? `job ${payload.status}` : "";
    p.querySelector("button").addEventListener("click", () => p.remove());
    region.prepend(p);
    while (region.children.length > 5) region.lastElementChild.remove();
  }

  // --- jobs table ------------------------------------------------------------------------------
  function liveJobsTable(table) {
    const body = table.tBodies[0];
    const wanted = (data) =>
      (!table.dataset.filterStatus || table.dataset.filterStatus === data.status) &&
      (!table.dataset.filterSource || table.dataset.filterSource === data.data_source_id);
    async function refreshRow(id) {
      const html = await fetchFragment(`/console/jobs/${id}/row`);
      if (html === null) return;
      const row = body.querySelector(`tr[data-job-id="${id}"]`);
      if (row) { replaceWith(row, html); return; }
      const empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      const tpl = document.createElement("template");
      tpl.innerHTML = html.trim();
      const fresh = tpl.content.firstElementChild;
      if (fresh && !body.querySelector(`tr[data-job-id="${id}"]`)) {
        body.prepend(fresh);
        if (window.htmx) window.htmx.process(fresh);
      }
    }
    function placeholder(data) {
      // Shown at once, so a fast job's every status is seen; the real row replaces it.
      const empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      const row = document.createElement("tr");
      row.dataset.jobId = data.job_id;
      row.dataset.status = data.status;
      row.innerHTML = '<td><a></a></td><td><span data-chip></span></td><td colspan="10">…</td>';
      row.querySelector("a").href = `/console/jobs/${data.job_id}`;
      row.querySelector("a").textContent = data.job_id.slice(0, 8);
      const chip = row.querySelector("[data-chip]");
      chip.textContent = data.status;
      chip.className = "chip chip-" + data.status;
      body.prepend(row);
    }
    document.addEventListener("dashin:job-status", (e) => {
      const data = e.detail;
      const row = body.querySelector(`tr[data-job-id="${data.job_id}"]`);
      if (row) setStatus(row, data.status);
      else if (wanted(data)) placeholder(data);
      else return;
      refreshRow(data.job_id);
    });
    document.addEventListener("dashin:resync", () => {
      body.querySelectorAll("tr[data-job-id]").forEach((row) => refreshRow(row.dataset.jobId));
    });
    // Progress counters move without status changes: re-read live rows now and then.
    setInterval(() => {
      body.querySelectorAll("tr[data-job-id]").forEach((row) => {
        if (LIVE.includes(row.dataset.status)) refreshRow(row.dataset.jobId);
      });
    }, 3000);
  }

  // --- one job's page --------------------------------------------------------------------------
  function jobPage(article) {
    const id = article.dataset.jobId;
    async function refreshSummary() {
      const html = await fetchFragment(`/console/jobs/${id}/summary`);
      const current = document.getElementById("job-summary");
      if (html !== null && current) replaceWith(current, html);
    }
    document.addEventListener("dashin:job-status", (e) => {
      if (e.detail.job_id !== id) return;
      const summary = document.getElementById("job-summary");
      if (summary && summary.dataset.status !== e.detail.status) {
        // The buttons belong to the old status: drop them until the re-read brings the new ones.
        summary.querySelectorAll(".actions").forEach((el) => el.replaceChildren());
      }
      setStatus(summary, e.detail.status);
      refreshSummary();
    });
    document.addEventListener("dashin:resync", refreshSummary);
    setInterval(() => {
      const summary = document.getElementById("job-summary");
      if (summary && LIVE.includes(summary.dataset.status)) refreshSummary();
    }, 3000);
    tailLog(document.getElementById("log"));
  }

  function tailLog(list) {
    if (!list || !window.EventSource) return;
    const level = document.getElementById("log-level");
    const follow = document.getElementById("log-follow");
    const state = document.getElementById("log-state");
    let source = null;
    let lastSeq = 0;
    function open() {
      if (source) source.close();
      const params = new URLSearchParams({ after_seq: "0", level: level.value });
      source = new EventSource(`${list.dataset.streamUrl}?${params}`, { withCredentials: true });
      source.onopen = () => { state.textContent = "live"; };
      source.onerror = () => { state.textContent = "reconnecting…"; }; // the browser retries with Last-Event-ID
      source.addEventListener("log", (e) => {
        const line = JSON.parse(e.data);
        list.dataset.received = String(Number(list.dataset.received || 0) + 1);
        if (line.seq <= lastSeq) return;
        lastSeq = line.seq;
        const li = document.createElement("li");
        li.dataset.seq = String(line.seq);
        li.dataset.level = line.level;
        li.className = "level-" + line.level;
        const ts = document.createElement("time");
        ts.dateTime = line.ts;
        ts.textContent = line.ts.replace("T", " ").slice(0, 19);
        const lvl = document.createElement("span");
        lvl.className = "lvl";
        lvl.textContent = line.level;
        const ev = document.createElement("code");
        ev.textContent = line.event;
        const msg = document.createElement("span");
        msg.textContent = " " + line.message;
        li.append(ts, " ", lvl, " ", ev, msg);
        list.append(li);
        if (follow.checked) list.scrollTop = list.scrollHeight;
      });
      source.addEventListener("end", () => {
        state.textContent = "job finished: end of log";
        list.dataset.ended = "true";
        source.close();
      });
    }
    level.addEventListener("change", () => {
      list.replaceChildren();
      lastSeq = 0;
      list.dataset.received = "0";
      delete list.dataset.ended;
      open();
    });
    open();
  }

  // --- CSV upload with a progress bar ----------------------------------------------------------
  function uploadForm(form) {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const input = form.querySelector('input[type="file"]');
      const bar = form.querySelector("progress");
      const out = form.querySelector("output");
      if (!input.files.length) { out.textContent = "Choose a file first."; return; }
      const body = new FormData();
      body.append("file", input.files[0]);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.uploadUrl);
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      bar.hidden = false;
      bar.value = 0;
      xhr.upload.addEventListener("progress", (p) => {
        if (p.lengthComputable) bar.value = Math.round((100 * p.loaded) / p.total);
      });
      xhr.addEventListener("load", () => {
        let answer = {};
        try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = {}; }
        if (xhr.status === 201) {
          bar.value = 100;
          out.textContent = `Uploaded ${answer.filename || "file"} (${answer.size} bytes).`;
          form.dataset.fileId = answer.id;
        } else {
          out.textContent = answer.detail || `Upload failed (${xhr.status}).`;
        }
      });
      xhr.addEventListener("error", () => { out.textContent = "Upload failed: network error."; });
      xhr.send(body);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-upload-url]").forEach(uploadForm);
    document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
      select.addEventListener("change", () => select.form.requestSubmit());
    });
    openEvents();
    const table = document.querySelector("table[data-live-jobs]");
    if (table) liveJobsTable(table);
    const article = document.querySelector("[data-job-page]");
    if (article) jobPage(article);
    document.dispatchEvent(new CustomEvent("dashin:ready"));
  });
  window.dashinCsrf = csrf;
})();
