// parallel.js: parallel coordinates, one axis per parameter (log axes in log scale,
// categorical axes labelled with their values) and one for the metric, one line per trial
// coloured by its metric. Dragging along an axis brushes a range there (several axes at
// once; a click on an axis clears its brush): the lines outside any brush turn grey, and
// on release the selection goes to every linked view.

PS.parallel = function (el, S) {
  const w = Math.max(640, el.clientWidth || 900), h = 380;
  const top = 34, bottom = h - 40;
  const axes = S.axes;
  const xs = axes.map((_, k) => 60 + (k * (w - 120)) / Math.max(axes.length - 1, 1));
  const { c, ctx } = PS.canvas(el, w, h);
  const scales = axes.map((a) =>
    a.kind === "cat" ? PS.scale("cat", a.values, bottom, top) : PS.scale(a.kind, a.domain, bottom, top)
  );
  // Each trial's y on each axis (NaN where it has no value there), computed once per draw.
  const ys = S.T.map((t, i) =>
    axes.map((a, k) => {
      const v = a.value(i);
      return v === undefined || v === null || (typeof v === "number" && !Number.isFinite(v))
        ? NaN
        : scales[k].map(v);
    })
  );
  let drag = null;

  function line(i) {
    let pen = false;
    for (let k = 0; k < axes.length; k++) {
      const y = ys[i][k];
      if (isNaN(y)) continue;
      if (pen) ctx.lineTo(xs[k], y);
      else ctx.moveTo(xs[k], y);
      pen = true;
    }
  }

  function draw() {
    ctx.clearRect(0, 0, w, h);
    const n = S.T.length;
    ctx.lineWidth = 1;
    ctx.strokeStyle = "rgba(160,160,160,0.25)";
    ctx.beginPath();
    for (let i = 0; i < n; i++) if (!S.sel[i]) line(i);
    ctx.stroke();
    // Selected lines by colour band, best drawn last (on top).
    const bands = Array.from({ length: 17 }, () => []);
    const plotted = [];
    for (let i = 0; i < n; i++) {
      if (!S.sel[i]) continue;
      plotted.push(i);
      const q = S.quality[i];
      bands[Number.isFinite(q) ? 1 + Math.round(q * 15) : 0].push(i);
    }
    S.plotted = plotted;
    ctx.globalAlpha = n > 2000 ? 0.35 : 0.8;
    bands.forEach((band, b) => {
      ctx.strokeStyle = b === 0 ? "#b0b0b0" : PS.colour((b - 1) / 15);
      ctx.beginPath();
      for (const i of band) line(i);
      ctx.stroke();
    });
    ctx.globalAlpha = 1;
    if (S.focus >= 0) {
      ctx.lineWidth = 3;
      ctx.strokeStyle = "#000";
      ctx.beginPath();
      line(S.focus);
      ctx.stroke();
      ctx.lineWidth = 1;
    }
    axes.forEach((a, k) => {
      ctx.strokeStyle = "#444";
      ctx.beginPath();
      ctx.moveTo(xs[k], top);
      ctx.lineTo(xs[k], bottom);
      ctx.stroke();
      ctx.fillStyle = "#000";
      ctx.textAlign = "center";
      ctx.font = "bold 12px sans-serif";
      ctx.fillText(a.name + (a.kind === "log" ? " (log)" : ""), xs[k], top - 18);
      ctx.font = "10px sans-serif";
      ctx.textAlign = "right";
      let last = 1e9;
      for (const t of scales[k].ticks()) {
        if (last - t.px < 12) continue;
        last = t.px;
        ctx.fillRect(xs[k] - 3, t.px, 3, 1);
        ctx.fillText(t.label.length > 10 ? t.label.slice(0, 9) + "…" : t.label, xs[k] - 5, t.px + 3);
      }
      const b = S.brush[a.name];
      if (b) {
        const [y0, y1] = a.kind === "cat" ? b.map((v) => scales[k].pos(v)) : b.map((v) => scales[k].map(v));
        ctx.fillStyle = "rgba(30,100,200,0.18)";
        ctx.strokeStyle = "rgba(30,100,200,0.9)";
        ctx.fillRect(xs[k] - 9, Math.min(y0, y1), 18, Math.abs(y1 - y0));
        ctx.strokeRect(xs[k] - 9, Math.min(y0, y1), 18, Math.abs(y1 - y0));
      }
    });
  }

  /** The brush range of axis `k` between pixel rows `y0` and `y1`, in its value space
   *  (fractional value indices on a categorical axis). */
  function range(k, y0, y1) {
    const [a, b] = [Math.max(y0, y1), Math.min(y0, y1)].map((y) =>
      scales[k].invert(Math.max(top, Math.min(bottom, y)))
    );
    return a <= b ? [a, b] : [b, a];
  }

  const local = (ev) => {
    const r = c.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  };
  // Pointer capture keeps a drag that leaves the canvas ours, with no listener on the
  // window to outlive a redraw.
  c.addEventListener("pointerdown", (ev) => {
    const [mx, my] = local(ev);
    const k = xs.findIndex((x) => Math.abs(x - mx) <= 12);
    if (k < 0 || my < top - 6 || my > bottom + 6) return;
    drag = { k: k, y0: my, moved: false };
    c.setPointerCapture(ev.pointerId);
    ev.preventDefault();
  });
  c.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const [, my] = local(ev);
    if (Math.abs(my - drag.y0) < 3 && !drag.moved) return;
    drag.moved = true;
    S.brush[axes[drag.k].name] = range(drag.k, drag.y0, my);
    S.select();
    draw();
  });
  c.addEventListener("pointerup", () => {
    if (!drag) return;
    if (!drag.moved) delete S.brush[axes[drag.k].name];
    drag = null;
    S.update();
  });
  PS.hover(c, (mx, my) => {
    if (drag) return -1;
    const k = xs.findIndex((x, j) => j + 1 < xs.length && mx >= x && mx <= xs[j + 1]);
    if (k < 0) return -1;
    const u = (mx - xs[k]) / (xs[k + 1] - xs[k]);
    let best = -1, bd = 5;
    for (let i = 0; i < S.T.length; i++) {
      const [a, b] = [ys[i][k], ys[i][k + 1]];
      if (isNaN(a) || isNaN(b)) continue;
      const d = Math.abs(a + u * (b - a) - my) - (S.sel[i] ? 1 : 0);
      if (d < bd) [bd, best] = [d, i];
    }
    return best;
  });
  // Where axis `name` lies in the window (the browser tests drag along it).
  S.axisBox = (name) => {
    const k = axes.findIndex((a) => a.name === name);
    const r = c.getBoundingClientRect();
    return k < 0 ? null : { x: r.left + xs[k], top: r.top + top, bottom: r.top + bottom };
  };
  S.redrawParallel = draw;
  draw();
};
