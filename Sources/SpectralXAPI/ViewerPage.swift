// Generated from viewer/index.html by scripts/service/embed.sh; a test checks they are equal.
enum ViewerPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>spectralx viewer</title>
    <link rel="icon" href="data:,">
    <style>
      body { font: 1rem/1.4 system-ui, sans-serif; margin: 1rem; max-width: 72rem; }
      fieldset { margin: 0 0 1rem; border: 1px solid #888; }
      #stage { position: relative; display: inline-block; max-width: 100%; }
      #stage canvas { display: block; max-width: 100%; image-rendering: pixelated; }
      #overlay { position: absolute; left: 0; top: 0; }
      #legend li { list-style: none; margin: .2rem 0; }
      .swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #000; vertical-align: middle; }
      :focus-visible { outline: 3px solid #1f77b4; }
      #status { min-height: 1.5em; }
      @media (max-width: 40rem) { body { margin: .5rem; } }
    </style>
    </head>
    <body>
    <main>
    <h1>spectralx viewer</h1>
    <p>OGC API – Processes: <a href="/processes">processes</a>, <a href="/conformance">conformance</a>, <a href="/jobs">jobs</a>,
      <a href="/openapi.yaml">OpenAPI</a>. This page calls the same public routes as any client.</p>
    <fieldset>
      <legend>Domain</legend>
      <label for="domain">Domain</label> <select id="domain"></select>
      <p id="card"></p>
    </fieldset>
    <fieldset>
      <legend>Tile</legend>
      <label for="file">GeoTIFF or NPY tile</label> <input id="file" type="file" accept=".tif,.tiff,.npy">
      <button id="demo" type="button">Use a demo tile</button>
      <label for="bands">False-colour bands (R,G,B)</label> <input id="bands" value="1,2,3" size="7">
      <label for="opacity">Overlay opacity</label> <input id="opacity" type="range" min="0" max="100" value="60">
    </fieldset>
    <p id="status" role="status" aria-live="polite"></p>
    <div id="stage"><canvas id="base" width="224" height="224" aria-label="false-colour tile"></canvas><canvas id="overlay" width="224" height="224" aria-label="label overlay"></canvas></div>
    <p id="pointer" aria-live="off"></p>
    <h2>Legend</h2>
    <ul id="legend"></ul>
    </main>
    <script>
    "use strict";
    const $ = (id) => document.getElementById(id);
    let classes = [], labels = null, dims = null, hidden = new Set(), upload = null;

    function say(t) { $("status").textContent = t; }

    async function json(url) {
      const r = await fetch(url, { headers: { Accept: "application/json" } });
      if (!r.ok) throw new Error(url + ": " + r.status + " " + (await r.text()));
      return r.json();
    }

    async function loadDomains() {
      const list = await json("/processes");
      const sel = $("domain");
      sel.innerHTML = "";
      for (const p of list.processes) { const o = document.createElement("option"); o.value = o.textContent = p.id; sel.append(o); }
      if (list.processes.length) await selectDomain(sel.value);
    }

    async function selectDomain(name) {
      const card = await json("/v1/domains/" + encodeURIComponent(name) + "/stac");
      const p = card.properties, input = p["mlm:input"][0];
      classes = p["mlm:output"][0]["classification:classes"];
      $("card").textContent = p["mlm:name"] + ": " + p["mlm:architecture"] + "; input " + input.input.shape.join("×") +
        ", " + input.bands.length + " bands; " + p["mlm:total_parameters"] + " parameters";
      hidden.clear();
      legend(null);
    }

    function legend(fractions) {
      const ul = $("legend");
      ul.innerHTML = "";
      classes.forEach((c, i) => {
        const li = document.createElement("li");
        const box = document.createElement("input");
        box.type = "checkbox"; box.checked = !hidden.has(i); box.id = "cls" + i;
        box.addEventListener("change", () => { box.checked ? hidden.delete(i) : hidden.add(i); drawOverlay(); });
        const lab = document.createElement("label");
        lab.htmlFor = box.id;
        const frac = fractions ? " — " + (100 * fractions[i]).toFixed(1) + " %" : "";
        lab.innerHTML = '<span class="swatch" style="background:#' + (c.color_hint || "888888") + '"></span> ';
        lab.append(c.value + " " + (c.description || c.name) + frac);
        li.append(box, lab);
        ul.append(li);
      });
    }

    /** A float32/uint16/uint8 (C,H,W) NumPy file, for the false-colour rendering. */
    function parseNpy(buf) {
      const v = new DataView(buf), hl = v.getUint16(8, true), header = new TextDecoder().decode(new Uint8Array(buf, 10, hl));
      const shape = header.match(/\(([^)]*)\)/)[1].split(",").filter(s => s.trim()).map(Number);
      const descr = header.match(/'descr':\s*'([^']+)'/)[1], off = 10 + hl;
      const T = { "<f4": Float32Array, "<u2": Uint16Array, "|u1": Uint8Array, "<i2": Int16Array }[descr];
      if (!T || shape.length !== 3) return null;
      return { c: shape[0], h: shape[1], w: shape[2], data: new T(buf.slice(off)) };
    }

    function drawBase(arr) {
      const base = $("base"), ctx = base.getContext("2d");
      if (!arr) { ctx.fillStyle = "#ccc"; ctx.fillRect(0, 0, base.width, base.height); return; }
      const pick = $("bands").value.split(",").map(s => Math.min(arr.c, Math.max(1, parseInt(s, 10) || 1)) - 1);
      base.width = arr.w; base.height = arr.h;
      const img = ctx.createImageData(arr.w, arr.h), n = arr.w * arr.h;
      pick.forEach((b, k) => {
        let lo = Infinity, hi = -Infinity;
        for (let i = 0; i < n; i++) { const x = arr.data[b * n + i]; if (x < lo) lo = x; if (x > hi) hi = x; }
        for (let i = 0; i < n; i++) img.data[4 * i + k] = 255 * (arr.data[b * n + i] - lo) / ((hi - lo) || 1);
      });
      for (let i = 0; i < n; i++) img.data[4 * i + 3] = 255;
      ctx.putImageData(img, 0, 0);
    }

    function drawOverlay() {
      if (!labels) return;
      const ov = $("overlay"), ctx = ov.getContext("2d");
      ov.width = dims.w; ov.height = dims.h;
      ov.style.width = $("base").clientWidth + "px";
      const img = ctx.createImageData(dims.w, dims.h), a = Math.round(2.55 * $("opacity").value);
      const rgb = classes.map(c => parseInt(c.color_hint || "888888", 16));
      for (let i = 0; i < labels.length; i++) {
        const k = labels[i];
        if (k >= rgb.length || hidden.has(k)) continue;
        img.data[4 * i] = rgb[k] >> 16; img.data[4 * i + 1] = (rgb[k] >> 8) & 255; img.data[4 * i + 2] = rgb[k] & 255; img.data[4 * i + 3] = a;
      }
      ctx.putImageData(img, 0, 0);
    }

    function parseLabels(buf) {
      const v = new DataView(buf), hl = v.getUint16(8, true), header = new TextDecoder().decode(new Uint8Array(buf, 10, hl));
      const shape = header.match(/\(([^)]*)\)/)[1].split(",").filter(s => s.trim()).map(Number);
      return { w: shape[1], h: shape[0], data: new Uint8Array(buf.slice(10 + hl)) };
    }

    async function run(buf, type) {
      upload = { buf, type };
      drawBase(type === "application/x-npy" ? parseNpy(buf) : null);
      const name = $("domain").value;
      say("segmenting…");
      const r = await fetch("/v1/domains/" + encodeURIComponent(name) + "/segment?output=npy&mode=tile",
                            { method: "POST", headers: { "Content-Type": type }, body: buf });
      if (!r.ok) { say("error " + r.status + ": " + (await r.text())); return; }
      const lab = parseLabels(await r.arrayBuffer());
      labels = lab.data; dims = { w: lab.w, h: lab.h };
      const counts = new Array(classes.length).fill(0);
      for (const k of labels) if (k < counts.length) counts[k]++;
      legend(counts.map(n => n / labels.length));
      drawOverlay();
      say("done: " + dims.w + "×" + dims.h + ", batch size " + r.headers.get("X-SpectralX-Batch-Size") + ", " + r.headers.get("Server-Timing"));
    }

    function demoTile() {
      const card = $("card").textContent, c = parseInt((card.match(/(\d+) bands/) || [0, 4])[1], 10), h = 224, w = 224;
      const header0 = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + c + ", " + h + ", " + w + "), }";
      const header = header0 + " ".repeat(63 - (10 + header0.length) % 64) + "\n";
      const buf = new ArrayBuffer(10 + header.length + 4 * c * h * w), v = new DataView(buf);
      new Uint8Array(buf, 0, 8).set([0x93, 78, 85, 77, 80, 89, 1, 0]);
      v.setUint16(8, header.length, true);
      new Uint8Array(buf, 10, header.length).set(new TextEncoder().encode(header));
      const f = new Float32Array(buf, 10 + header.length);
      for (let b = 0; b < c; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++)
        f[(b * h + y) * w + x] = Math.sin((x + 7 * b) * 0.05) + Math.cos(y * 0.03 + b);
      return buf;
    }

    $("overlay").addEventListener("mousemove", (e) => {
      if (!labels) return;
      const r = e.target.getBoundingClientRect();
      const x = Math.floor((e.clientX - r.left) * dims.w / r.width), y = Math.floor((e.clientY - r.top) * dims.h / r.height);
      const k = labels[y * dims.w + x], c = classes[k];
      $("pointer").textContent = "pixel (" + x + ", " + y + "): " + (c ? c.value + " " + (c.description || c.name) : "nodata");
    });
    $("domain").addEventListener("change", (e) => selectDomain(e.target.value).catch(err => say(String(err))));
    $("opacity").addEventListener("input", drawOverlay);
    $("bands").addEventListener("change", () => { if (upload) drawBase(upload.type === "application/x-npy" ? parseNpy(upload.buf) : null); });
    $("demo").addEventListener("click", () => run(demoTile(), "application/x-npy").catch(err => say(String(err))));
    $("file").addEventListener("change", async (e) => {
      const f = e.target.files[0];
      if (!f) return;
      const type = f.name.toLowerCase().endsWith(".npy") ? "application/x-npy" : "image/tiff";
      run(await f.arrayBuffer(), type).catch(err => say(String(err)));
    });
    loadDomains().catch(err => say(String(err)));
    </script>
    </body>
    </html>

    """#
}
