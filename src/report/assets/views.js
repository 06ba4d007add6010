// views.js: every view but the parallel coordinates and the table. Each draws the whole
// study, the selection in colour over the rest in grey, the focused trial in black, and
// registers its marks for the tooltip. `S` is the page's state (page.js).

PS.views = {};

/** The metric's range over trials with a value (robust to one exploding loss: the axis
 *  spans the values, the colour map the 2nd to 98th percentile). */
PS.extent = function (values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  return lo <= hi ? [lo, hi] : [0, 1];
};

/** Draws trial `i`'s point at (x, y): coloured when selected, grey otherwise. */
PS.dot = function (f, S, i, x, y, r) {
  const ctx = f.ctx;
  ctx.fillStyle = S.focus === i ? "#000" : S.sel[i] ? PS.colour(S.quality[i]) : "rgba(170,170,170,0.45)";
  ctx.beginPath();
  ctx.arc(x, y, S.focus === i ? 4 : r || 2.5, 0, 2 * Math.PI);
  ctx.fill();
  f.marks.push([x, y, i]);
};

PS.views.history = function (el, S) {
  const n = S.T.length;
  const f = PS.frame(el, {
    w: 720, h: 280, xDomain: [0, Math.max(n - 1, 1)], yDomain: PS.extent(S.val),
    xLabel: "trial (in the order asked)", yLabel: S.metric,
  });
  const better = (a, b) => (S.maximize ? a > b : a < b);
  // Best so far two ways: among complete trials (full budget), and among every trial's
  // last value at any budget, which starts at the first trial even under successive
  // halving, where the complete ones come last.
  for (const [complete, style] of [[false, "#aaa"], [true, "#222"]]) {
    let best = NaN;
    f.ctx.strokeStyle = style;
    f.ctx.setLineDash(complete ? [] : [4, 3]);
    f.ctx.beginPath();
    for (let i = 0; i < n; i++) {
      const v = S.val[i];
      if (!Number.isFinite(v) || (complete && S.T[i].s !== "complete")) continue;
      const first = isNaN(best);
      if (first || better(v, best)) best = v;
      if (first) f.ctx.moveTo(f.x.map(i), f.y.map(best));
      else f.ctx.lineTo(f.x.map(i), f.y.map(best));
    }
    if (!isNaN(best)) f.ctx.lineTo(f.x.map(n - 1), f.y.map(best));
    f.ctx.stroke();
  }
  f.ctx.setLineDash([]);
  for (let i = 0; i < n; i++) if (Number.isFinite(S.val[i])) PS.dot(f, S, i, f.x.map(i), f.y.map(S.val[i]));
  S.marks.history = f.marks;
  PS.note(el, "dots: each trial's value at its last rung; solid line: best complete trial so far; dashed: best at any budget so far");
};

PS.views.importance = function (el, S) {
  const imp = S.D.importance;
  if (!imp.length) return PS.note(el, "no trial has a value yet");
  const { c, ctx } = PS.canvas(el, 720, 24 * imp.length + 10);
  ctx.textAlign = "right";
  imp.forEach((m, k) => {
    const y = 24 * k + 5;
    ctx.fillStyle = "#333";
    ctx.fillText(m.param, 150, y + 13);
    ctx.fillStyle = "#1f77b4";
    ctx.fillRect(160, y, 400 * m.ped_anova, 16);
    ctx.fillStyle = "#333";
    ctx.textAlign = "left";
    ctx.fillText(`${m.ped_anova.toFixed(2)} (Spearman ${m.spearman >= 0 ? "+" : ""}${m.spearman.toFixed(2)})`, 166 + 400 * m.ped_anova, y + 13);
    ctx.textAlign = "right";
  });
  PS.hover(c, (mx, my) => {
    const m = imp[Math.floor((my - 5) / 24)];
    return m ? [m.param, `PED-ANOVA importance ${m.ped_anova.toFixed(3)}`, `Spearman ${m.spearman.toFixed(3)} (+: higher does better)`] : -1;
  });
};

PS.views.slice = function (el, S) {
  const wrap = document.createElement("div");
  wrap.className = "grid";
  el.appendChild(wrap);
  const yDomain = PS.extent(S.val);
  S.axes.slice(0, -1).forEach((a) => {
    const cell = document.createElement("div");
    wrap.appendChild(cell);
    const f = PS.frame(cell, {
      w: 300, h: 200, xKind: a.kind, xDomain: a.kind === "cat" ? a.values : a.domain,
      yDomain: yDomain, xLabel: a.name, yLabel: S.metric,
    });
    S.T.forEach((t, i) => {
      const v = a.value(i);
      if (v === undefined || !Number.isFinite(S.val[i])) return;
      const jitter = a.kind === "cat" ? ((t.n * 7919) % 100) / 100 - 0.5 : 0;
      PS.dot(f, S, i, f.x.map(v) + jitter * 12, f.y.map(S.val[i]), 2);
    });
  });
};

PS.views.contour = function (el, S) {
  const names = S.D.importance.map((m) => m.param).slice(0, 2);
  const [a, b] = names.map((nm) => S.axes.find((x) => x.name === nm));
  if (!a || !b) return PS.note(el, "needs two parameters and trials with values");
  const sa = PS.scale(a.kind, a.kind === "cat" ? a.values : a.domain, 0, 1);
  const sb = PS.scale(b.kind, b.kind === "cat" ? b.values : b.domain, 0, 1);
  const pts = [];
  S.T.forEach((t, i) => {
    const [u, v] = [a.value(i), b.value(i)];
    if (u !== undefined && v !== undefined && Number.isFinite(S.val[i])) pts.push([sa.map(u), sb.map(v), S.quality[i], i]);
  });
  // A Nadaraya-Watson estimate of the colour-map quality on a 40×40 grid (bandwidth 0.08
  // of each axis, cut at 3.5 bandwidths), blank where no trial lies near; the trials are
  // binned on the grid first, so the cost is the grid's, not the trials'. Kept across
  // selections.
  const G = 40, H = 0.08 * G, R = Math.ceil(3.5 * H);
  const key = S.version + ":" + names.join(",");
  if (!S.cache.contour || S.cache.contour.key !== key) {
    const [bw, bv] = [new Float64Array(G * G), new Float64Array(G * G)];
    for (const p of pts) {
      if (!Number.isFinite(p[2])) continue;
      const [gx, gy] = [p[0], p[1]].map((u) => Math.max(0, Math.min(G - 1, Math.floor(u * G))));
      bw[gx * G + gy] += 1;
      bv[gx * G + gy] += p[2];
    }
    const kernel = [];
    for (let d = 0; d <= 2 * R; d++) kernel.push(Math.exp(-((d - R) ** 2) / (2 * H * H)));
    const grid = new Float64Array(G * G).fill(NaN);
    for (let gx = 0; gx < G; gx++) {
      for (let gy = 0; gy < G; gy++) {
        let [sw, sv] = [0, 0];
        for (let x = Math.max(0, gx - R); x <= Math.min(G - 1, gx + R); x++) {
          const kx = kernel[x - gx + R];
          for (let y = Math.max(0, gy - R); y <= Math.min(G - 1, gy + R); y++) {
            const c = x * G + y;
            if (bw[c] === 0) continue;
            const k = kx * kernel[y - gy + R];
            [sw, sv] = [sw + k * bw[c], sv + k * bv[c]];
          }
        }
        if (sw > 0.05) grid[gx * G + gy] = sv / sw;
      }
    }
    S.cache.contour = { key: key, grid: grid };
  }
  const f = PS.frame(el, {
    w: 420, h: 360, xKind: a.kind, xDomain: a.kind === "cat" ? a.values : a.domain,
    yKind: b.kind, yDomain: b.kind === "cat" ? b.values : b.domain, xLabel: a.name, yLabel: b.name,
  });
  const [x0, x1, y0, y1] = [f.m.l, f.w - f.m.r, f.h - f.m.b, f.m.t];
  const grid = S.cache.contour.grid;
  for (let gx = 0; gx < G; gx++) {
    for (let gy = 0; gy < G; gy++) {
      const q = grid[gx * G + gy];
      if (isNaN(q)) continue;
      f.ctx.fillStyle = PS.colour(q);
      f.ctx.globalAlpha = 0.55;
      f.ctx.fillRect(x0 + (gx / G) * (x1 - x0), y0 + ((gy + 1) / G) * (y1 - y0), (x1 - x0) / G + 0.5, (y0 - y1) / G + 0.5);
    }
  }
  f.ctx.globalAlpha = 1;
  for (const p of pts) PS.dot(f, S, p[3], x0 + p[0] * (x1 - x0), y0 + p[1] * (y1 - y0), 2.5);
  PS.note(el, "shade: the metric smoothed over nearby trials (colour legend above); dots: trials");
};

PS.views.edf = function (el, S) {
  const f = PS.frame(el, {
    w: 420, h: 260, xDomain: PS.extent(S.val), yDomain: [0, 1], xLabel: S.metric,
    yLabel: "fraction of trials ≤ value",
  });
  for (const [only, style] of [[false, "#bbb"], [true, "#1f77b4"]]) {
    const idx = [];
    for (let i = 0; i < S.T.length; i++) if (Number.isFinite(S.val[i]) && (!only || S.sel[i])) idx.push(i);
    idx.sort((p, q) => S.val[p] - S.val[q]);
    f.ctx.strokeStyle = style;
    f.ctx.beginPath();
    idx.forEach((i, k) => {
      const [x, y] = [f.x.map(S.val[i]), f.y.map((k + 1) / idx.length)];
      if (k === 0) f.ctx.moveTo(x, f.y.map(0));
      f.ctx.lineTo(x, f.y.map(k / idx.length));
      f.ctx.lineTo(x, y);
      if (only) f.marks.push([x, y, i]);
    });
    f.ctx.stroke();
  }
  PS.note(el, "blue: the selected trials; grey: all trials with a value");
};

PS.views.timeline = function (el, S) {
  if (S.D.cv) return PS.note(el, "nested cross-validation trains each fold's members together: no slot timeline");
  // Slots in order of start, each trial into the first slot free by then: the same count
  // of busy slots per unit as the run had.
  const order = S.T.map((_, i) => i).sort((p, q) => S.T[p].t0 - S.T[q].t0 || S.T[p].n - S.T[q].n);
  const free = PS.heap(), slot = new Array(S.T.length);
  let [end, busy, rows] = [1, 0, 0];
  for (const i of order) {
    const t = S.T[i];
    const k = free.size() && free.peek()[0] <= t.t0 ? free.pop()[1] : rows++;
    free.push([t.t0 + Math.max(t.e, 0), k]);
    slot[i] = k;
    end = Math.max(end, t.t0 + t.e);
    busy += t.e;
  }
  rows = Math.max(rows, 1);
  const f = PS.frame(el, {
    w: 720, h: Math.min(420, 60 + Math.max(rows * 6, 120)), xDomain: [0, end], yDomain: [rows, 0],
    xLabel: `the population's clock (${S.unit}s)`, yLabel: "slot",
  });
  const rh = Math.max((f.y.map(1) - f.y.map(0)) * 0.8, 0.8);
  const rect = [];
  S.T.forEach((t, i) => {
    const [x0, x1, y] = [f.x.map(t.t0), f.x.map(t.t0 + t.e), f.y.map(slot[i])];
    f.ctx.fillStyle = S.focus === i ? "#000" : PS.STATE_COLOUR[t.s] || "#999";
    f.ctx.globalAlpha = S.sel[i] ? 1 : 0.25;
    f.ctx.fillRect(x0, y, Math.max(x1 - x0, 1), rh);
    rect.push([x0, x1, y, y + rh, i]);
    f.ctx.fillStyle = "#fff";
    for (const r of t.r.slice(0, -1)) f.ctx.fillRect(f.x.map(t.t0 + r[0]) - 0.5, y, 1, rh);
  });
  f.ctx.globalAlpha = 1;
  f.hit = (mx, my) => {
    const r = rect.find((q) => mx >= q[0] - 1 && mx <= q[1] + 1 && my >= q[2] - 1 && my <= q[3] + 1);
    return r ? r[4] : -1;
  };
  const util = busy / (rows * end);
  PS.note(el, `bars: trials (blue complete, orange pruned, red diverged, grey failed); white ticks: promotions. ${rows} slots busy ${(100 * util).toFixed(0)}% of the time.`);
};

/** A scatter of the metric against `x(i)` (undefined: not drawn). */
PS.scatter = function (el, S, o) {
  const xs = S.T.map((_, i) => o.x(i));
  const f = PS.frame(el, {
    w: 420, h: 280, xKind: o.xKind, xDomain: PS.extent(xs.filter((v) => v !== undefined)),
    yDomain: PS.extent(o.ys || S.val), xLabel: o.xLabel, yLabel: o.yLabel || S.metric,
  });
  const ys = o.ys || S.val;
  xs.forEach((x, i) => {
    if (x !== undefined && Number.isFinite(x) && Number.isFinite(ys[i])) PS.dot(f, S, i, f.x.map(x), f.y.map(ys[i]), 3);
  });
  return f;
};

PS.views.size = function (el, S) {
  PS.scatter(el, S, { x: (i) => S.T[i].z, xKind: "log", xLabel: "parameters" });
  const cell = document.createElement("div");
  el.appendChild(cell);
  PS.scatter(cell, S, { x: (i) => S.T[i].fl, xKind: "log", xLabel: "forward FLOPs per sample" });
};

PS.views.pareto = function (el, S) {
  const o = S.D.objectives[0];
  const ys = S.T.map((t) => (t.o ? t.o[1] : NaN));
  const f = PS.scatter(el, S, {
    x: (i) => (S.T[i].o ? S.val[i] : undefined), ys: ys, xLabel: S.metric, yLabel: o.name,
  });
  const front = S.T.map((t, i) => i).filter((i) => S.D.pareto.includes(S.T[i].n));
  front.sort((p, q) => S.val[p] - S.val[q]);
  f.ctx.strokeStyle = "#d62728";
  f.ctx.lineWidth = 2;
  f.ctx.beginPath();
  front.forEach((i, k) => (k ? f.ctx.lineTo : f.ctx.moveTo).call(f.ctx, f.x.map(S.val[i]), f.y.map(ys[i])));
  f.ctx.stroke();
  PS.note(el, `red: the ${front.length} trials on the front (${S.metric} ${S.maximize ? "max" : "min"}, ${o.name} ${o.maximize ? "max" : "min"})`);
};

/** Lines of `series(i)` (`[[x, y]…]`) for every trial, selected in colour. */
PS.lines = function (el, S, series, o) {
  const all = S.T.map((_, i) => series(i) || []);
  const xs = [], ys = [];
  for (const s of all) for (const p of s) if (Number.isFinite(p[1])) xs.push(p[0]), ys.push(p[1]);
  const f = PS.frame(el, { w: 720, h: 300, xDomain: PS.extent(xs), yDomain: PS.extent(ys), xLabel: o.xLabel, yLabel: o.yLabel });
  const path = (s) => {
    f.ctx.beginPath();
    s.forEach((p, k) => (k ? f.ctx.lineTo : f.ctx.moveTo).call(f.ctx, f.x.map(p[0]), f.y.map(p[1])));
    f.ctx.stroke();
  };
  f.ctx.strokeStyle = "rgba(170,170,170,0.3)";
  all.forEach((s, i) => !S.sel[i] && path(s));
  f.ctx.globalAlpha = S.T.length > 2000 ? 0.3 : 0.7;
  all.forEach((s, i) => {
    if (!S.sel[i]) return;
    f.ctx.strokeStyle = PS.colour(S.quality[i]);
    path(s);
    for (const p of s) f.marks.push([f.x.map(p[0]), f.y.map(p[1]), i]);
  });
  f.ctx.globalAlpha = 1;
  if (S.focus >= 0 && all[S.focus].length) {
    f.ctx.strokeStyle = "#000";
    f.ctx.lineWidth = 2.5;
    path(all[S.focus]);
    f.ctx.lineWidth = 1;
  }
  return f;
};

PS.views.curves = function (el, S) {
  const f = PS.lines(el, S, (i) => S.T[i].c, { xLabel: S.unit + "s", yLabel: S.metric });
  // Promotions (every rung a trial passed) and prunes (a pruned trial's last rung).
  S.T.forEach((t, i) => {
    if (!S.sel[i]) return;
    t.r.forEach((r, k) => {
      const pruned = t.s === "pruned" && k === t.r.length - 1;
      if (k === t.r.length - 1 && !pruned) return;
      f.ctx.fillStyle = pruned ? "#d62728" : "#2ca02c";
      f.ctx.fillRect(f.x.map(r[0]) - 2, f.y.map(r[1]) - 2, 4, 4);
    });
  });
  PS.note(el, `x in ${S.unit}s; green squares: promoted there; red squares: pruned there`);
};

PS.views.gap = function (el, S) {
  if (!S.T.some((t) => t.g)) PS.note(el, "no per-epoch history (an external program's trials)");
  else PS.lines(el, S, (i) => S.T[i].g, { xLabel: S.unit + "s", yLabel: "train − validation (top 5 trials)" });
  const flags = document.createElement("div");
  flags.innerHTML = S.D.flags;
  el.appendChild(flags);
};

/** The learning-rate range test: each seed's smoothed loss against the learning rate
 *  (clipped at 1.5× the first loss, as the divergence would flatten the rest), with the
 *  steepest-descent and minimum/10 suggestions. */
PS.views.lrFinder = function (el, R) {
  const curves = (R.members || []).map((m) => ({ seed: m.seed, pts: (m.points || []).filter((p) => p.lr > 0 && Number.isFinite(p.smoothed)) }));
  const all = curves.flatMap((c) => c.pts);
  if (!all.length) return PS.note(el, "the range test recorded no point");
  const cap = 1.5 * Math.max(...curves.map((c) => (c.pts[0] ? c.pts[0].smoothed : -Infinity)));
  const lrs = all.map((p) => p.lr);
  const f = PS.frame(el, {
    w: 720, h: 300, xKind: "log", xDomain: [Math.min(...lrs), Math.max(...lrs)],
    yDomain: [Math.min(...all.map((p) => p.smoothed)), cap], xLabel: "learning rate",
    yLabel: "smoothed training loss",
  });
  const y = (v) => f.y.map(Math.min(v, cap));
  const marks = [];
  curves.forEach((c, k) => {
    f.ctx.strokeStyle = PS.colour(curves.length > 1 ? k / (curves.length - 1) : 0.3);
    f.ctx.beginPath();
    c.pts.forEach((p, j) => {
      (j ? f.ctx.lineTo : f.ctx.moveTo).call(f.ctx, f.x.map(p.lr), y(p.smoothed));
      marks.push([f.x.map(p.lr), y(p.smoothed), [`seed ${c.seed}, step ${p.step}`, `lr = ${PS.fmt(p.lr)}`, `loss = ${PS.fmt(p.loss)}`, `smoothed = ${PS.fmt(p.smoothed)}`]]);
    });
    f.ctx.stroke();
  });
  for (const [lr, name] of [[R.steepest_lr, "steepest"], [R.min_div10_lr, "min/10"]]) {
    if (!(lr > 0)) continue;
    f.ctx.strokeStyle = "#d62728";
    f.ctx.setLineDash([4, 3]);
    f.ctx.beginPath();
    f.ctx.moveTo(f.x.map(lr), f.m.t);
    f.ctx.lineTo(f.x.map(lr), f.h - f.m.b);
    f.ctx.stroke();
    f.ctx.setLineDash([]);
    f.ctx.fillStyle = "#d62728";
    f.ctx.fillText(`${name} ${PS.fmt(lr)}`, f.x.map(lr) + 3, f.m.t + 10);
  }
  f.hit = (mx, my) => {
    let best = -1, bd = 64;
    for (const m of marks) {
      const d = (m[0] - mx) ** 2 + (m[1] - my) ** 2;
      if (d < bd) [bd, best] = [d, m[2]];
    }
    return best;
  };
};

/** A binary min-heap of `[key, value]` pairs. */
PS.heap = function () {
  const a = [];
  const swap = (i, j) => ([a[i], a[j]] = [a[j], a[i]]);
  const less = (i, j) => a[i][0] < a[j][0] || (a[i][0] === a[j][0] && a[i][1] < a[j][1]);
  return {
    size: () => a.length,
    peek: () => a[0],
    push: (x) => {
      a.push(x);
      for (let i = a.length - 1; i > 0 && less(i, (i - 1) >> 1); i = (i - 1) >> 1) swap(i, (i - 1) >> 1);
    },
    pop: () => {
      const top = a[0];
      const last = a.pop();
      if (a.length) {
        a[0] = last;
        for (let i = 0; ; ) {
          const [l, r] = [2 * i + 1, 2 * i + 2];
          let m = i;
          if (l < a.length && less(l, m)) m = l;
          if (r < a.length && less(r, m)) m = r;
          if (m === i) break;
          swap(i, m);
          i = m;
        }
      }
      return top;
    },
  };
};

PS.note = function (el, text) {
  const p = document.createElement("p");
  p.className = "note";
  p.textContent = text;
  el.appendChild(p);
};
