// A small bar chart of the per-clip scores, as inline SVG, with the video's score as a line.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 320;
const HEIGHT = 160;
const PAD = { top: 10, right: 44, bottom: 22, left: 38 };  // the right margin holds the video's score

function element(name, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

// A round step for the axis: 1, 2 or 5 times a power of ten.
function niceStep(span) {
  const raw = span / 4;
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

export function clipChart(scores, overall) {
  const values = [...scores, overall].filter(Number.isFinite);
  const step = niceStep(Math.max(...values, 0) - Math.min(...values, 0));
  const low = Math.floor(Math.min(...values, 0) / step) * step;
  const high = Math.max(Math.ceil(Math.max(...values, 0) / step) * step, low + step);
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const y = (v) => PAD.top + (high - v) / (high - low) * plotHeight;

  const svg = element("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": "chart-title chart-desc", class: "chart",
  });
  svg.append(
    element("title", { id: "chart-title" }, "Score of each clip"),
    element("desc", { id: "chart-desc" },
      scores.map((s, i) => `clip ${i + 1}: ${s.toFixed(2)}`).join(", ") + `; video: ${overall.toFixed(2)}`),
  );

  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  for (let v = low; v <= high + step / 2; v += step) {
    svg.append(
      element("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v), class: "chart__grid" }),
      element("text", { x: PAD.left - 4, y: y(v) + 3, class: "chart__axis", "text-anchor": "end" }, v.toFixed(decimals)),
    );
  }

  const slot = plotWidth / scores.length;
  const barWidth = Math.max(2, Math.min(36, slot * 0.7));
  scores.forEach((score, i) => {
    const x = PAD.left + slot * i + (slot - barWidth) / 2;
    const top = Math.min(y(score), y(0));
    const bar = element("rect", {
      x, y: top, width: barWidth, height: Math.max(1, Math.abs(y(score) - y(0))), class: "chart__bar",
    });
    bar.append(element("title", {}, `Clip ${i + 1}: ${score.toFixed(2)}`));
    svg.append(bar);
    if (scores.length <= 12) {
      svg.append(element("text", { x: x + barWidth / 2, y: HEIGHT - 6, class: "chart__axis", "text-anchor": "middle" },
        String(i + 1)));
    }
  });

  if (Number.isFinite(overall)) {
    svg.append(
      element("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(overall), y2: y(overall), class: "chart__overall" }),
      element("text", { x: WIDTH - PAD.right + 4, y: y(overall) + 4, class: "chart__label", "text-anchor": "start" },
        overall.toFixed(2)),
    );
  }
  return svg;
}
