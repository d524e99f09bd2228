// Upload a file straight to S3 as `POST /v1/jobs` instructed: a pre-signed POST, or multipart
// parts PUT a few at a time, each retried with back-off, then the API's complete call.
// XMLHttpRequest rather than fetch: it reports upload progress.

import { backoffDelays, sleep } from "./api.js";

export const PARALLEL_PARTS = 3;
const ATTEMPTS = 4;

export class UploadCancelled extends Error {
  constructor() {
    super("The upload was cancelled.");
  }
}

export class UploadFailed extends Error {}

class HttpFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }

  get retryable() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

// One request; resolves with the XHR on 2xx. `xhrs` tracks live requests so cancel can abort them.
function send(method, url, body, { onProgress, xhrs }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhrs.add(xhr);
    xhr.open(method, url);
    xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded));
    xhr.addEventListener("load", () => {
      xhrs.delete(xhr);
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr);
      else reject(new HttpFailure(xhr.status, `storage answered ${xhr.status}: ${s3Message(xhr.responseText)}`));
    });
    xhr.addEventListener("error", () => {
      xhrs.delete(xhr);
      reject(new HttpFailure(0, "storage could not be reached"));
    });
    xhr.addEventListener("abort", () => {
      xhrs.delete(xhr);
      reject(new UploadCancelled());
    });
    xhr.send(body);
  });
}

function s3Message(text) {
  const message = new DOMParser().parseFromString(text || "<x/>", "application/xml").querySelector("Message");
  return message?.textContent?.trim() || "no reason given";
}

// Runs `attempt(reportLoaded)` until it succeeds; failures storage may recover from are retried.
async function withRetries(what, attempt, { setLoaded, signal }) {
  const delays = backoffDelays(1, 8);
  let failure;
  for (let number = 1; number <= ATTEMPTS; number += 1) {
    if (signal.aborted) throw new UploadCancelled();
    try {
      return await attempt();
    } catch (error) {
      setLoaded(0);
      if (!(error instanceof HttpFailure)) throw error;
      failure = error;
      if (!error.retryable) break;
      if (number < ATTEMPTS) {
        try {
          await sleep(delays.next().value, signal);
        } catch {
          throw new UploadCancelled();
        }
      }
    }
  }
  throw new UploadFailed(`Uploading ${what} failed: ${failure.message}. Try again in a moment.`);
}

// Starts the upload; returns {done: Promise, cancel()}. onProgress(bytesDone, bytesTotal).
export function startUpload(job, file, { completeUpload, onProgress = () => {}, parallel = PARALLEL_PARTS }) {
  const controller = new AbortController();
  const xhrs = new Set();
  const cancel = () => {
    controller.abort();
    for (const xhr of [...xhrs]) xhr.abort();
  };
  const context = { file, xhrs, signal: controller.signal, onProgress };
  const instructions = job.upload;
  let done;
  if (instructions.method === "POST") {
    done = postFile(instructions, context);
  } else if (instructions.method === "MULTIPART") {
    done = putParts(instructions, context, parallel).then((parts) => completeUpload(instructions.complete_url, parts));
  } else {
    done = Promise.reject(new UploadFailed(`Unknown upload method ${instructions.method}; reload the page.`));
  }
  return {
    done: done.catch((error) => {
      const cancelled = controller.signal.aborted;
      cancel(); // whatever went wrong, nothing keeps uploading
      throw cancelled ? new UploadCancelled() : error;
    }),
    cancel,
  };
}

function postFile(instructions, { file, xhrs, signal, onProgress }) {
  const setLoaded = (n) => onProgress(Math.min(n, file.size), file.size);
  return withRetries("the video", () => {
    const form = new FormData();
    // S3 reads the fields in order and needs the file last.
    for (const [name, value] of Object.entries(instructions.fields)) form.append(name, value);
    form.append("file", file);
    return send("POST", instructions.url, form, { onProgress: setLoaded, xhrs });
  }, { setLoaded, signal });
}

async function putParts(instructions, { file, xhrs, signal, onProgress }, parallel) {
  const loaded = new Map(); // part number → bytes sent
  const report = () => onProgress([...loaded.values()].reduce((a, b) => a + b, 0), file.size);
  const queue = [...instructions.parts];
  const results = [];

  async function putPart(part) {
    const start = (part.part_number - 1) * instructions.part_size;
    const blob = file.slice(start, Math.min(start + instructions.part_size, file.size));
    const setLoaded = (n) => {
      loaded.set(part.part_number, Math.min(n, blob.size));
      report();
    };
    const xhr = await withRetries(`part ${part.part_number}`,
      () => send("PUT", part.url, blob, { onProgress: setLoaded, xhrs }), { setLoaded, signal });
    setLoaded(blob.size);
    const etag = xhr.getResponseHeader("ETag");
    if (!etag) throw new UploadFailed("Storage did not show the part's ETag (its CORS rules must expose it).");
    results.push({ part_number: part.part_number, etag });
  }

  async function worker() {
    while (queue.length && !signal.aborted) await putPart(queue.shift());
  }

  const workers = Array.from({ length: Math.min(parallel, queue.length) }, worker);
  await Promise.all(workers.map((w) => w.catch((error) => {
    // The first part that fails for good stops the others.
    for (const xhr of [...xhrs]) xhr.abort();
    throw error;
  })));
  if (signal.aborted) throw new UploadCancelled();
  return results.sort((a, b) => a.part_number - b.part_number);
}
