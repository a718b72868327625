/**
 * The small HTML page of `airlock serve` (`GET /`): recent jobs and each image's result, for people who would
 * rather look than read JSON. No script; every value is HTML-escaped (image names, error messages from
 * registries, token names). A TypeScript module so that `deno compile` embeds it.
 *
 * @module
 */
import type { RecentDecision } from "./admission.ts";
import type { ImageResult, JobView } from "./jobs.ts";

/**
 * Escapes text for HTML element content and double- or single-quoted attribute values.
 */
export function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** The Content-Security-Policy the pages are served with: no scripts, no external anything. */
export const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE = `body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;
vertical-align:top}tr.job{background:#f3f5f8;font-weight:600}tr.image td:first-child{padding-left:2em}
code{font-size:12px}.failed,.cancelled{color:#b00}.succeeded,.signed,.passed,.verified{color:#070}
.error{color:#b00;white-space:pre-wrap;font-size:12px}.reason{font-size:12px;white-space:pre-wrap}`;

function layout(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>${body}</body></html>
`;
}

function imageRow(jobId: string, index: number, r: ImageResult): string {
  const e = escapeHtml;
  const error = r.error ? `<div class="error">${e(r.error.code)}: ${e(r.error.message)}</div>` : "";
  const targets = r.targets.length;
  return `<tr class="image" data-job-id="${e(jobId)}" data-index="${index}" data-status="${e(r.status)}">` +
    `<td colspan="2"><code class="image-name">${e(r.image)}</code>${error}</td>` +
    `<td class="${e(r.status)}">${e(r.status)}</td>` +
    `<td colspan="2"><code>${e(r.digest ?? "")}</code></td>` +
    `<td>${targets} manifest${targets === 1 ? "" : "s"}</td></tr>`;
}

function jobRows(job: JobView): string {
  const e = escapeHtml;
  const s = job.summary;
  const head =
    `<tr class="job" id="job-${e(job.id)}" data-job-id="${e(job.id)}" data-kind="${e(job.kind)}" ` +
    `data-state="${e(job.state)}"><td><code>${e(job.id)}</code></td><td>${e(job.kind)}</td>` +
    `<td class="${e(job.state)}">${e(job.state)}</td><td>${e(job.submittedBy)}</td>` +
    `<td>${e(job.createdAt)}</td><td>${s.done}/${s.total} done, ${s.failed} failed</td></tr>`;
  const error = job.error
    ? `<tr class="job-error"><td colspan="6" class="error">${e(job.error.code)}: ${
      e(job.error.message)
    }</td></tr>`
    : "";
  return head + error + job.images.map((r, i) => imageRow(job.id, i, r)).join("");
}

/** What the jobs page shows besides the jobs. */
export interface PageInfo {
  /** airlock's version. */
  readonly version: string;
  /** When the page was rendered (ISO 8601). */
  readonly renderedAt: string;
  /** The name of the token the viewer used. */
  readonly viewer: string;
  /** Recent admission decisions, newest first (only when the admission webhook is on). */
  readonly decisions?: readonly RecentDecision[];
}

function decisionRow(d: RecentDecision): string {
  const e = escapeHtml;
  return `<tr class="decision" data-decision="${e(d.decision)}" data-uid="${e(d.uid)}">` +
    `<td>${e(d.time)}</td><td class="${d.decision === "allowed" ? "passed" : "failed"}">${e(d.decision)}` +
    `${d.dryRun ? " (dry run)" : ""}</td><td>${e(d.endpoint)}</td><td>${e(d.namespace)}</td>` +
    `<td>${e(d.object)}</td><td><code class="image-name">${e(d.image)}</code></td>` +
    `<td><code>${e(d.digest)}</code></td><td class="reason">${e(d.reason)}</td></tr>`;
}

function decisionsTable(decisions: readonly RecentDecision[]): string {
  const rows = decisions.length === 0
    ? `<tr class="empty"><td colspan="8">No admission reviews yet.</td></tr>`
    : decisions.map(decisionRow).join("\n");
  return `<h2>Admission decisions</h2>
<p>Recent decisions of the admission webhook, newest first (${decisions.length}).</p>
<table id="decisions"><thead><tr><th>Time</th><th>Decision</th><th>Endpoint</th><th>Namespace</th><th>Object</th>
<th>Image</th><th>Digest</th><th>Reason</th></tr></thead>
<tbody>
${rows}
</tbody></table>`;
}

/**
 * The page of recent jobs: one `tr.job` row per job (`data-job-id`, `data-state`), followed by one `tr.image`
 * row per image (`data-status`).
 */
export function renderJobsPage(jobs: readonly JobView[], info: PageInfo): string {
  const e = escapeHtml;
  const rows = jobs.length === 0
    ? `<tr class="empty"><td colspan="6">No jobs yet.</td></tr>`
    : jobs.map(jobRows).join("\n");
  return layout(
    "airlock serve: recent jobs",
    `<h1>airlock serve</h1>
<p>Recent jobs, newest first (${jobs.length}). Rendered ${e(info.renderedAt)} for <b>${e(info.viewer)}</b>.
airlock ${e(info.version)}. <a href="/">Reload</a></p>
<table id="jobs"><thead><tr><th>Job / image</th><th>Kind</th><th>State</th><th>By / digest</th><th>Created</th>
<th>Progress</th></tr></thead>
<tbody>
${rows}
</tbody></table>${info.decisions === undefined ? "" : "\n" + decisionsTable(info.decisions)}`,
  );
}

/**
 * The page asking for a token (answered with 401 to a browser without a valid one).
 */
export function renderLoginPage(message: string): string {
  return layout(
    "airlock serve: sign in",
    `<h1>airlock serve</h1>
<p id="message">${escapeHtml(message)}</p>
<form method="get" action="/"><label>Token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Show jobs</button></form>`,
  );
}
