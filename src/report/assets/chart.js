"use strict";
// chart.js: the primitives every view draws with. Canvas rather than SVG because a
// 10,000-trial study is tens of thousands of marks, which a canvas redraws in milliseconds
// where the DOM would hold one element each. Scales (linear, log, categorical) with
// ticks, a colour map with its legend, and a frame that finds the mark under the pointer
// and shows its trial in the one tooltip of the page.
const PS = {};

/** A number as a label: short, exponent form when tiny or huge. */
PS.fmt = function (v) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e15) return String(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return String(+v.toPrecision(4));
};

/** A scale from a domain onto pixels `[r0, r1]`: `kind` linear, log or cat (`domain`
 *  then the list of values, each at the middle of its band). */
PS.scale = function (kind, domain, r0, r1) {
  const s = { kind: kind, r0: r0, r1: r1 };
  if (kind === "cat") {
    const keys = domain.map(String);
    const n = Math.max(keys.length, 1);
    s.values = domain;
    s.map = (v) => r0 + ((keys.indexOf(String(v)) + 0.5) / n) * (r1 - r0);
    s.pos = (i) => r0 + ((i + 0.5) / n) * (r1 - r0);
    s.invert = (px) => ((px - r0) / (r1 - r0)) * n - 0.5; // fractional index
    s.ticks = () => domain.map((v, i) => ({ px: s.pos(i), label: String(v) }));
    return s;
  }
  let [lo, hi] = domain;
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) [lo, hi] = [0, 1];
  if (kind === "log" && !(lo > 0 && hi > 0)) kind = s.kind = "linear";
  if (lo === hi) {
    const d = kind === "log" ? lo * 0.5 : Math.abs(lo) * 0.1 || 1;
    [lo, hi] = [lo - d, hi + d];
  }
  const f = kind === "log" ? Math.log10 : (x) => x;
  const g = kind === "log" ? (x) => Math.pow(10, x) : (x) => x;
  const [a, b] = [f(lo), f(hi)];
  s.domain = [lo, hi];
  s.map = (v) => r0 + ((f(v) - a) / (b - a)) * (r1 - r0);
  s.invert = (px) => g(a + ((px - r0) / (r1 - r0)) * (b - a));
  s.ticks = () => {
    const out = [];
    if (kind === "log") {
      const decades = b - a;
      const mult = decades < 1.5 ? [1, 2, 5] : decades < 6 ? [1] : null;
      for (let e = Math.floor(a); e <= Math.ceil(b); e++) {
        for (const m of mult || [1]) {
          const v = m * Math.pow(10, e);
          if (!mult && e % Math.ceil(decades / 6) !== 0) continue;
          if (f(v) >= a - 1e-9 && f(v) <= b + 1e-9) out.push(v);
        }
      }
    } else {
      const [tl, th] = lo < hi ? [lo, hi] : [hi, lo];
      const raw = (th - tl) / 5;
      const p = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 5, 10].map((m) => m * p).find((x) => x >= raw) || raw;
      for (let v = Math.ceil(tl / step) * step; v <= th + step * 1e-9; v += step) {
        out.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
      }
    }
    return out.map((v) => ({ px: s.map(v), label: PS.fmt(v) }));
  };
  return s;
};

/** A colour for quality `q` in [0, 1] (1 best): viridis, dark blue to yellow. */
PS.colour = (function () {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const cache = [];
  for (let i = 0; i <= 64; i++) {
    const t = (i / 64) * (stops.length - 1);
    const k = Math.min(Math.floor(t), stops.length - 2);
    const u = t - k;
    const c = stops[k].map((x, j) => Math.round(x + u * (stops[k + 1][j] - x)));
    cache.push(`rgb(${c[0]},${c[1]},${c[2]})`);
  }
  return (q) => cache[Math.max(0, Math.min(64, Math.round((Number.isFinite(q) ? q : 0) * 64)))];
})();

PS.STATE_COLOUR = {
  complete: "#1f77b4",
  pruned: "#ff7f0e",
  diverged: "#d62728",
  failed: "#7f7f7f",
  running: "#2ca02c",
};

/** A canvas of CSS size `w`×`h` inside `el`, sharp on high-density screens. */
PS.canvas = function (el, w, h) {
  const c = document.createElement("canvas");
  const r = window.devicePixelRatio || 1;
  c.width = Math.round(w * r);
  c.height = Math.round(h * r);
  c.style.width = w + "px";
  c.style.height = h + "px";
  el.appendChild(c);
  const ctx = c.getContext("2d");
  ctx.scale(r, r);
  ctx.font = "11px sans-serif";
  return { c: c, ctx: ctx };
};

/** A chart frame: axes with ticks and labels, and hover over `marks` (`[x, y, trial]` in
 *  CSS pixels, pushed by the view) or over `hit(mx, my)` for marks that are not points. */
PS.frame = function (el, o) {
  const w = o.w || 360, h = o.h || 240;
  const m = { l: 58, r: 12, t: 10, b: 36 };
  const { c, ctx } = PS.canvas(el, w, h);
  const x = PS.scale(o.xKind || "linear", o.xDomain, m.l, w - m.r);
  const y = PS.scale(o.yKind || "linear", o.yDomain, h - m.b, m.t);
  ctx.strokeStyle = "#999";
  ctx.fillStyle = "#333";
  ctx.beginPath();
  ctx.moveTo(m.l, m.t);
  ctx.lineTo(m.l, h - m.b);
  ctx.lineTo(w - m.r, h - m.b);
  ctx.stroke();
  ctx.textAlign = "center";
  let last = -1e9;
  for (const t of x.ticks()) {
    if (t.px - last < 34) continue;
    last = t.px;
    ctx.fillRect(t.px, h - m.b, 1, 4);
    ctx.fillText(t.label.length > 9 ? t.label.slice(0, 8) + "…" : t.label, t.px, h - m.b + 15);
  }
  ctx.fillText(o.xLabel || "", (m.l + w - m.r) / 2, h - 4);
  ctx.textAlign = "right";
  last = 1e9;
  for (const t of y.ticks()) {
    if (last - t.px < 14) continue;
    last = t.px;
    ctx.fillRect(m.l - 4, t.px, 4, 1);
    ctx.fillText(t.label, m.l - 6, t.px + 4);
  }
  ctx.save();
  ctx.translate(11, (m.t + h - m.b) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText(o.yLabel || "", 0, 0);
  ctx.restore();
  const f = { c: c, ctx: ctx, x: x, y: y, w: w, h: h, m: m, marks: [], hit: null };
  PS.hover(c, (mx, my) => {
    if (f.hit) return f.hit(mx, my);
    let best = -1, bd = 64;
    for (const k of f.marks) {
      const d = (k[0] - mx) * (k[0] - mx) + (k[1] - my) * (k[1] - my);
      if (d < bd) [bd, best] = [d, k[2]];
    }
    return best;
  });
  return f;
};

/** Shows the tooltip of the trial `find(mx, my)` names (−1: none) under the pointer, and
 *  focuses it on click. */
PS.hover = function (c, find) {
  c.addEventListener("mousemove", (ev) => {
    const r = c.getBoundingClientRect();
    const i = find(ev.clientX - r.left, ev.clientY - r.top);
    if (Array.isArray(i) || i >= 0) PS.tip(i, ev.clientX, ev.clientY);
    else PS.untip();
  });
  c.addEventListener("mouseleave", PS.untip);
  c.addEventListener("click", (ev) => {
    const r = c.getBoundingClientRect();
    const i = find(ev.clientX - r.left, ev.clientY - r.top);
    if (!Array.isArray(i) && i >= 0 && PS.onFocus) PS.onFocus(i);
  });
};

/** Shows trial `i`'s tooltip (or, given an array, those lines) at client point (cx, cy). */
PS.tip = function (i, cx, cy) {
  const tip = document.getElementById("tip");
  tip.textContent = "";
  for (const line of Array.isArray(i) ? i : PS.describe(i)) {
    const d = document.createElement("div");
    d.textContent = line;
    tip.appendChild(d);
  }
  tip.dataset.trial = Array.isArray(i) ? "" : String(i);
  tip.style.display = "block";
  const left = Math.min(cx + 14, window.innerWidth - tip.offsetWidth - 8);
  tip.style.left = left + window.scrollX + "px";
  tip.style.top = cy + 14 + window.scrollY + "px";
};

PS.untip = function () {
  document.getElementById("tip").style.display = "none";
};

/** A legend of the colour map from `lo` to `hi` (the better end named). */
PS.legend = function (el, lo, hi, label) {
  const { ctx } = PS.canvas(el, 300, 30);
  for (let i = 0; i < 200; i++) {
    ctx.fillStyle = PS.colour(i / 199);
    ctx.fillRect(50 + i, 2, 1, 12);
  }
  ctx.fillStyle = "#333";
  ctx.textAlign = "right";
  ctx.fillText(PS.fmt(lo), 46, 12);
  ctx.textAlign = "left";
  ctx.fillText(PS.fmt(hi), 254, 12);
  ctx.fillText(label, 50, 27);
};
