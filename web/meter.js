// Upload speed over the last few seconds, and the time left at that speed.

const WINDOW_MS = 5000;

export function createRateMeter(total, now = () => performance.now()) {
  const samples = []; // [time ms, bytes done]
  return {
    // Record the bytes done so far; returns {bytesPerSecond, secondsLeft} (NaN until known).
    sample(done) {
      const t = now();
      samples.push([t, done]);
      while (samples.length > 2 && t - samples[0][0] > WINDOW_MS) samples.shift();
      const [t0, d0] = samples[0];
      const elapsed = (t - t0) / 1000;
      if (elapsed < 0.5 || done <= d0) return { bytesPerSecond: NaN, secondsLeft: NaN };
      const bytesPerSecond = (done - d0) / elapsed;
      return { bytesPerSecond, secondsLeft: (total - done) / bytesPerSecond };
    },
  };
}
