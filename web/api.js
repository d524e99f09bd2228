// The HTTP API v1 (docs/api.md): create a job, list and complete a multipart upload's parts,
// cancel, read and follow a job, rescore it.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status; // 0 when the API could not be reached
    this.code = code;
  }

  get retryable() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export class Stopped extends Error {}

const FINAL = new Set(["succeeded", "failed", "canceled"]);

// Exponential back-off with jitter: about 0.5 s, 1 s, 2 s, ... up to `cap` seconds.
export function* backoffDelays(first = 0.5, cap = 15) {
  for (let delay = first; ; delay = Math.min(delay * 2, cap)) {
    yield (delay / 2 + Math.random() * delay / 2) * 1000;
  }
}

export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new Stopped("stopped"));
    }, { once: true });
  });
}

async function request(url, options = {}) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store", ...options });
  } catch (error) {
    if (options.signal?.aborted) throw new Stopped("stopped");
    throw new ApiError(0, "unreachable", "The scoring service could not be reached. Check your connection and try again.");
  }
  if (response.status === 304) return { response, body: null };
  let body = null;
  try {
    body = await response.json();
  } catch {
    // An answer without JSON is reported below by its status.
  }
  if (!response.ok) {
    const error = body?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? `The scoring service answered ${response.status}. Try again in a moment.`,
    );
  }
  return { response, body };
}

export function createApi(config) {
  const presign = config.presign_api_url;
  const score = config.score_api_url;

  async function postJson(url, payload) {
    const { body } = await request(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    return body;
  }

  return {
    createJob: ({ filename, contentType, size }) =>
      postJson(`${presign}/v1/jobs`, { filename, content_type: contentType, size }),

    // "Score from here": a new job for the same upload, scored over the window ending at entryS.
    rescore: (jobId, entryS) =>
      postJson(`${presign}/v1/jobs/${encodeURIComponent(jobId)}/rescore`, { entry_s: entryS }),

    completeUpload: (completeUrl, parts) =>
      postJson(new URL(completeUrl, `${presign}/`).href, { parts }),

    cancelJob: (jobId) => postJson(`${presign}/v1/jobs/${encodeURIComponent(jobId)}/cancel`, {}),

    // The parts S3 holds for the job's open multipart upload, and fresh URLs for the missing ones.
    uploadParts: async (jobId, signal) =>
      (await request(`${presign}/v1/jobs/${encodeURIComponent(jobId)}/upload/parts`, { signal })).body,

    getJob: async (jobId, signal) =>
      (await request(`${score}/v1/jobs/${encodeURIComponent(jobId)}?wait=0`, { signal })).body,

    // Long-polls the job until it succeeds or fails, calling onChange with each new version.
    // Errors the service may recover from are retried with back-off; an unknown job is final.
    async followJob(jobId, { onChange = () => {}, signal, wait = () => config.long_poll_seconds ?? 20 } = {}) {
      let etag = null;
      let delays = backoffDelays();
      for (;;) {
        if (signal?.aborted) throw new Stopped("stopped");
        try {
          // Without an ETag the service would hold even a finished job: the first read is at once.
          const url = `${score}/v1/jobs/${encodeURIComponent(jobId)}?wait=${etag ? wait() : 0}`;
          const headers = etag ? { "If-None-Match": etag } : {};
          const { response, body } = await request(url, { headers, signal });
          delays = backoffDelays();
          if (body) {
            etag = response.headers.get("ETag");
            onChange(body);
            if (FINAL.has(body.status)) return body;
            // Without an ETag (not exposed by CORS) the service cannot hold the request: pace the polls.
            if (!etag) await sleep(1000, signal);
          }
        } catch (error) {
          if (!(error instanceof ApiError) || !error.retryable) throw error;
          onChange(null, error);
          await sleep(delays.next().value, signal);
        }
      }
    },
  };
}
