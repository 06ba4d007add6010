// page.js: the page that links the views. It reads the embedded data (or, live, polls
// `data.json`), keeps one selection — the trials inside every brush and matching the
// table's filter — and redraws every view from it. `window.popsweep` exposes the state to
// the browser tests and to scripts.

(function () {
  let D = JSON.parse(document.getElementById("popsweep-data").textContent);
  const S = { brush: {}, filter: "", sort: { col: -1, dir: 1 }, focus: -1, cache: {}, marks: {}, version: 0 };
  const TABLE_ROWS = 500;

  /** The axes of the parallel coordinates: each parameter, then the metric. */
  function axes() {
    const out = D.params.map((p) => {
      const value = (i) => S.T[i].p[p.name];
      const seen = S.T.map((t) => t.p[p.name]).filter((v) => v !== undefined && v !== null);
      if (p.scale === "cat") {
        const values = p.values.slice();
        for (const v of seen) if (!values.some((x) => String(x) === String(v))) values.push(v);
        return { name: p.name, kind: "cat", values: values, value: value };
      }
      const nums = seen.filter((v) => typeof v === "number");
      let [lo, hi] = PS.extent(nums);
      let kind = p.scale;
      if (kind === "data") kind = lo > 0 && hi / lo >= 100 ? "log" : "linear";
      else if (!nums.length) [lo, hi] = [p.min, p.max];
      else [lo, hi] = [Math.min(lo, p.min), Math.max(hi, p.max)];
      return { name: p.name, kind: kind, domain: [lo, hi], value: value };
    });
    out.push({ name: D.metric, kind: "linear", domain: PS.extent(S.val), value: (i) => (Number.isFinite(S.val[i]) ? S.val[i] : undefined), metric: true });
    return out;
  }

  /** Colour-map quality in [0, 1] (1 best) from the 2nd to the 98th percentile. */
  function qualities() {
    const v = S.val.filter(Number.isFinite).sort((a, b) => a - b);
    const at = (q) => v[Math.min(v.length - 1, Math.max(0, Math.round(q * (v.length - 1))))];
    const [lo, hi] = v.length >= 50 ? [at(0.02), at(0.98)] : PS.extent(v);
    S.qrange = [lo, hi];
    return S.val.map((x) => {
      if (!Number.isFinite(x)) return NaN;
      const q = hi > lo ? Math.max(0, Math.min(1, (x - lo) / (hi - lo))) : 0.5;
      return D.maximize ? q : 1 - q;
    });
  }

  const label = (i) => (S.T[i].f === undefined ? String(S.T[i].n) : `${S.T[i].n} (fold ${S.T[i].f})`);

  /** Trial `i`'s row: the cells of the table and of the CSV. */
  function columns() {
    const cols = [
      { name: "trial", get: (i) => S.T[i].n },
      { name: "state", get: (i) => S.T[i].s },
      { name: S.unit + "s", get: (i) => S.T[i].e },
      { name: D.metric, get: (i) => (Number.isFinite(S.val[i]) ? S.val[i] : null) },
    ];
    if (S.T.some((t) => t.f !== undefined)) cols.splice(1, 0, { name: "fold", get: (i) => S.T[i].f });
    D.objectives.forEach((o, k) => cols.push({ name: o.name, get: (i) => (S.T[i].o ? S.T[i].o[k + 1] : null) }));
    D.params.forEach((p) => cols.push({ name: p.name, get: (i) => S.T[i].p[p.name] }));
    if (S.T.some((t) => t.z)) cols.push({ name: "parameters", get: (i) => S.T[i].z });
    return cols;
  }

  PS.describe = function (i) {
    const t = S.T[i];
    const lines = [`trial ${label(i)} · ${t.s} · ${t.e} ${S.unit}${t.e === 1 ? "" : "s"}`, `${D.metric} = ${PS.fmt(S.val[i])}`];
    D.objectives.forEach((o, k) => lines.push(`${o.name} = ${PS.fmt(t.o ? t.o[k + 1] : null)}`));
    for (const p of D.params) if (t.p[p.name] !== undefined) lines.push(`${p.name} = ${PS.fmt(t.p[p.name])}`);
    if (t.z) lines.push(`parameters = ${t.z}`);
    if (t.err) lines.push(t.err.length > 90 ? t.err.slice(0, 89) + "…" : t.err);
    return lines;
  };

  function passes(i) {
    for (const a of S.axes) {
      const b = S.brush[a.name];
      if (!b) continue;
      const v = a.value(i);
      if (v === undefined || v === null) return false;
      const x = a.kind === "cat" ? a.values.findIndex((u) => String(u) === String(v)) : v;
      if (!(x >= b[0] && x <= b[1])) return false;
    }
    if (!S.filter) return true;
    const text = S.text[i];
    return S.filter.split(/\s+/).every((tok) => text.includes(tok));
  }

  S.select = function () {
    for (let i = 0; i < S.T.length; i++) S.sel[i] = passes(i) ? 1 : 0;
  };

  /** The selected trials in the table's order. */
  function ordered() {
    const rows = [];
    for (let i = 0; i < S.T.length; i++) if (S.sel[i]) rows.push(i);
    const c = S.cols[S.sort.col];
    if (c) {
      const key = (i) => c.get(i);
      rows.sort((p, q) => {
        const [a, b] = [key(p), key(q)];
        if (a === b) return p - q;
        if (a === null || a === undefined) return 1;
        if (b === null || b === undefined) return -1;
        return (a < b ? -1 : 1) * S.sort.dir;
      });
    }
    return rows;
  }

  function csv() {
    const cell = (v) => {
      const s = v === null || v === undefined ? "" : String(v);
      return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    };
    const lines = [S.cols.map((c) => cell(c.name)).join(",")];
    for (const i of ordered()) lines.push(S.cols.map((c) => cell(c.get(i))).join(","));
    return lines.join("\n") + "\n";
  }

  function table(el) {
    const bar = document.createElement("div");
    bar.className = "bar";
    const input = document.createElement("input");
    input.placeholder = "filter: words the row must hold (pruned, lr=0.01, …)";
    input.value = S.filter;
    input.size = 48;
    input.addEventListener("change", () => {
      S.filter = input.value.trim().toLowerCase();
      S.update();
    });
    bar.appendChild(input);
    el.appendChild(bar);
    const rows = ordered();
    const tbl = document.createElement("table");
    tbl.className = "trials";
    const head = tbl.insertRow();
    S.cols.forEach((c, k) => {
      const th = document.createElement("th");
      th.textContent = c.name + (S.sort.col === k ? (S.sort.dir > 0 ? " ▲" : " ▼") : "");
      th.addEventListener("click", () => {
        S.sort = { col: k, dir: S.sort.col === k ? -S.sort.dir : 1 };
        S.update();
      });
      head.appendChild(th);
    });
    for (const i of rows.slice(0, TABLE_ROWS)) {
      const tr = tbl.insertRow();
      tr.dataset.i = String(i);
      if (i === S.focus) tr.className = "focus";
      for (const c of S.cols) tr.insertCell().textContent = PS.fmt(c.get(i));
      tr.addEventListener("mousemove", (ev) => PS.tip(i, ev.clientX, ev.clientY));
      tr.addEventListener("mouseleave", PS.untip);
      tr.addEventListener("click", () => PS.onFocus(i));
    }
    el.appendChild(tbl);
    if (rows.length > TABLE_ROWS) PS.note(el, `showing the first ${TABLE_ROWS} of ${rows.length} selected trials; the CSV holds all`);
  }

  function selection(el) {
    const count = S.sel.reduce((a, b) => a + b, 0);
    const p = document.createElement("p");
    p.id = "count";
    p.textContent = `${count} of ${S.T.length} trials selected` + (Object.keys(S.brush).length ? ` (brushed: ${Object.keys(S.brush).join(", ")})` : "");
    el.appendChild(p);
    const clear = document.createElement("button");
    clear.textContent = "Clear brushes and filter";
    clear.addEventListener("click", () => {
      [S.brush, S.filter, S.focus] = [{}, "", -1];
      S.update();
    });
    const down = document.createElement("button");
    down.textContent = "Download selected (CSV)";
    down.addEventListener("click", () => {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([csv()], { type: "text/csv" }));
      a.download = `${D.name}-selected.csv`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
    el.append(clear, down);
    const legend = document.createElement("div");
    el.appendChild(legend);
    const [lo, hi] = S.qrange;
    PS.legend(legend, D.maximize ? lo : hi, D.maximize ? hi : lo, `colour: ${D.metric}, the best at the right`);
  }

  const VIEWS = {
    selection: selection,
    parallel: (el) => PS.parallel(el, S),
    trials: table,
    history: (el) => PS.views.history(el, S),
    importance: (el) => PS.views.importance(el, S),
    slice: (el) => PS.views.slice(el, S),
    contour: (el) => PS.views.contour(el, S),
    edf: (el) => PS.views.edf(el, S),
    timeline: (el) => PS.views.timeline(el, S),
    size: (el) => PS.views.size(el, S),
    pareto: (el) => PS.views.pareto(el, S),
    curves: (el) => PS.views.curves(el, S),
    gap: (el) => PS.views.gap(el, S),
    "lr-finder": (el) => PS.views.lrFinder(el, D.lrFind),
    top: (el) => (el.innerHTML = D.test),
  };

  function shown(id) {
    if (id === "size") return S.T.some((t) => t.z);
    if (id === "pareto") return D.objectives.length > 0;
    if (id === "lr-finder") return !!D.lrFind;
    return true;
  }

  S.update = function () {
    let t = performance.now();
    S.select();
    S.timings = { select: performance.now() - t };
    for (const id of Object.keys(VIEWS)) {
      const sec = document.getElementById(id);
      if (!sec) continue;
      t = performance.now();
      sec.hidden = !shown(id);
      const el = sec.querySelector(".view");
      el.textContent = "";
      if (!sec.hidden) VIEWS[id](el);
      S.timings[id] = performance.now() - t;
    }
  };

  /** Builds the state from `D` (kept: brushes, filter, sort, the focused trial). */
  function load() {
    const focused = S.focus >= 0 && S.T ? S.T[S.focus].n : null;
    S.T = D.trials;
    S.D = D;
    S.metric = D.metric;
    S.maximize = D.maximize;
    S.unit = D.unit;
    S.version += 1;
    S.val = S.T.map((t) => (t.v === null || t.v === undefined ? NaN : t.v));
    S.quality = qualities();
    S.axes = axes();
    S.cols = columns();
    S.text = S.T.map((t, i) => (S.cols.map((c) => `${c.name}=${PS.fmt(c.get(i))}`).join(" ") + " " + t.s).toLowerCase());
    S.sel = new Uint8Array(S.T.length);
    S.focus = focused === null ? -1 : S.T.findIndex((t) => t.n === focused);
    document.getElementById("headline").innerHTML = D.headline;
    S.update();
  }

  PS.onFocus = (i) => {
    S.focus = S.focus === i ? -1 : i;
    S.update();
  };

  const started = performance.now();
  load();
  const api = {
    /** Milliseconds from navigation to the first complete render, and of the render. */
    loadMs: performance.now(),
    renderMs: performance.now() - started,
    count: () => S.T.length,
    finished: () => D.finished,
    data: () => D,
    selected: () => S.T.filter((_, i) => S.sel[i]).map((t) => t.n),
    plotted: () => S.plotted.map((i) => S.T[i].n),
    tableRows: () => Array.from(document.querySelectorAll("#trials tr[data-i]")).map((tr) => S.T[+tr.dataset.i].n),
    axis: (name) => S.axisBox(name),
    brushes: () => JSON.parse(JSON.stringify(S.brush)),
    /** Brushes `[lo, hi]` on axis `name` and redraws every view; returns milliseconds. */
    brush: (name, lo, hi) => {
      const t0 = performance.now();
      S.brush[name] = [lo, hi];
      S.update();
      return performance.now() - t0;
    },
    point: (view, n) => {
      const i = S.T.findIndex((t) => t.n === n);
      const mark = (S.marks[view] || []).find((m) => m[2] === i);
      const c = document.querySelector(`#${view} canvas`).getBoundingClientRect();
      return mark ? { x: c.left + mark[0], y: c.top + mark[1] } : null;
    },
    csv: csv,
    /** Milliseconds each view took in the last redraw. */
    timings: () => S.timings,
  };
  window.popsweep = api;

  if (D.live) {
    const status = document.getElementById("live");
    let last = "";
    const poll = async () => {
      try {
        const r = await fetch("data.json", { cache: "no-store" });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        const text = await r.text();
        if (text !== last) {
          last = text;
          D = JSON.parse(text);
          load();
        }
        status.textContent = D.stale
          ? `live: the study cannot be read now (${D.stale}); showing its last state; retrying`
          : `live: ${D.trials.length} trials recorded${D.finished ? ", sweep finished" : ""}; updated ${new Date().toLocaleTimeString()}` +
            (D.progress ? `\n${D.progress.trim()}` : "");
      } catch (e) {
        status.textContent = `live: cannot reach the dashboard (${e.message}); retrying`;
      }
      setTimeout(poll, 1000);
    };
    poll();
  }
})();
