// The page: pick or drop a video, check it, upload it straight to storage, follow the job,
// show the score. Where the APIs are and the upload limits come from /config.json.

import { ApiError, Stopped, createApi } from "./api.js";
import { clipChart } from "./chart.js";
import { checkFile, formatBytes, formatDuration, formatPercent, typeNames } from "./format.js";
import { createRateMeter } from "./meter.js";
import { UploadCancelled, startUpload } from "./upload.js";

const $ = (id) => document.getElementById(id);
const PANELS = ["pick", "uploading", "scoring", "result", "failure"];

const STAGES = {
  awaiting_upload: "Waiting for the upload to register…",
  queued: "Waiting in the queue…",
  downloading: "Fetching the video",
  decoding: "Reading the frames",
  scoring: "Running the model",
};

let current = null; // {cancel()} of the upload or job being followed

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

function fail(message) {
  $("failure-message").textContent = message;
  show("failure");
  announce(`The video could not be scored: ${message}`);
}

function reset() {
  current = null;
  $("file-input").value = "";
  showPickError("");
  show("pick");
  announce("Choose a video.");
}

// -- uploading -------------------------------------------------------------------------------

function uploadProgress(file) {
  const meter = createRateMeter(file.size);
  return (done, total) => {
    const bar = $("upload-bar");
    bar.value = total ? done / total : 0;
    const { bytesPerSecond, secondsLeft } = meter.sample(done);
    const parts = [`${formatBytes(done)} of ${formatBytes(total)}`, formatPercent(total ? done / total : 0)];
    if (Number.isFinite(bytesPerSecond)) parts.push(`${formatBytes(bytesPerSecond)}/s`);
    if (Number.isFinite(secondsLeft) && done < total) parts.push(`${formatDuration(secondsLeft)} left`);
    $("upload-text").textContent = parts.join(" · ");
  };
}

async function upload(api, file, contentType) {
  $("upload-name").textContent = file.name;
  $("upload-bar").value = 0;
  $("upload-text").textContent = `0 B of ${formatBytes(file.size)} · 0%`;
  show("uploading");
  announce(`Uploading ${file.name}.`);

  let cancelled = false;
  current = { cancel: () => { cancelled = true; } };
  const job = await api.createJob({ filename: file.name, contentType, size: file.size });
  if (cancelled) throw new UploadCancelled();
  const progress = uploadProgress(file);
  const transfer = startUpload(job, file, { completeUpload: api.completeUpload, onProgress: progress });
  current = transfer;
  try {
    await transfer.done;
  } catch (error) {
    // The job goes too: its multipart upload is aborted, and a late upload is ignored.
    if (error instanceof UploadCancelled) api.cancelJob(job.job_id).catch(() => {});
    throw error;
  }
  progress(file.size, file.size);
  return job;
}

// -- scoring ---------------------------------------------------------------------------------

function showJob(job, problem) {
  const bar = $("job-bar");
  if (problem) {
    $("stage-text").textContent = "The scoring service did not answer; trying again…";
    return;
  }
  let label = STAGES[job.stage] ?? STAGES[job.status] ?? job.status;
  if (job.status === "queued" && job.retry) {
    const at = new Date(job.retry.at).toLocaleTimeString();
    label = `${job.retry.error?.message ?? "An attempt failed."} Attempt ${job.retry.attempt} of ${job.retry.of} at ${at}…`;
  } else if (job.attempt?.number > 1) {
    label = `${label} (attempt ${job.attempt.number} of ${job.attempt.of})`;
  }
  if (job.status === "processing" && typeof job.progress === "number") {
    bar.value = job.progress;
    $("stage-text").textContent = `${label} · ${formatPercent(job.progress)}`;
  } else {
    bar.removeAttribute("value"); // indeterminate until the function reports progress
    $("stage-text").textContent = label;
  }
  const phase = `${job.status}/${job.stage ?? ""}`;
  if (phase !== showJob.lastPhase) {
    showJob.lastPhase = phase;
    announce(label.replace(/…$/, "."));
  }
}

async function score(api, job, file) {
  $("scoring-name").textContent = file.name;
  showJob({ status: "queued" });
  show("scoring");
  const controller = new AbortController();
  current = {
    // Cancel on the server; the job followed then ends canceled (409: it ended first, and shows how).
    // If the API cannot be reached, stop following.
    cancel: () => api.cancelJob(job.job_id).catch((error) => { if (error.status !== 409) controller.abort(); }),
  };
  return api.followJob(job.job_id, { onChange: showJob, signal: controller.signal });
}

// -- the result ------------------------------------------------------------------------------

function showResult(job, file) {
  shown = { job, file };
  $("result-name").textContent = file.name;
  $("score").textContent = job.score.toFixed(2);

  const model = job.model ?? {};
  $("model-line").textContent = `Model: ${model.name ?? "unknown"}${model.weights ? `, weights ${model.weights}` : ""}.`;
  $("untrained-note").hidden = model.calibrated !== false;

  const clips = (job.clip_scores ?? []).filter(Number.isFinite);
  $("chart").replaceChildren(...(clips.length ? [clipChart(clips, job.score)] : []));
  $("chart-figure").hidden = clips.length === 0;

  const filmstrip = $("filmstrip");
  $("filmstrip-figure").hidden = !job.filmstrip_url;
  if (job.filmstrip_url) {
    filmstrip.alt = `${job.frames?.length ?? "Sampled"} frames of ${file.name}, in order.`;
    filmstrip.src = job.filmstrip_url;
  } else {
    filmstrip.removeAttribute("src");
  }

  showWindow(job);
  show("result");
  const note = model.calibrated === false ? " The model's weights are untrained, so this is not a real judgement." : "";
  announce(`Score ${job.score.toFixed(2)}.${note}`);
}

// -- the window: what was scored, and "score from here" -------------------------------------

const HOW = {
  detected: (w) => `The model scored ${span(w)}, ending where the diver was found entering the water`
    + ` (confidence ${formatPercent(w.confidence ?? 0)}).`,
  given: (w) => `The model scored ${span(w)}, ending at the entry you gave.`,
  whole: () => "No entry into the water was found: the model scored six clips spread over the whole video.",
};

function span(w) {
  return `${w.start_s.toFixed(2)}–${w.end_s.toFixed(2)} s`;
}

let shown = null; // {job, file} of the result on the page

function showWindow(job) {
  const w = job.window;
  $("window").hidden = !w;
  $("rescore-error").hidden = true;
  $("timeline-pick").hidden = true;
  if (!w) return;
  $("window-text").textContent = (HOW[w.how] ?? HOW.whole)(w);
  const whole = w.video_s || w.end_s || 1;
  const bar = $("timeline-window");
  bar.style.left = `${(100 * w.start_s) / whole}%`;
  bar.style.width = `${Math.max(0.5, (100 * (w.end_s - w.start_s)) / whole)}%`;
  bar.dataset.how = w.how;
  const input = $("entry-input");
  input.max = String(whole);
  input.value = w.how === "whole" ? "" : w.end_s.toFixed(2);
}

function pickOnTimeline(event) {
  const w = shown?.job.window;
  if (!w) return;
  const box = $("timeline").getBoundingClientRect();
  const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  const seconds = fraction * (w.video_s || w.end_s);
  $("entry-input").value = seconds.toFixed(2);
  const pick = $("timeline-pick");
  pick.style.left = `${100 * fraction}%`;
  pick.hidden = false;
}

async function rescoreFromHere(api, event) {
  event.preventDefault();
  if (current || !shown) return;
  const entry = Number($("entry-input").value);
  if (!Number.isFinite(entry) || entry < 0) return;
  const { job, file } = shown;
  try {
    const again = await api.rescore(job.job_id, entry);
    const final = await score(api, again, file);
    if (final.status === "succeeded") showResult(final, file);
    else fail(final.error?.message ?? "The scoring function stopped without saying why.");
  } catch (error) {
    if (error instanceof Stopped) {
      showResult(job, file);
    } else if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
      show("result");
      $("rescore-error").textContent = error.message;
      $("rescore-error").hidden = false;
      announce(error.message);
    } else {
      fail(error.message);
    }
  } finally {
    current = null;
  }
}

// -- one file, start to end ------------------------------------------------------------------

async function handleFile(api, config, file) {
  if (current) return; // one video at a time
  const check = checkFile(file, config);
  if (!check.ok) {
    showPickError(check.message);
    announce(check.message);
    return;
  }
  showPickError("");
  try {
    const job = await upload(api, file, check.contentType);
    const final = await score(api, job, file);
    if (final.status === "succeeded") showResult(final, file);
    else if (final.status === "canceled") {
      reset();
      showPickNote("The job was canceled.");
      announce("Job canceled. Choose a video.");
    } else fail(final.error?.message ?? "The scoring function stopped without saying why.");
  } catch (error) {
    if (error instanceof UploadCancelled || error instanceof Stopped) {
      reset();
      showPickNote("The upload was cancelled.");
      announce("Upload cancelled. Choose a video.");
    } else if (error instanceof ApiError && error.status >= 400 && error.status < 500 && !$("uploading").hidden) {
      // Refused by the API before anything was sent (type, size, name): back to the picker.
      current = null;
      show("pick");
      showPickError(error.message);
      announce(error.message);
    } else {
      fail(error.message);
    }
  } finally {
    current = null;
  }
}

// -- wiring ----------------------------------------------------------------------------------

function wireDropZone(onFile) {
  const zone = $("drop-zone");
  const setActive = (active) => zone.classList.toggle("drop-zone--active", active);
  zone.addEventListener("dragenter", (e) => { e.preventDefault(); setActive(true); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
  zone.addEventListener("dragleave", (e) => { if (!zone.contains(e.relatedTarget)) setActive(false); });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    setActive(false);
    const file = e.dataTransfer?.files?.[0];
    if (file) onFile(file);
  });
  // A file dropped beside the zone must not make the browser leave the page to open it.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
  $("file-input").addEventListener("change", (e) => {
    const file = e.target.files?.[0];
    if (file) onFile(file);
  });
}

async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json answered ${response.status}`);
  return response.json();
}

async function main() {
  let config;
  try {
    config = await loadConfig();
  } catch {
    showPickError("The page could not load its settings. Reload the page; if that does not help, the server is down.");
    $("file-input").disabled = true;
    return;
  }
  const api = createApi(config);
  $("limits").textContent = `${typeNames(config.content_types)} video, up to ${formatBytes(config.max_upload_bytes)}.`;
  wireDropZone((file) => handleFile(api, config, file));
  $("cancel").addEventListener("click", () => current?.cancel());
  $("job-cancel").addEventListener("click", () => current?.cancel());
  $("again").addEventListener("click", reset);
  $("timeline").addEventListener("click", pickOnTimeline);
  $("rescore-form").addEventListener("submit", (event) => rescoreFromHere(api, event));
  $("retry").addEventListener("click", reset);
  show("pick", { focus: false });
  document.body.dataset.ready = "true";
}

main();
