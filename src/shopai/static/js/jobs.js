// /admin/jobs stays current without a reload: polls GET /api/jobs (same filters as
// the page) and rewrites the rows with textContent only, since kinds and error
// messages are data, never markup. Retry and cancel go to the JSON endpoints with
// the X-CSRFToken header; without this script they are ordinary POST forms.
import { csrfFetch } from "./csrf.js";

const BADGES = {
  queued: "text-bg-secondary",
  running: "text-bg-primary",
  succeeded: "text-bg-success",
  failed: "text-bg-danger",
  cancelled: "text-bg-dark",
};

// Same text as the server's template macros, so a refreshed row reads the same.
function when(iso) {
  return iso ? `${iso.slice(0, 19).replace("T", " ")} UTC` : "";
}

function progressText(progress) {
  const count = progress.total ? `${progress.done}/${progress.total}` : progress.done ? String(progress.done) : "";
  return progress.message ? `${count} ${progress.message}`.trim() : count;
}

function setField(row, name, text) {
  const cell = row.querySelector(`[data-field="${name}"]`);
  if (cell && cell.textContent !== text) cell.textContent = text;
}

function fill(row, job, adminBase) {
  row.dataset.jobId = String(job.id);
  setField(row, "id", String(job.id));
  setField(row, "kind", job.kind);
  setField(row, "status", job.status);
  const badge = row.querySelector('[data-field="status"]');
  if (badge) badge.className = `badge ${BADGES[job.status] || "text-bg-light"}`;
  setField(row, "attempts", `${job.attempts}/${job.max_attempts}`);
  setField(row, "progress", progressText(job.progress));
  setField(row, "last_error", job.last_error);
  for (const name of ["created_at", "started_at", "finished_at", "updated_at"]) {
    setField(row, name, when(job[name]));
  }
  for (const form of row.querySelectorAll("form[data-job-action]")) {
    const action = form.dataset.jobAction;
    form.action = `${adminBase}/${job.id}/${action}`;
    form.hidden = action === "retry" ? !job.can_retry : !job.can_cancel;
    setField(form, "label", ` job ${job.id}`);
  }
}

function start(table) {
  const tbody = table.tBodies[0];
  const template = document.getElementById("job-row-template");
  const live = document.getElementById("jobs-live");
  const empty = document.getElementById("jobs-empty");
  const { pollUrl, apiBase, adminBase } = table.dataset;
  const interval = Math.max(500, Number(table.dataset.pollMs) || 2000);
  let timer = null;
  let stopped = false;

  function render(items) {
    const rows = new Map([...tbody.rows].map((row) => [row.dataset.jobId, row]));
    const kept = new Set();
    items.forEach((job, index) => {
      let row = rows.get(String(job.id));
      if (!row) row = template.content.firstElementChild.cloneNode(true);
      fill(row, job, adminBase);
      if (tbody.rows[index] !== row) tbody.insertBefore(row, tbody.rows[index] || null);
      kept.add(row);
    });
    for (const row of [...tbody.rows]) if (!kept.has(row)) row.remove();
    if (empty) empty.hidden = items.length > 0;
  }

  async function poll() {
    timer = null;
    try {
      const response = await fetch(pollUrl, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401 || response.status === 403) {
        live.textContent = "Live updates stopped: sign in again to see jobs.";
        stopped = true;
      } else if (!response.ok) {
        live.textContent = `Live updates paused (HTTP ${response.status}); retrying.`;
      } else {
        render((await response.json()).items);
        live.textContent = `Live: updated ${new Date().toLocaleTimeString()}.`;
      }
    } catch {
      live.textContent = "Live updates paused (no connection); retrying.";
    }
    schedule(interval);
  }

  function schedule(delay) {
    if (stopped || document.hidden) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(poll, delay);
  }

  // A hidden tab does not poll; it catches up as soon as it is shown again.
  document.addEventListener("visibilitychange", () => schedule(0));

  table.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.jobAction) return;
    event.preventDefault();
    const id = form.closest("tr").dataset.jobId;
    try {
      const response = await csrfFetch(`${apiBase}/${id}/${form.dataset.jobAction}`, { method: "POST" });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        live.textContent = body?.error?.message || `That did not work (HTTP ${response.status}).`;
      }
    } catch {
      live.textContent = "That did not work (no connection).";
    }
    schedule(0);
  });

  schedule(interval);
}

const table = document.getElementById("jobs-table");
if (table) start(table);
