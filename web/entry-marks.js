// Every entry into the water the function's search found in a video, as marks over its
// timeline: one button each, labelled with its time and confidence, that scores the video
// again over the window ending there.

import { formatPercent } from "./format.js";

// "Entry at 13.04 s, confidence 82%"
export function entryText({ entry_s: time, confidence }) {
  const sure = Number.isFinite(confidence) ? `, confidence ${formatPercent(confidence)}` : "";
  return `Entry at ${time.toFixed(2)}\u00a0s${sure}`;
}

// The entries of a job, for the page to keep: [] when its search found none or did not run.
export function entriesOf(job) {
  return (Array.isArray(job?.entries) ? job.entries : [])
    .filter((e) => Number.isFinite(e?.entry_s))
    .map(({ entry_s: time, confidence }) => ({ entry_s: time, confidence: Number.isFinite(confidence) ? confidence : null }));
}

// Draw `entries` into `container`, placed along a video of `videoSeconds`. The mark of the
// entry at `scoredAt` (seconds) says it is the one scored. `onPick(entry)` runs on a click (or
// Enter, Space); without it the marks are shown but do nothing (while a score is on its way).
export function drawEntryMarks(container, entries, videoSeconds, { scoredAt = null, onPick = null } = {}) {
  container.replaceChildren(...entries.map((entry) => {
    const mark = document.createElement("button");
    mark.type = "button";
    mark.className = "entry-mark";
    mark.dataset.entryS = String(entry.entry_s);
    mark.style.left = `${(100 * Math.min(Math.max(entry.entry_s, 0), videoSeconds)) / videoSeconds}%`;
    const scored = Number.isFinite(scoredAt) && Math.abs(entry.entry_s - scoredAt) < 0.005;
    if (scored) mark.setAttribute("aria-current", "true");
    const pick = scored ? null : onPick;
    const what = scored ? " (the one scored)" : pick ? ": score the dive entering here" : "";
    mark.title = `${entryText(entry)}${what}`;
    mark.setAttribute("aria-label", mark.title);
    if (pick) mark.addEventListener("click", () => pick(entry));
    else mark.setAttribute("aria-disabled", "true");
    return mark;
  }));
  container.hidden = entries.length === 0;
}
