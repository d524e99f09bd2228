// Upload a file straight to S3 as `POST /v1/jobs` instructed: a pre-signed POST, or multipart
// parts PUT a few at a time, then the API's complete call. Nothing is lost to a dropped
// connection: a failed request is retried with back-off (and, while the browser is offline,
// waits for the connection to come back without using up its attempts); a multipart upload
// remembers each acknowledged part (onAck) and, resumed after a reload, asks the API which
// parts S3 already holds and sends only the others. Part URLs that expired are signed anew.
// XMLHttpRequest rather than fetch: it reports upload progress.

import { ApiError, backoffDelays, sleep } from "./api.js";

export const PARALLEL_PARTS = 3;
const ATTEMPTS = 6;

export class UploadCancelled extends Error {
  constructor() {
    super("The upload was cancelled.");
  }
}

export class UploadFailed extends Error {}

// The pre-signed POST's policy expired (or storage refused its signature): a new job restarts it.
export class UploadExpired extends UploadFailed {}

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

// Resolves when the browser is online (at once if it is).
function online(signal) {
  if (navigator.onLine) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      window.removeEventListener("online", done);
      if (signal.aborted) reject(new UploadCancelled());
      else resolve();
    };
    window.addEventListener("online", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

async function pause(ms, signal) {
  try {
    await sleep(ms, signal);
  } catch {
    throw new UploadCancelled();
  }
}

// Runs `attempt()` until it succeeds; failures storage may recover from are retried (each
// reported to onRetry). A 403 first calls `renew()` (fresh URLs) when there is one, once.
async function withRetries(what, attempt, { setLoaded, signal, renew = null, onRetry = () => {} }) {
  const delays = backoffDelays(1, 8);
  let failure;
  let renewed = false;
  for (let number = 1; number <= ATTEMPTS;) {
    if (signal.aborted) throw new UploadCancelled();
    await online(signal);
    try {
      return await attempt();
    } catch (error) {
      setLoaded(0);
      if (!(error instanceof HttpFailure)) throw error;
      failure = error;
      if (error.status === 403 && renew && !renewed) {
        renewed = true;
        await renew();
        continue;
      }
      if (!error.retryable) break;
      onRetry(what, error.message, navigator.onLine);
      if (!navigator.onLine) continue; // wait for the connection; this attempt does not count
      number += 1;
      if (number <= ATTEMPTS) await pause(delays.next().value, signal);
    }
  }
  const message = `Uploading ${what} failed: ${failure.message}. Try again in a moment.`;
  throw failure.status === 403 ? new UploadExpired(message) : new UploadFailed(message);
}

// Starts (or, with `resume`, resumes) the upload of `job` ({job_id, upload}); returns
// {done: Promise, cancel()}. onProgress(bytesDone, bytesTotal); onAck(partNumber, etag) for
// each part S3 holds; onRetry(what, reason, online) when a request is tried again; api:
// createApi's (completeUpload, uploadParts).
export function startUpload(job, file, { api, onProgress = () => {}, onAck = () => {}, onRetry = () => {},
  parallel = PARALLEL_PARTS, resume = false }) {
  const controller = new AbortController();
  const xhrs = new Set();
  const cancel = () => {
    controller.abort();
    for (const xhr of [...xhrs]) xhr.abort();
  };
  const context = { job, file, api, xhrs, signal: controller.signal, onProgress, onAck, onRetry, parallel, resume };
  const instructions = job.upload;
  let done;
  if (instructions.method === "POST") {
    done = postFile(instructions, context);
  } else if (instructions.method === "MULTIPART") {
    done = putParts(context).then((parts) => parts && complete(context, parts));
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

function postFile(instructions, { file, xhrs, signal, onProgress, onRetry }) {
  const setLoaded = (n) => onProgress(Math.min(n, file.size), file.size);
  return withRetries("the video", () => {
    const form = new FormData();
    // S3 reads the fields in order and needs the file last.
    for (const [name, value] of Object.entries(instructions.fields)) form.append(name, value);
    form.append("file", file);
    return send("POST", instructions.url, form, { onProgress: setLoaded, xhrs });
  }, { setLoaded, signal, onRetry });
}

// PUTs the parts S3 does not hold yet; resolves with every part's {part_number, etag}, or null
// when the upload turned out to be complete already (a reload after the complete call).
async function putParts({ job, file, api, xhrs, signal, onProgress, onAck, onRetry, parallel, resume }) {
  const instructions = job.upload;
  const partSize = instructions.part_size;
  const count = Math.ceil(file.size / partSize);
  const sizeOf = (n) => Math.min(partSize, file.size - (n - 1) * partSize);
  const urls = new Map(instructions.parts.map((p) => [p.part_number, p.url]));
  let acked = new Map(Object.entries(instructions.acked ?? {}).map(([n, etag]) => [Number(n), etag]));

  async function listParts() {
    try {
      return await api.uploadParts(job.job_id, signal);
    } catch (error) {
      if (error instanceof ApiError && error.code === "upload_not_pending") return null;
      throw error;
    }
  }

  if (resume) {
    // S3 is the truth: what it holds is done (even a part whose answer the reload cut off).
    const listing = await listParts();
    if (!listing) return null;
    acked = new Map(listing.uploaded.map((p) => [p.part_number, p.etag]));
    for (const part of listing.missing) urls.set(part.part_number, part.url);
    for (const [number, etag] of acked) onAck(number, etag);
  }

  let renewing = null;
  const renew = () => {
    renewing ??= listParts().then((listing) => {
      for (const part of listing?.missing ?? []) urls.set(part.part_number, part.url);
    }).finally(() => { renewing = null; });
    return renewing;
  };

  const loaded = new Map([...acked.keys()].map((n) => [n, sizeOf(n)])); // part number → bytes sent
  const report = () => onProgress([...loaded.values()].reduce((a, b) => a + b, 0), file.size);
  report();
  const queue = Array.from({ length: count }, (_, i) => i + 1).filter((n) => !acked.has(n));

  async function putPart(number) {
    const start = (number - 1) * partSize;
    const blob = file.slice(start, start + sizeOf(number));
    const setLoaded = (n) => {
      loaded.set(number, Math.min(n, blob.size));
      report();
    };
    const xhr = await withRetries(`part ${number}`,
      () => send("PUT", urls.get(number), blob, { onProgress: setLoaded, xhrs }), { setLoaded, signal, renew, onRetry });
    setLoaded(blob.size);
    const etag = xhr.getResponseHeader("ETag");
    if (!etag) throw new UploadFailed("Storage did not show the part's ETag (its CORS rules must expose it).");
    acked.set(number, etag);
    onAck(number, etag);
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
  return [...acked].sort(([a], [b]) => a - b).map(([part_number, etag]) => ({ part_number, etag }));
}

// The complete call, retried while the API cannot be reached; a completion whose answer was
// lost reads as upload_not_pending the second time: the upload is done.
async function complete({ job, api, signal }, parts) {
  const delays = backoffDelays(1, 8);
  for (let number = 1; ; number += 1) {
    try {
      return await api.completeUpload(job.upload.complete_url, parts);
    } catch (error) {
      if (error instanceof ApiError && error.code === "upload_not_pending" && number > 1) return null;
      if (!(error instanceof ApiError) || !error.retryable || number >= ATTEMPTS) throw error;
      await pause(delays.next().value, signal);
    }
  }
}
