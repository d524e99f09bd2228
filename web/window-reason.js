// Why a succeeded job scored the whole video (window.reason), in the page's words. The command
// line says the same (client/window_reason.py).

export const NO_DIVE_FOUND = "no_dive_found";
export const TOO_SHORT = "too_short";

const NOTES = {
  [NO_DIVE_FOUND]: "no dive found in this video",
  [TOO_SHORT]: "whole video scored (shorter than the window)",
};

// A succeeded job whose entry search found nothing: its number is not a dive's score.
export function noDiveFound(job) {
  return job?.status === "succeeded" && job.window?.reason === NO_DIVE_FOUND;
}

// What a succeeded job's whole-video window means for its score, or "" when it scored a dive.
export function windowNote(job) {
  return job?.status === "succeeded" ? NOTES[job.window?.reason] ?? "" : "";
}
