// The page: pick or drop one or more videos, check each, upload them straight to storage (a
// few at a time), follow each job and show its score; several videos end in a table ranked by
// score. The followed jobs are in the address (?job=ID, or ?jobs=ID,ID,... for several), so a
// reload resumes following them, uploads included, and the link can be shared. Where the APIs
// are and the upload limits come from /config.json.

import { ApiError, Stopped, createApi } from "./api.js";
import { clipChart } from "./chart.js";
import { checkFile, formatBytes, formatDuration, formatPercent, quote, typeNames, visibleName } from "./format.js";
import { drawEntryMarks, entriesOf } from "./entry-marks.js";
import { createRateMeter } from "./meter.js";
import { rank, toCsv } from "./ranking.js";
import { dropFile, dropStaleFiles, forgetJob, getJob, keepFile, keptFile, recentJobs, rememberJob } from "./store.js";
import { UploadCancelled, UploadExpired, startUpload } from "./upload.js";
import { TOO_SHORT, noDiveFound, windowNote } from "./window-reason.js";

const $ = (id) => document.getElementById(id);
const PANELS = ["pick", "needs-file", "uploading", "scoring", "result", "failure", "batch"];
const FINAL = new Set(["succeeded", "failed", "refused", "canceled", "lost"]);
const PARALLEL_UPLOADS = 2; // videos uploading at once
const LONG_POLLS = 5; // jobs long-polled at once; with more, each poll is short (a browser opens 6 connections a host)
const QUEUED_SLOW_S = 120;
const UPLOAD_CANCELLED = "The upload was cancelled.";
const AWAITING_SLOW_S = 60;

const STAGES = {
  awaiting_upload: "Waiting for the upload to register…",
  queued: "Waiting in the queue…",
  downloading: "Fetching the video",
  decoding: "Reading the frames",
  scoring: "Running the model",
};

let config = null;
let api = null;
let items = []; // the videos on the page now
let batch = false; // several videos: the list and the ranking, rather than the single panels

// -- one video -------------------------------------------------------------------------------

class Item {
  constructor({ file = null, jobId = null, entry = null }) {
    this.file = file;
    this.video = file; // the video to show beside the result (the file is dropped once uploaded)
    this.before = entry?.before ?? null; // {score, entry_s, window_how}: what a rescore replaces
    // {entries, video_s}: every entry the search found in this video, kept from the job that
    // searched (a rescore at a given entry searches nothing)
    this.found = entry?.found ?? null;
    this.jobId = jobId;
    this.name = file?.name ?? entry?.filename ?? jobId;
    this.size = file?.size ?? entry?.size ?? 0;
    this.state = "waiting"; // waiting, uploading, following, needs-file, or one of FINAL
    this.job = null; // the job as the API last showed it
    this.message = ""; // why it was refused or failed
    this.uploaded = { done: 0, total: this.size, text: "" };
    this.transfer = null;
    this.controller = new AbortController();
    this.phase = null; // status/stage, and since when (ms) the page has seen it
    this.phaseSince = 0;
    this.progressStart = null; // [ms, progress] at the first progress seen while processing
  }

  get final() {
    return FINAL.has(this.state);
  }

  see(job) {
    this.job = job;
    if (job.filename) this.name = job.filename;
    const phase = `${job.status}/${job.stage ?? ""}`;
    if (phase !== this.phase) {
      this.phase = phase;
      this.phaseSince = performance.now();
    }
    if (job.status === "processing" && typeof job.progress === "number") {
      this.progressStart ??= [performance.now(), job.progress];
    }
    const entries = entriesOf(job);
    if (entries.length && job.window) this.found = { entries, video_s: job.window.video_s };
    rememberJob(this.jobId, {
      filename: job.filename, size: job.size, status: job.status, score: job.score ?? null,
      error_code: job.error?.code ?? null, expires_at: job.expires_at, ...entryOf(job),
    });
  }

  // Seconds of scoring left, from the progress the function reported since the page first saw it.
  secondsLeft() {
    const job = this.job;
    if (!this.progressStart || job?.status !== "processing" || typeof job.progress !== "number") return NaN;
    const [t0, p0] = this.progressStart;
    const elapsed = (performance.now() - t0) / 1000;
    if (elapsed < 1 || job.progress - p0 < 0.02) return NaN;
    return (1 - job.progress) / ((job.progress - p0) / elapsed);
  }
}

// What to say about an item: {label, fraction (null: indeterminate), note (a warning or "")}.
function describe(item) {
  const job = item.job;
  switch (item.state) {
    case "waiting":
      return { label: "Waiting to upload…", fraction: 0, note: "" };
    case "uploading":
      return { label: item.uploaded.text || "Starting…", fraction: item.uploaded.total ? item.uploaded.done / item.uploaded.total : 0, note: "" };
    case "needs-file":
      return { label: "Choose this file again to finish its upload.", fraction: 0, note: "" };
    case "refused":
    case "failed":
    case "lost":
      return { label: item.message, fraction: null, note: "" };
    case "canceled":
      return { label: item.message || "Canceled.", fraction: 0, note: "" };
    case "succeeded": {
      const note = windowNote(job);
      return { label: `Score ${job.score.toFixed(2)}${note ? ` · ${note}` : ""}`, fraction: 1, note: "" };
    }
    default:
      break;
  }
  if (!job) return { label: STAGES.queued, fraction: null, note: "" };
  // A job whose upload this page finished waits in the queue even before its status says so
  // (the upload's event is what queues it).
  const status = job.status === "awaiting_upload" && item.uploadedHere ? "queued" : job.status;
  let label = STAGES[job.stage] ?? STAGES[status] ?? status;
  if (job.status === "queued" && job.retry) {
    const at = new Date(job.retry.at).toLocaleTimeString();
    label = `${job.retry.error?.message ?? "An attempt failed."} Attempt ${job.retry.attempt} of ${job.retry.of} at ${at}…`;
  } else if (job.attempt?.number > 1) {
    label = `${label} (attempt ${job.attempt.number} of ${job.attempt.of})`;
  }
  const waited = (performance.now() - item.phaseSince) / 1000;
  if (job.status === "processing" && typeof job.progress === "number") {
    const parts = [label, formatPercent(job.progress)];
    const left = item.secondsLeft();
    if (Number.isFinite(left)) parts.push(`about ${formatDuration(left)} left`);
    const limit = config.function_timeout_seconds ?? 300;
    const note = waited > limit + 30
      ? `Scoring has taken longer than the scoring function may run (${formatDuration(limit)}): its runtime may `
        + `have stopped. The job is retried by itself (up to ${config.max_receive_count ?? 3} attempts in all) or `
        + "marked failed. You can close this page and come back with its link."
      : "";
    return { label: parts.join(" · "), fraction: job.progress, note };
  }
  let note = "";
  if (status === "queued" && waited > QUEUED_SLOW_S) {
    note = `Still waiting in the queue after ${formatDuration(waited)}: the scoring service is busy or not `
      + "running. You can close this page and come back with its link; if the job is still queued in an hour, "
      + "try again later or tell whoever runs the service.";
  } else if (status === "awaiting_upload" && waited > AWAITING_SLOW_S) {
    note = "The video has not arrived. If it is uploading from another page or device, keep that one open; "
      + "otherwise score it again.";
  }
  return { label, fraction: null, note };
}

// -- the address, the panels, announcements --------------------------------------------------

function updateAddress() {
  const ids = items.map((i) => i.jobId).filter(Boolean);
  const query = !ids.length ? "" : batch ? `?jobs=${ids.join(",")}` : `?job=${ids[0]}`;
  history.replaceState(null, "", `${location.pathname}${query}`);
  const line = $("job-line");
  line.hidden = batch || ids.length !== 1;
  if (!line.hidden) {
    $("job-id").textContent = ids[0];
    $("job-link").href = `?job=${ids[0]}`;
  }
}

function show(panel, { focus = true } = {}) {
  for (const id of PANELS) $(id).hidden = id !== panel;
  document.body.dataset.state = panel;
  if (focus) $(`${panel}-title`).focus();
}

function announce(text) {
  $("status").textContent = text;
}

function showPickError(message) {
  $("pick-error").textContent = message;
  $("pick-error").hidden = !message;
  showPickNote("");
}

function showPickNote(message) {
  $("pick-note").textContent = message;
  $("pick-note").hidden = !message;
}

function uploading() {
  return items.some((i) => i.state === "uploading");
}

function reset() {
  for (const item of items) item.controller.abort();
  if (videoUrl) {
    URL.revokeObjectURL(videoUrl[1]);
    videoUrl = null;
    $("video").removeAttribute("src");
  }
  items = [];
  batch = false;
  updateAddress();
  $("file-input").value = "";
  showPickError("");
  showRecent();
  show("pick");
  announce("Choose a video.");
}

// -- the single-video panels -----------------------------------------------------------------

function renderSingle(item) {
  const { label, fraction, note } = describe(item);
  if (item.state === "uploading" || (item.state === "waiting" && item.file)) {
    $("upload-name").textContent = visibleName(item.name);
    $("upload-bar").value = fraction ?? 0;
    $("upload-text").textContent = label;
    if (document.body.dataset.state !== "uploading") {
      show("uploading");
      announce(`Uploading ${quote(item.name)}.`);
    }
  } else if (item.state === "following") {
    $("scoring-name").textContent = visibleName(item.name);
    const bar = $("job-bar");
    if (fraction === null) bar.removeAttribute("value"); // indeterminate until the function reports progress
    else bar.value = fraction;
    $("stage-text").textContent = item.problem ? "The scoring service did not answer; trying again…" : label;
    showBefore("scoring-before", item);
    showFoundWhileScoring(item);
    $("scoring-note").textContent = note;
    $("scoring-note").hidden = !note;
    if (document.body.dataset.state !== "scoring") show("scoring");
    const phase = `${item.phase}`;
    if (phase !== renderSingle.lastPhase) {
      renderSingle.lastPhase = phase;
      announce(label.replace(/…$/, ".").split(" · ")[0]);
    }
  } else if (item.state === "needs-file") {
    $("needs-file-name").textContent = visibleName(item.name);
    if (document.body.dataset.state !== "needs-file") show("needs-file");
  } else if (item.state === "succeeded") {
    showResult(item);
  } else if (item.state === "refused") {
    reset();
    showPickError(item.message);
    announce(item.message);
  } else if (item.state === "canceled") {
    const upload = item.message === UPLOAD_CANCELLED;
    reset();
    showPickNote(upload ? UPLOAD_CANCELLED : "The job was canceled.");
    announce(upload ? "Upload cancelled. Choose a video." : "Job canceled. Choose a video.");
  } else {
    $("failure-name").textContent = visibleName(item.name);
    $("failure-message").textContent = item.message;
    show("failure");
    announce(`The video could not be scored: ${item.message}`);
  }
}

function showResult(item) {
  shown = item;
  const job = item.job;
  $("result-name").textContent = visibleName(item.name);
  $("score").textContent = job.score.toFixed(2);
  const noDive = noDiveFound(job);
  $("score").toggleAttribute("data-not-a-dive", noDive);
  $("no-dive").hidden = !noDive;
  $("no-dive-note").hidden = !noDive;

  const model = job.model ?? {};
  $("model-line").textContent = `Model: ${model.name ?? "unknown"}${model.weights ? `, weights ${model.weights}` : ""}.`;
  $("untrained-note").hidden = model.calibrated !== false;
  $("scale-note").hidden = model.calibrated !== true;
  showBefore("before", item);

  const clips = (job.clip_scores ?? []).filter(Number.isFinite);
  $("chart").replaceChildren(...(clips.length ? [clipChart(clips, job.score)] : []));
  $("chart-figure").hidden = clips.length === 0;

  const filmstrip = $("filmstrip");
  $("filmstrip-figure").hidden = !job.filmstrip_url;
  if (job.filmstrip_url) {
    filmstrip.alt = `${job.frames?.length ?? "Sampled"} frames of ${quote(item.name)}, in order.`;
    filmstrip.src = job.filmstrip_url;
  } else {
    filmstrip.removeAttribute("src");
  }

  showWindow(item);
  show("result");
  const note = model.calibrated === false ? " The model's weights are untrained, so this is not a real judgement and has no scale."
    : model.calibrated === true ? " On MTL-AQA's scale, judged scores run from 0 to about 104.5." : "";
  announce(`${noDive ? "No dive found in this video. " : ""}Score ${job.score.toFixed(2)}.${note}`);
}

// -- the window: what was scored, and "score the dive entering here" ------------------------

// "2.98 s"; null when there is no number
function seconds(value) {
  return Number.isFinite(value) ? `${value.toFixed(2)}\u00a0s` : null;
}

// What the page says about a window, from the job: the stretch as it lies in the video (never
// past its end), the entry the person gave (or the one found), and whether the window had to
// start at the video's start because the entry is earlier than the window is long.
function windowFacts(job) {
  const w = job.window;
  const video = w.video_s || w.end_s || 1;
  const length = w.end_s - w.start_s;
  const start = Math.min(Math.max(0, w.start_s), video);
  const end = Math.min(Math.max(start, w.end_s), video);
  let entry = Number.isFinite(w.entry_s) ? w.entry_s : null;
  if (entry === null && w.how === "given") entry = Number.isFinite(job.entry_s) ? job.entry_s : null;
  else if (entry === null && w.how === "detected") entry = w.end_s;
  if (entry !== null) entry = Math.min(Math.max(0, entry), video);
  const shifted = typeof w.shifted === "boolean" ? w.shifted
    : w.how !== "whole" && entry !== null && start <= 0.0005 && w.end_s - entry > 0.005;
  return { how: w.how, video, length, start, end, entry, shifted, short: w.end_s - video > 0.005,
    confidence: w.confidence, reason: w.reason };
}

function windowText(f) {
  const scored = `${f.start.toFixed(2)}–${f.end.toFixed(2)} s`;
  const whose = f.how === "given" ? "your entry" : "the entry found";
  if (f.how === "whole" && f.reason === TOO_SHORT) {
    return `The video (${seconds(f.video)}) is no longer than the model's 4.08\u00a0s window: the whole video was `
      + "scored, as one dive.";
  }
  if (f.how === "whole") {
    return "No dive found in this video: no entry into the water was found, so the model scored six clips spread "
      + `over the whole video (0.00–${f.video.toFixed(2)}\u00a0s). Give the entry below to score the seconds before it.`;
  }
  if (f.shifted && f.entry !== null) {
    const early = Math.max(0, f.length - f.entry);
    const short = f.short ? ` The video is shorter than the model's ${f.length.toFixed(2)} s window: its last frame stands for the rest.` : "";
    return `The video starts ${early.toFixed(1)} s before the window would: the model scored ${scored}, `
      + `with ${whose} at ${seconds(f.entry)}.${short}`;
  }
  if (f.how === "given") return `The model scored ${scored}, ending at the entry you gave (${seconds(f.entry)}).`;
  return `The model scored ${scored}, ending where the diver was found entering the water`
    + ` (confidence ${formatPercent(f.confidence ?? 0)}).`;
}

let shown = null; // the item whose result is on the page
let facts = null; // windowFacts() of the shown job
let videoUrl = null; // [File, object URL] of the video on the page

function placeMarker(id, time) {
  const marker = $(id);
  marker.hidden = !Number.isFinite(time);
  if (!marker.hidden) marker.style.left = `${(100 * Math.min(Math.max(time, 0), facts.video)) / facts.video}%`;
}

function tickStep(video) {
  for (const step of [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (video / step <= 6) return step;
  return Math.ceil(video / 6);
}

function drawAxis(video) {
  const step = tickStep(video);
  const times = [];
  for (let t = 0; t < video - step * 0.45; t += step) times.push(t);
  times.push(video);
  const label = (t) => `${Number.isInteger(t) ? t : t.toFixed(t === video ? 2 : 1).replace(/0$/, "")} s`;
  $("timeline-axis").replaceChildren(...times.map((t, i) => {
    const tick = element("span", "timeline__tick");
    if (i === 0) tick.classList.add("timeline__tick--first");
    if (i === times.length - 1) tick.classList.add("timeline__tick--last");
    tick.style.left = `${(100 * t) / video}%`;
    tick.textContent = label(t);
    return tick;
  }));
}

// The chosen entry: the box, the red marker, the hint under the button; and the video's frame.
function choose(time, { seek = true } = {}) {
  const t = Math.min(Math.max(time, 0), facts.video);
  $("entry-input").value = t.toFixed(2);
  placeMarker("timeline-pick", facts.entry !== null && Math.abs(t - facts.entry) < 0.005 ? NaN : t);
  updateHint();
  const video = $("video");
  if (seek && !video.hidden && video.readyState >= 1 && Math.abs(video.currentTime - t) > 0.02) video.currentTime = t;
}

function updateHint() {
  const t = Number($("entry-input").value);
  $("rescore-hint").textContent = !facts || $("entry-input").value === "" || !Number.isFinite(t) ? ""
    : `Scores the ${facts.how === "whole" ? "4.08" : facts.length.toFixed(2)} s of the video that end at ${t.toFixed(2)} s `
      + "(from its start, if the entry is earlier).";
}

function showVideo(item) {
  const video = $("video");
  const file = item.video;
  video.hidden = !file;
  if (!file) {
    video.removeAttribute("src");
    return;
  }
  if (videoUrl?.[0] !== file) {
    if (videoUrl) URL.revokeObjectURL(videoUrl[1]);
    videoUrl = [file, URL.createObjectURL(file)];
    video.src = videoUrl[1];
  }
  // at the chosen time (the entry, unless the person chose another meanwhile)
  const atEntry = () => {
    const t = Number($("entry-input").value);
    if (facts && $("entry-input").value !== "" && Number.isFinite(t)) video.currentTime = Math.min(t, facts.video);
  };
  if (video.readyState >= 1) atEntry();
  else video.addEventListener("loadedmetadata", atEntry, { once: true });
}

function showWindow(item) {
  const job = item.job;
  const w = job.window;
  $("window").hidden = !w;
  $("rescore-error").hidden = true;
  $("timeline-pick").hidden = true;
  if (!w) {
    facts = null;
    return;
  }
  facts = windowFacts(job);
  $("window-text").textContent = windowText(facts);
  const bar = $("timeline-window");
  const left = (100 * facts.start) / facts.video;
  bar.style.left = `${left}%`;
  bar.style.width = `${Math.min(100 - left, Math.max(0.5, (100 * (facts.end - facts.start)) / facts.video))}%`;
  bar.dataset.how = w.how;
  placeMarker("timeline-entry", facts.entry ?? NaN);
  showFound(item);
  drawAxis(facts.video);
  const input = $("entry-input");
  input.max = String(facts.video);
  input.value = facts.entry === null ? "" : facts.entry.toFixed(2);
  updateHint();
  showVideo(item);
}

function timeAt(event) {
  const box = $("timeline").getBoundingClientRect();
  const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  return [fraction, fraction * facts.video];
}

function pickOnTimeline(event) {
  if (!facts) return;
  choose(timeAt(event)[1]);
}

function hoverOnTimeline(event) {
  if (!facts) return;
  const [fraction, time] = timeAt(event);
  const line = $("timeline-hover");
  const label = $("timeline-hover-label");
  line.style.left = `${100 * fraction}%`;
  label.style.left = `${100 * Math.min(0.9, Math.max(0.1, fraction))}%`; // the label stays on the card
  label.textContent = `${time.toFixed(2)} s`;
  line.hidden = false;
  label.hidden = false;
}

function leaveTimeline() {
  $("timeline-hover").hidden = true;
  $("timeline-hover-label").hidden = true;
}

// The video and the chosen time follow each other: seeking (or playing) moves the marker.
function followVideo() {
  const video = $("video");
  if (!facts || video.hidden) return;
  choose(video.currentTime, { seek: false });
}

function typedEntry() {
  const t = Number($("entry-input").value);
  if (!facts || $("entry-input").value === "" || !Number.isFinite(t)) return;
  placeMarker("timeline-pick", Math.min(Math.max(t, 0), facts.video));
  updateHint();
  const video = $("video");
  if (!video.hidden && video.readyState >= 1) video.currentTime = Math.min(Math.max(t, 0), facts.video);
}

// "entry 2.98 s", "entry found", "no dive found", "whole video": which entry a job used.
function entryLabel({ entry_s: entry, window_how: how, window_end_s: end, window_reason: reason }) {
  if (Number.isFinite(entry)) return `entry ${entry.toFixed(2)} s`;
  if (how === "detected") return Number.isFinite(end) ? `entry found at ${end.toFixed(2)} s` : "entry found";
  if (how === "whole") return windowNote({ status: "succeeded", window: { reason } }) || "whole video";
  if (how === "given" && Number.isFinite(end)) return `entry ${end.toFixed(2)} s`;
  return "";
}

function entryOf(job) {
  return { entry_s: job?.entry_s ?? null, window_how: job?.window?.how ?? null, window_end_s: job?.window?.end_s ?? null,
    window_reason: job?.window?.reason ?? null };
}

function beforeText(before) {
  if (!before) return "";
  const entry = entryLabel(before);
  return `Before: ${Number.isFinite(before.score) ? before.score.toFixed(2) : "no score"}${entry ? ` · ${entry}` : ""}`;
}

function showBefore(id, item) {
  const text = beforeText(item?.before);
  $(id).textContent = text;
  $(id).hidden = !text;
}

// The entries found in the shown video, over its timeline; one click scores one of them.
function showFound(item) {
  const entries = item.found?.entries ?? [];
  drawEntryMarks($("entry-marks"), entries, facts.video, {
    scoredAt: facts.entry,
    onPick: (entry) => rescoreAt(entry.entry_s),
  });
  $("found-key").hidden = entries.length === 0;
}

// While a rescore runs, the entries of its video stay in sight, the one being scored marked.
function showFoundWhileScoring(item) {
  const entries = item.found?.entries ?? [];
  $("scoring-entries").hidden = entries.length === 0 || !Number.isFinite(item.found.video_s);
  if ($("scoring-entries").hidden) return;
  const scoredAt = getJob(item.jobId)?.entry_s;
  drawEntryMarks($("scoring-entry-marks"), entries, item.found.video_s, { scoredAt });
}

function rescoreFromHere(event) {
  event.preventDefault();
  rescoreAt(Number($("entry-input").value));
}

// A new job from the same upload, followed like any other (in the address, among the recent).
async function rescoreAt(entry) {
  if (!shown?.jobId || items.some((i) => !i.final)) return;
  if (!Number.isFinite(entry) || entry < 0) return;
  try {
    const again = await api.rescore(shown.jobId, entry);
    // The score it replaces stays beside the new one, while it runs and after (and after a reload).
    const before = { score: shown.job.score, ...entryOf(shown.job) };
    const found = shown.found;
    rememberJob(again.job_id, { filename: shown.name, size: shown.size, before, entry_s: entry, found });
    const item = new Item({ jobId: again.job_id, entry: { filename: shown.name, size: shown.size, before, found } });
    item.video = shown.video; // shown, never uploaded again
    start([item], { several: false });
  } catch (error) {
    $("rescore-error").textContent = error.message;
    $("rescore-error").hidden = false;
    announce(error.message);
  }
}

// -- several videos: the list and the ranking ------------------------------------------------

function element(tag, className) {
  const node = document.createElement(tag);
  node.className = className;
  return node;
}

function lineOf(item) {
  if (item.line) return item.line;
  const li = element("li", "item");
  const name = element("bdi", "item__name filename");
  const bar = element("progress", "item__bar");
  bar.max = 1;
  const text = element("p", "item__text figures");
  const note = element("p", "item__note message message--warning");
  const link = element("a", "item__link");
  link.target = "_blank"; // following it here would leave the uploads
  const again = element("input", "item__again");
  again.type = "file";
  again.setAttribute("aria-label", "Choose this file again");
  again.addEventListener("change", () => {
    if (again.files?.[0]) chooseAgain(item, again.files[0]);
  });
  li.append(name, bar, text, note, link, again);
  $("batch-list").append(li);
  item.line = { li, name, bar, text, note, link, again };
  return item.line;
}

function renderLine(item) {
  const line = lineOf(item);
  const { label, fraction, note } = describe(item);
  line.li.dataset.state = item.state;
  line.name.textContent = visibleName(item.name);
  line.bar.hidden = item.final && item.state !== "succeeded";
  if (fraction === null) line.bar.removeAttribute("value");
  else line.bar.value = fraction;
  line.bar.setAttribute("aria-label", `${visibleName(item.name)}: ${label}`);
  line.text.textContent = item.problem && item.state === "following" ? "The scoring service did not answer; trying again…" : label;
  line.note.textContent = note;
  line.note.hidden = !note;
  line.link.hidden = !item.jobId;
  if (item.jobId) {
    line.link.href = `?job=${item.jobId}`;
    line.link.textContent = `job ${item.jobId}`;
  }
  line.again.hidden = item.state !== "needs-file";
}

function renderBatch() {
  if (document.body.dataset.state !== "batch") show("batch");
  $("batch-title").textContent = `${items.every((i) => i.final) ? "Scored" : "Scoring"} ${items.length} videos`;
  for (const item of items) renderLine(item);
  $("batch-cancel").hidden = items.every((i) => i.final || i.state === "needs-file");
  const done = items.every((i) => i.final);
  $("ranking").hidden = !done;
  if (done && !renderBatch.ranked) {
    renderBatch.ranked = true;
    renderRanking();
    announce(`All ${items.length} videos are done. The table ranks them by score.`);
  }
}

function rankingRows() {
  return rank(items.map((item) => ({
    file: item.name,
    job: item.job && FINAL.has(item.job.status) ? item.job
      : { job_id: item.jobId, status: item.state, error: item.message ? { code: item.errorCode, message: item.message } : null },
  })));
}

function renderRanking() {
  const rows = rankingRows();
  $("ranking-rows").replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    const place = document.createElement("td");
    place.textContent = row.rank ?? "–";
    const video = document.createElement("td");
    const name = document.createElement("bdi");
    name.textContent = visibleName(row.file);
    if (row.job_id) {
      const link = document.createElement("a");
      link.href = `?job=${row.job_id}`;
      link.append(name);
      video.append(link);
    } else {
      video.append(name);
    }
    const score = document.createElement("td");
    score.className = "figures";
    score.textContent = row.score === null ? row.status : row.score.toFixed(2);
    if (row.note) {
      const note = element("span", "ranking__note");
      note.textContent = row.note;
      score.append(note);
    }
    tr.append(place, video, score);
    return tr;
  }));
  $("ranking-untrained").hidden = !items.some((i) => i.job?.model?.calibrated === false);
}

function downloadCsv() {
  const blob = new Blob([toCsv(rankingRows())], { type: "text/csv;charset=utf-8" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "divescore-ranking.csv";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

function render(item) {
  if (batch) renderBatch();
  else if (item === items[0]) renderSingle(item);
}

// -- uploading -------------------------------------------------------------------------------

function createLimiter(limit) {
  let active = 0;
  const waiting = [];
  return async (task) => {
    if (active >= limit) await new Promise((resolve) => waiting.push(resolve));
    active += 1;
    try {
      return await task();
    } finally {
      active -= 1;
      waiting.shift()?.();
    }
  };
}

async function createJob(item) {
  const check = checkFile(item.file, config);
  if (!check.ok) {
    finish(item, "refused", check.message, "refused_by_page");
    return false;
  }
  const job = await api.createJob({ filename: item.file.name, contentType: check.contentType, size: item.file.size });
  item.jobId = job.job_id;
  rememberJob(job.job_id, {
    filename: item.file.name, size: item.file.size, last_modified: item.file.lastModified,
    content_type: check.contentType, status: job.status, expires_at: job.expires_at,
    upload: { ...job.upload, acked: {} },
  });
  updateAddress();
  item.kept = keepFile(job.job_id, item.file); // so that a reload can resume the upload
  return true;
}

async function upload(item, { resume = false } = {}) {
  item.state = "uploading";
  render(item);
  const entry = getJob(item.jobId);
  const meter = createRateMeter(item.size);
  const onProgress = (done, total) => {
    const { bytesPerSecond, secondsLeft } = meter.sample(done);
    const parts = [`${formatBytes(done)} of ${formatBytes(total)}`, formatPercent(total ? done / total : 0)];
    if (Number.isFinite(bytesPerSecond)) parts.push(`${formatBytes(bytesPerSecond)}/s`);
    if (Number.isFinite(secondsLeft) && done < total) parts.push(`${formatDuration(secondsLeft)} left`);
    item.uploaded = { done, total, text: parts.join(" · ") };
    render(item);
  };
  const acked = { ...entry.upload.acked };
  const onAck = (number, etag) => {
    acked[number] = etag;
    rememberJob(item.jobId, { upload: { ...getJob(item.jobId).upload, acked } });
  };
  const onRetry = (what, reason, online) => {
    item.uploaded = { ...item.uploaded, text: online ? `Sending ${what} again (${reason})…`
      : "The connection is lost: the upload goes on when it is back…" };
    render(item);
  };
  item.transfer = startUpload({ job_id: item.jobId, upload: entry.upload }, item.file,
    { api, onProgress, onAck, onRetry, resume });
  await item.transfer.done;
  item.transfer = null;
  item.uploadedHere = true;
  rememberJob(item.jobId, { upload: null });
  await item.kept;
  dropFile(item.jobId);
}

async function uploadWithRestarts(item, options) {
  for (let restarts = 0; ; restarts += 1) {
    try {
      return await upload(item, options);
    } catch (error) {
      // A pre-signed POST cannot be resumed: once its policy expired, a new job starts it over.
      if (!(error instanceof UploadExpired) || restarts >= 1 || !item.file) throw error;
      forgetJob(item.jobId);
      dropFile(item.jobId);
      if (!(await createJob(item))) return;
      options = {};
    }
  }
}

// -- following -------------------------------------------------------------------------------

function following() {
  return items.filter((i) => i.state === "following").length;
}

async function follow(item) {
  item.state = "following";
  render(item);
  const final = await api.followJob(item.jobId, {
    signal: item.controller.signal,
    wait: () => (following() > LONG_POLLS ? 2 : config.long_poll_seconds ?? 20),
    onChange: (job, problem) => {
      item.problem = Boolean(problem);
      if (job) item.see(job);
      render(item);
    },
  });
  if (final.status === "succeeded") finish(item, "succeeded");
  else if (final.status === "canceled") finish(item, "canceled", "The job was canceled.");
  else finish(item, "failed", final.error?.message ?? "The scoring function stopped without saying why.");
}

function finish(item, state, message = "", code = state) {
  item.state = state;
  item.message = message;
  item.errorCode = code;
  render(item);
  showRecent();
}

// -- one video, start to end -----------------------------------------------------------------

async function run(item, slots, { resume = false } = {}) {
  if (item.final) return;
  try {
    if (item.file && !item.jobId) {
      await slots(async () => {
        if (await createJob(item)) await uploadWithRestarts(item);
      });
    } else if (item.file) {
      await slots(() => uploadWithRestarts(item, { resume }));
    }
    if (item.final || item.state === "needs-file") return;
    await follow(item);
  } catch (error) {
    if (error instanceof UploadCancelled || error instanceof Stopped) {
      if (item.state !== "canceled" && items.includes(item)) {
        finish(item, "canceled", item.state === "following" ? "The page stopped following this job." : UPLOAD_CANCELLED);
      }
    } else if (error instanceof ApiError && error.status === 404 && item.state === "following") {
      finish(item, "lost", "This job does not exist, or its record has expired. Score the video again.");
    } else if (error instanceof ApiError && error.status >= 400 && error.status < 500 && !item.jobId) {
      finish(item, "refused", error.message, error.code); // refused by the API before anything was sent
    } else {
      finish(item, "failed", error.message, error.code ?? "upload_failed");
    }
  }
}

async function start(newItems, { resume = false, several = newItems.length > 1 } = {}) {
  items = newItems;
  batch = several;
  renderBatch.ranked = false;
  $("batch-list").replaceChildren();
  updateAddress();
  for (const item of items) render(item);
  const slots = createLimiter(PARALLEL_UPLOADS);
  await Promise.all(items.map((item) => run(item, slots, { resume })));
  if (!uploading()) dropStaleFiles();
}

function handleFiles(files) {
  if (items.some((i) => !i.final)) return; // one set of videos at a time
  if (!files.length) return;
  showPickError("");
  start(files.map((file) => new Item({ file })));
}

// -- resuming what the address names ---------------------------------------------------------

const JOB_ID = /^[0-9a-f]{32}$/;

async function resumeFromAddress() {
  const params = new URLSearchParams(location.search);
  // Only ids of a job's shape: the address can be anyone's link.
  const ids = (params.get("jobs") ?? params.get("job") ?? "").split(",").map((s) => s.trim())
    .filter((id) => JOB_ID.test(id));
  if (!ids.length) return false;
  const resumed = await Promise.all(ids.slice(0, 100).map(async (jobId) => {
    const entry = getJob(jobId);
    const item = new Item({ jobId, entry });
    if (entry?.status === "canceled") {
      item.state = "canceled"; // given up here: nothing more will happen to it
    } else if (entry?.upload) {
      item.file = await keptFile(jobId);
      item.video = item.file;
      if (!item.file) item.state = "needs-file";
    }
    return item;
  }));
  // ?jobs= of one job is still the list: the address says which view it is.
  start(resumed, { resume: true, several: params.has("jobs") });
  return true;
}

function chooseAgain(item, file) {
  const entry = getJob(item.jobId);
  const error = batch ? null : $("needs-file-error");
  if (!entry?.upload || file.name !== entry.filename || file.size !== entry.size) {
    const message = `This is not the same file: choose ${quote(entry?.filename ?? item.name)} `
      + `(${formatBytes(entry?.size ?? 0)}).`;
    if (error) {
      error.textContent = message;
      error.hidden = false;
    } else {
      item.line.text.textContent = message;
    }
    return;
  }
  if (error) error.hidden = true;
  item.file = file;
  item.kept = keepFile(item.jobId, file);
  item.state = "waiting";
  run(item, createLimiter(PARALLEL_UPLOADS), { resume: true });
}

// -- recent jobs -----------------------------------------------------------------------------

function showRecent() {
  const jobs = recentJobs();
  $("recent").hidden = jobs.length === 0;
  $("recent-list").replaceChildren(...jobs.map((job) => {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = `?job=${job.job_id}`;
    const name = document.createElement("bdi");
    name.className = "filename";
    name.textContent = visibleName(job.filename ?? job.job_id);
    link.append(name);
    const detail = document.createElement("span");
    detail.className = "recent__detail";
    const status = job.upload ? "upload not finished" : (job.status ?? "unknown").replace("_", " ");
    const score = Number.isFinite(job.score) ? ` · score ${job.score.toFixed(2)}` : "";
    const when = new Date(job.created_ms).toLocaleString();
    const entry = entryLabel(job);
    detail.textContent = ` ${status}${score}${entry ? ` · ${entry}` : ""} · ${when}`;
    li.dataset.jobId = job.job_id;
    li.append(link, detail);
    return li;
  }));
}

// Jobs that were still going when last seen: one read each, to show where they are now.
async function refreshRecent() {
  const open = recentJobs().filter((j) => !j.upload && !FINAL.has(j.status)).slice(0, 10);
  await Promise.all(open.map(async (entry) => {
    try {
      const job = await api.getJob(entry.job_id);
      rememberJob(entry.job_id, { status: job.status, score: job.score ?? null, expires_at: job.expires_at, ...entryOf(job) });
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) forgetJob(entry.job_id);
    }
  }));
  showRecent();
}

// -- wiring ----------------------------------------------------------------------------------

function wireDropZone(onFiles) {
  const zone = $("drop-zone");
  const setActive = (active) => zone.classList.toggle("drop-zone--active", active);
  zone.addEventListener("dragenter", (e) => { e.preventDefault(); setActive(true); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
  zone.addEventListener("dragleave", (e) => { if (!zone.contains(e.relatedTarget)) setActive(false); });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    setActive(false);
    onFiles([...(e.dataTransfer?.files ?? [])]);
  });
  // A file dropped beside the zone must not make the browser leave the page to open it.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
  $("file-input").addEventListener("change", (e) => onFiles([...(e.target.files ?? [])]));
}

async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json answered ${response.status}`);
  return response.json();
}

// Cancel what is not done: uploads stop here and their jobs are canceled on the server (the
// multipart upload aborted, a late upload ignored); a job being scored is canceled on the server
// and its follower sees it end canceled (409: it ended first, and shows how). If the API cannot
// be reached, the page stops following it.
function cancelAll() {
  for (const item of items) {
    if (item.state === "uploading" || item.state === "waiting") {
      item.transfer?.cancel();
      item.controller.abort();
      if (item.jobId) {
        rememberJob(item.jobId, { upload: null, status: "canceled" });
        dropFile(item.jobId);
        api.cancelJob(item.jobId).catch(() => {});
      }
      finish(item, "canceled", UPLOAD_CANCELLED);
    } else if (item.state === "following") {
      api.cancelJob(item.jobId).catch((error) => { if (error.status !== 409) item.controller.abort(); });
    }
  }
}

async function main() {
  try {
    config = await loadConfig();
  } catch {
    showPickError("The page could not load its settings. Reload the page; if that does not help, the server is down.");
    $("file-input").disabled = true;
    return;
  }
  api = createApi(config);
  $("limits").textContent = `${typeNames(config.content_types)} videos, up to ${formatBytes(config.max_upload_bytes)} each.`;
  wireDropZone(handleFiles);
  $("cancel").addEventListener("click", cancelAll);
  $("job-cancel").addEventListener("click", cancelAll);
  $("batch-cancel").addEventListener("click", cancelAll);
  $("again").addEventListener("click", reset);
  $("retry").addEventListener("click", reset);
  $("batch-again").addEventListener("click", reset);
  $("csv").addEventListener("click", downloadCsv);
  $("timeline").addEventListener("click", pickOnTimeline);
  $("timeline").addEventListener("pointermove", hoverOnTimeline);
  $("timeline").addEventListener("pointerleave", leaveTimeline);
  $("video").addEventListener("seeked", followVideo);
  $("video").addEventListener("timeupdate", followVideo);
  $("entry-input").addEventListener("input", typedEntry);
  $("rescore-form").addEventListener("submit", rescoreFromHere);
  $("needs-file-input").addEventListener("change", (e) => {
    if (e.target.files?.[0] && items[0]) chooseAgain(items[0], e.target.files[0]);
  });
  window.addEventListener("beforeunload", (event) => {
    if (!uploading()) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers need it set to show their warning
  });
  // Time-based notes (time left, a job later than expected) change without a new answer.
  setInterval(() => {
    for (const item of items) if (item.state === "following") render(item);
  }, 1000);

  showRecent();
  const resumed = await resumeFromAddress();
  if (!resumed) show("pick", { focus: false });
  refreshRecent();
  document.body.dataset.ready = "true";
}

main();
