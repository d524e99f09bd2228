// What this browser remembers, so that a reload or a dropped connection loses nothing:
// the jobs it created (localStorage: name, status, score, and an unfinished upload's
// instructions and acknowledged parts) and the files still being uploaded (IndexedDB, which
// can hold a File; removed as soon as the upload is done).

const KEY = "divescore.jobs.v1";
const KEEP = 50; // jobs listed under "recent"

function readAll() {
  try {
    const value = JSON.parse(localStorage.getItem(KEY) ?? "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

function writeAll(jobs) {
  const kept = Object.values(jobs).sort((a, b) => (b.created_ms ?? 0) - (a.created_ms ?? 0)).slice(0, KEEP);
  try {
    localStorage.setItem(KEY, JSON.stringify(Object.fromEntries(kept.map((j) => [j.job_id, j]))));
  } catch {
    // Storage full or disabled: the page still works, it only forgets on reload.
  }
}

export function getJob(jobId) {
  return readAll()[jobId] ?? null;
}

// Merge `patch` into the job's entry (created if new).
export function rememberJob(jobId, patch) {
  const jobs = readAll();
  jobs[jobId] = { job_id: jobId, created_ms: Date.now(), ...jobs[jobId], ...patch };
  writeAll(jobs);
  return jobs[jobId];
}

export function forgetJob(jobId) {
  const jobs = readAll();
  delete jobs[jobId];
  writeAll(jobs);
}

// This browser's jobs, newest first, without those whose record has expired on the server.
export function recentJobs(now = Date.now()) {
  const jobs = readAll();
  const live = Object.values(jobs).filter((j) => !j.expires_at || j.expires_at * 1000 > now);
  if (live.length !== Object.keys(jobs).length) writeAll(Object.fromEntries(live.map((j) => [j.job_id, j])));
  return live.sort((a, b) => (b.created_ms ?? 0) - (a.created_ms ?? 0));
}

// -- files being uploaded (IndexedDB) ----------------------------------------------------------

let database = null;

function open() {
  database ??= new Promise((resolve, reject) => {
    const request = indexedDB.open("divescore", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("files");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  return database;
}

async function transact(mode, action) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("files", mode);
    const request = action(tx.objectStore("files"));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}

// Keep the file until its upload is done; false when the browser refuses (quota, private mode).
export async function keepFile(jobId, file) {
  try {
    await transact("readwrite", (store) => store.put(file, jobId));
    return true;
  } catch {
    return false;
  }
}

export async function keptFile(jobId) {
  try {
    return (await transact("readonly", (store) => store.get(jobId))) ?? null;
  } catch {
    return null;
  }
}

export async function dropFile(jobId) {
  try {
    await transact("readwrite", (store) => store.delete(jobId));
  } catch {
    // Nothing to do: a file left behind is removed with the next finished upload's cleanup.
  }
}

// Files of jobs this browser no longer follows (finished, or forgotten).
export async function dropStaleFiles() {
  try {
    const keys = await transact("readonly", (store) => store.getAllKeys());
    const jobs = readAll();
    await Promise.all(keys.filter((k) => !jobs[k]?.upload).map(dropFile));
  } catch {
    // As above.
  }
}
