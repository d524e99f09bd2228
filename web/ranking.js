// The competition view: videos ranked by score, and the same as CSV. The command line writes
// the same columns and numbers (client/ranking.py).

import { noDiveFound, windowNote } from "./window-reason.js";

export const CSV_COLUMNS = [
  "rank", "file", "score", "status", "job_id", "error_code", "error_message", "model", "calibrated", "window", "note",
];

// "name, weights, dtype" of the model that scored (scores compare when these match).
function modelCell(model) {
  return model ? ["name", "weights", "dtype"].map((key) => String(model[key] ?? "")).join(", ") : "";
}

// "how start-end", the seconds as the API gives them ("given 15.92-20").
function windowCell(w) {
  return w ? `${w.how ?? ""} ${String(w.start_s)}-${String(w.end_s)}` : "";
}

// [{file, job}] → rows ranked by score, highest first; equal scores share a rank (1, 2, 2, 4).
// Videos in which no dive was found follow unranked (their number is not a dive's score), then
// videos without a score, each in the order given, with rank null.
export function rank(entries) {
  const dives = [];
  const noDive = [];
  const unscored = [];
  for (const { file, job } of entries) {
    const row = {
      file,
      score: job.status === "succeeded" && Number.isFinite(job.score) ? job.score : null,
      status: job.status ?? "unknown",
      job_id: job.job_id ?? null,
      error_code: job.error?.code ?? "",
      error_message: job.error?.message ?? "",
      model: modelCell(job.model),
      calibrated: typeof job.model?.calibrated === "boolean" ? String(job.model.calibrated) : "",
      window: windowCell(job.window),
      note: windowNote(job),
    };
    (row.score === null ? unscored : noDiveFound(job) ? noDive : dives).push(row);
  }
  dives.sort((a, b) => b.score - a.score);
  let place = 0;
  dives.forEach((row, index) => {
    if (index === 0 || row.score !== dives[index - 1].score) place = index + 1;
    row.rank = place;
  });
  return [...dives, ...[...noDive, ...unscored].map((row) => ({ ...row, rank: null }))];
}

// Quoted when it holds a quote, a line break, or either separator spreadsheets use (",", ";").
function csvField(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",;\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

// A spreadsheet runs a cell that starts with one of these as a formula: a file named
// "=HYPERLINK(...)" must stay text, and so must every other text cell (a job id or an error
// can come from a crafted address). The numbers are not touched (a score may be negative).
const FORMULA_START = /^[=+\-@\t\r]/;
const NUMBER_COLUMNS = new Set(["rank", "score"]);
export function neutralized(text) {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

// The score as the API's number, in its shortest exact form (String(71.38) is "71.38").
export function toCsv(rows) {
  const cell = (row, column) =>
    NUMBER_COLUMNS.has(column) || row[column] === null || row[column] === undefined
      ? row[column] : neutralized(String(row[column]));
  const lines = [CSV_COLUMNS, ...rows.map((row) => CSV_COLUMNS.map((column) => cell(row, column)))];
  return lines.map((line) => line.map(csvField).join(",")).join("\n") + "\n";
}
