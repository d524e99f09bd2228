// Numbers as people read them, and the check of a file before anything is sent.

const UNITS = ["B", "kB", "MB", "GB", "TB"]; // decimal, as the server's limit is set (200 MB = 200 000 000 B)

// Short names of the accepted content types, for messages.
const TYPE_NAMES = {
  "video/mp4": "MP4",
  "video/quicktime": "MOV",
  "video/webm": "WebM",
  "video/x-matroska": "MKV",
  "video/x-msvideo": "AVI",
  "video/mpeg": "MPEG",
};

// Browsers leave File.type empty for some containers (MKV often) or name a type the API does
// not list (Safari: .m4v as video/x-m4v; Windows: .avi as video/avi): the extension decides then.
const TYPES_BY_EXTENSION = {
  mp4: "video/mp4", m4v: "video/mp4", mov: "video/quicktime", webm: "video/webm",
  mkv: "video/x-matroska", avi: "video/x-msvideo", mpg: "video/mpeg", mpeg: "video/mpeg",
};

export function formatBytes(bytes, digits = null) {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const places = digits ?? (unit === 0 || value >= 100 ? 0 : 1);
  return `${value.toFixed(places)} ${UNITS[unit]}`;
}

// Two sizes that differ must not read the same ("200 MB; the limit is 200 MB").
export function formatBytesApart(a, b) {
  for (let digits = null; ; digits = (digits ?? 0) + 1) {
    const [x, y] = [formatBytes(a, digits), formatBytes(b, digits)];
    if (x !== y || digits >= 6) return [x, y];
  }
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.round(seconds);
  if (s < 1) return "under a second";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

export function formatPercent(fraction) {
  return `${Math.floor(Math.min(Math.max(fraction, 0), 1) * 100)}%`;
}

export function typeNames(contentTypes) {
  const names = contentTypes.map((t) => TYPE_NAMES[t] ?? t);
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : names.join("");
}

// The content type to declare: the browser's when the API accepts it, else the one the
// extension names when the API accepts that, else whatever the browser said (to be refused).
export function contentTypeOf(file, accepted = []) {
  if (file.type && accepted.includes(file.type)) return file.type;
  const extension = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
  const byExtension = TYPES_BY_EXTENSION[extension] ?? "";
  if (accepted.includes(byExtension)) return byExtension;
  return file.type || byExtension;
}

// A file name as it may be shown: control and format characters (bidirectional overrides such
// as U+202E, invisible ones such as U+200B) written out, so that no name rewrites the text around
// it or hides part of itself. Shown inside <bdi>, or isolated with quote(), as well.
export function visibleName(name) {
  return String(name).replace(/[\p{Cc}\p{Cf}]/gu,
    (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`);
}

// A name inside a sentence: visible, isolated from the text around it (FSI … PDI), in quotes.
export function quote(name) {
  return `“\u2068${visibleName(name)}\u2069”`;
}

// {ok: true, contentType} or {ok: false, message}: what the page checks before any request.
export function checkFile(file, config) {
  const contentType = contentTypeOf(file, config.content_types);
  const accepted = typeNames(config.content_types);
  if (!config.content_types.includes(contentType)) {
    const message = contentType.startsWith("video/")
      ? `This kind of video (${contentType}) is not supported. Choose an ${accepted} file.`
      : `${quote(file.name)} is not a video. Choose an ${accepted} file.`;
    return { ok: false, message };
  }
  if (file.size === 0) {
    return { ok: false, message: `${quote(file.name)} is empty. Choose another file.` };
  }
  if (file.size > config.max_upload_bytes) {
    const [size, limit] = formatBytesApart(file.size, config.max_upload_bytes);
    return { ok: false, message: `This file is ${size}; the limit is ${limit}.` };
  }
  return { ok: true, contentType };
}
