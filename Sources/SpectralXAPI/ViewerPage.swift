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
      fieldset > * { margin: .15rem .3rem .15rem 0; }
      input, select, button { font: inherit; max-width: 100%; }
      #stage { position: relative; display: inline-block; max-width: 100%; }
      #stage canvas { display: block; max-width: 100%; image-rendering: pixelated; }
      #overlay { position: absolute; left: 0; top: 0; }
      #legend li { list-style: none; margin: .2rem 0; }
      .swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #000; vertical-align: middle; }
      :focus-visible { outline: 3px solid #1f77b4; }
      #status, #jobstatus { min-height: 1.5em; overflow-wrap: anywhere; }
      #jobprogress { width: 16rem; max-width: 100%; }
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
      <legend>Tile (answered at once)</legend>
      <label for="file">GeoTIFF or NPY tile</label> <input id="file" type="file" accept=".tif,.tiff,.npy">
      <button id="demo" type="button">Use a demo tile</button>
    </fieldset>
    <fieldset>
      <legend>Scene (a job)</legend>
      <label for="scenefile">GeoTIFF or NPY scene</label> <input id="scenefile" type="file" accept=".tif,.tiff,.npy">
      <button id="demoscene" type="button">Use a demo scene</button>
      <label for="jobprogress">Progress</label> <progress id="jobprogress" max="100" value="0">0 %</progress>
      <p id="jobstatus" role="status" aria-live="polite"></p>
      <label for="level">Result level</label> <select id="level" disabled></select>
    </fieldset>
    <fieldset>
      <legend>Display</legend>
      <label for="bands">False-colour bands (R,G,B)</label> <input id="bands" value="1,2,3" size="7">
      <label for="opacity">Overlay opacity</label> <input id="opacity" type="range" min="0" max="100" value="60">
    </fieldset>
    <p id="status" role="status" aria-live="polite"></p>
    <div id="stage"><canvas id="base" width="224" height="224" aria-label="false-colour image"></canvas><canvas id="overlay" width="224" height="224" tabindex="0" aria-label="label overlay: focus it and use the arrow keys to read the class under the cursor"></canvas></div>
    <p id="pointer" aria-live="polite"></p>
    <h2>Legend</h2>
    <ul id="legend"></ul>
    </main>
    <script>
    "use strict";
    const $ = (id) => document.getElementById(id);
    /** What is shown: the domain's classes, and a label raster (w×h) with its source image and georeference. */
    let classes = [], view = null, hidden = new Set(), cursor = null;

    function say(t) { $("status").textContent = t; }

    async function json(url, init) {
      const r = await fetch(url, Object.assign({ headers: { Accept: "application/json" } }, init || {}));
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

    // ---- NumPy ----

    /** A (C,H,W) NumPy array (float32, uint8, uint16, int16) as { c, h, w, data } (band-sequential). */
    function parseNpy(buf) {
      const v = new DataView(buf), hl = v.getUint16(8, true), header = new TextDecoder().decode(new Uint8Array(buf, 10, hl));
      const shape = header.match(/\(([^)]*)\)/)[1].split(",").filter(s => s.trim()).map(Number);
      const descr = header.match(/'descr':\s*'([^']+)'/)[1], off = 10 + hl;
      const T = { "<f4": Float32Array, "<u2": Uint16Array, "|u1": Uint8Array, "<i2": Int16Array }[descr];
      if (!T) return null;
      const data = new T(buf.slice(off));
      if (shape.length === 2) return { c: 1, h: shape[0], w: shape[1], data };
      return shape.length === 3 ? { c: shape[0], h: shape[1], w: shape[2], data } : null;
    }

    // ---- TIFF (enough of it for tiles, scenes and the result COG; read by byte ranges) ----

    const TYPE_SIZE = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };

    /** Opens a TIFF or BigTIFF through `read(offset, length) → Promise<ArrayBuffer>`: the first 16 KiB,
     *  then more only where an IFD or one of its arrays lies beyond (a COG keeps them at the start).
     *  The returned `read` serves what that first read already holds without asking again. */
    async function openTiff(read) {
      const head = new Uint8Array(await read(0, 16384));
      async function bytes(off, len) {
        if (off + len <= head.length) return new DataView(head.buffer, head.byteOffset + off, len);
        return new DataView(await read(off, len));
      }
      const d0 = new DataView(head.buffer);
      const le = d0.getUint16(0) === 0x4949;
      if (!le && d0.getUint16(0) !== 0x4d4d) throw new Error("not a TIFF");
      const big = d0.getUint16(2, le) === 43;
      const u64 = (d, o) => Number(d.getBigUint64(o, le));
      let next = big ? u64(d0, 8) : d0.getUint32(4, le);
      const ifds = [], seen = new Set();
      while (next && !seen.has(next) && ifds.length < 64) {
        seen.add(next);
        const cd = await bytes(next, big ? 8 : 2), n = big ? u64(cd, 0) : cd.getUint16(0, le);
        const es = big ? 20 : 12, base = next + (big ? 8 : 2);
        const ed = await bytes(base, n * es + (big ? 8 : 4));
        const tags = {};
        for (let i = 0; i < n; i++) {
          const o = i * es, tag = ed.getUint16(o, le), type = ed.getUint16(o + 2, le);
          const count = big ? u64(ed, o + 4) : ed.getUint32(o + 4, le), size = TYPE_SIZE[type] || 1;
          const inline = big ? 8 : 4, total = count * size;
          const vd = total <= inline ? new DataView(ed.buffer, ed.byteOffset + o + (big ? 12 : 8), inline)
                                     : await bytes(big ? u64(ed, o + 12) : ed.getUint32(o + 8, le), total);
          tags[tag] = readValues(vd, type, count, le);
        }
        next = big ? u64(ed, n * es) : ed.getUint32(n * es, le);
        ifds.push(makeIfd(tags));
      }
      const cached = async (off, len) => (off + len <= head.length ? head.slice(off, off + len).buffer : read(off, len));
      return { le, ifds, read: cached };
    }

    function readValues(d, type, count, le) {
      if (type === 2) return new TextDecoder().decode(new Uint8Array(d.buffer, d.byteOffset, count)).replace(/\0+$/, "");
      const out = [], size = TYPE_SIZE[type] || 1;
      for (let i = 0; i < count; i++) {
        const o = i * size;
        switch (type) {
          case 1: case 7: out.push(d.getUint8(o)); break;
          case 6: out.push(d.getInt8(o)); break;
          case 3: out.push(d.getUint16(o, le)); break;
          case 8: out.push(d.getInt16(o, le)); break;
          case 4: case 13: out.push(d.getUint32(o, le)); break;
          case 9: out.push(d.getInt32(o, le)); break;
          case 5: out.push(d.getUint32(o, le) / d.getUint32(o + 4, le)); break;
          case 10: out.push(d.getInt32(o, le) / d.getInt32(o + 4, le)); break;
          case 11: out.push(d.getFloat32(o, le)); break;
          case 12: out.push(d.getFloat64(o, le)); break;
          default: out.push(Number(d.getBigUint64(o, le)));
        }
      }
      return out;
    }

    function makeIfd(t) {
      const g = (k, dflt) => (t[k] === undefined ? dflt : t[k][0]);
      const tiled = t[322] !== undefined;
      const ifd = {
        width: g(256), height: g(257), bps: g(258, 1), compression: g(259, 1), photometric: g(262, 1), spp: g(277, 1),
        planar: g(284, 1), predictor: g(317, 1), format: g(339, 1), subfile: g(254, 0), colormap: t[320],
        blockW: tiled ? g(322) : g(256), blockH: tiled ? g(323) : Math.min(g(278, g(257)), g(257)),
        offsets: tiled ? t[324] : t[273], counts: tiled ? t[325] : t[279], nodata: t[42113],
      };
      if (t[33550] && t[33922]) {
        const [sx, sy] = t[33550], tp = t[33922];
        ifd.geo = { sx, sy, x0: tp[3] - tp[0] * sx, y0: tp[4] + tp[1] * sy, crs: crsOf(t[34735]) };
      }
      return ifd;
    }

    /** "EPSG:n" from the GeoKeyDirectory (projected, else geographic), or "" when it names none. */
    function crsOf(keys) {
      if (!keys) return "";
      let proj = 0, geog = 0;
      for (let i = 4; i + 3 < keys.length; i += 4) {
        if (keys[i + 1] !== 0) continue;
        if (keys[i] === 3072) proj = keys[i + 3];
        if (keys[i] === 2048) geog = keys[i + 3];
      }
      const code = proj && proj !== 32767 ? proj : geog && geog !== 32767 ? geog : 0;
      return code ? "EPSG:" + code : "";
    }

    async function inflate(bytes) {
      const s = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
      return new Uint8Array(await new Response(s).arrayBuffer());
    }

    /** TIFF's LZW (MSB-first codes, the code width grows one code early). */
    function unlzw(input, expected) {
      const out = new Uint8Array(expected);
      let n = 0, pos = 0, width = 9, prev = null;
      let dict = [];
      const reset = () => { dict = []; for (let i = 0; i < 256; i++) dict.push(Uint8Array.of(i)); dict.push(null, null); width = 9; };
      const emit = (s) => { for (let i = 0; i < s.length && n < out.length; i++) out[n++] = s[i]; };
      reset();
      while (pos + width <= input.length * 8) {
        let code = 0;
        for (let i = 0; i < width; i++, pos++) code = (code << 1) | ((input[pos >> 3] >> (7 - (pos & 7))) & 1);
        if (code === 257) break;
        if (code === 256) { reset(); prev = null; continue; }
        let entry;
        if (code < dict.length && dict[code]) entry = dict[code];
        else if (prev) { entry = new Uint8Array(prev.length + 1); entry.set(prev); entry[prev.length] = prev[0]; }
        else throw new Error("bad LZW code");
        emit(entry);
        if (prev) {
          const e = new Uint8Array(prev.length + 1); e.set(prev); e[prev.length] = entry[0];
          dict.push(e);
        }
        prev = entry;
        if (dict.length + 1 >= (1 << width) && width < 12) width++;
      }
      return out;
    }

    /** One block's samples as a typed array of the file's sample type (predictor undone, host byte order). */
    async function decodeBlock(tiff, ifd, index) {
      const off = ifd.offsets[index], len = ifd.counts[index];
      const spb = ifd.planar === 1 ? ifd.spp : 1, bytesPer = ifd.bps / 8;
      const rows = ifd.blockH, rowSamples = ifd.blockW * spb, want = rows * rowSamples * bytesPer;
      let raw = len ? new Uint8Array(await tiff.read(off, len)) : new Uint8Array(want);
      if (ifd.compression === 8 || ifd.compression === 32946) raw = await inflate(raw);
      else if (ifd.compression === 5) raw = unlzw(raw, want);
      else if (ifd.compression !== 1) throw new Error("TIFF compression " + ifd.compression + " is not shown by the viewer");
      const buf = new Uint8Array(want);
      buf.set(raw.subarray(0, Math.min(raw.length, want)));
      if (ifd.predictor === 3) {
        const rowBytes = rowSamples * bytesPer, tmp = new Uint8Array(rowBytes);
        for (let r = 0; r < rows; r++) {
          const row = buf.subarray(r * rowBytes, (r + 1) * rowBytes);
          for (let i = spb; i < rowBytes; i++) row[i] = (row[i] + row[i - spb]) & 255;
          for (let k = 0; k < rowSamples; k++)
            for (let j = 0; j < bytesPer; j++) tmp[k * bytesPer + j] = row[(bytesPer - 1 - j) * rowSamples + k];
          row.set(tmp);
        }
      } else if (!tiff.le && bytesPer > 1) {
        for (let i = 0; i < buf.length; i += bytesPer) buf.subarray(i, i + bytesPer).reverse();
      }
      const T = ifd.format === 3 ? (bytesPer === 8 ? Float64Array : Float32Array)
              : ifd.format === 2 ? ({ 1: Int8Array, 2: Int16Array, 4: Int32Array })[bytesPer]
              : ({ 1: Uint8Array, 2: Uint16Array, 4: Uint32Array })[bytesPer];
      const a = new T(buf.buffer);
      if (ifd.predictor === 2)
        for (let r = 0; r < rows; r++) for (let i = spb; i < rowSamples; i++) a[r * rowSamples + i] += a[r * rowSamples + i - spb];
      return a;
    }

    /** Bands `want` (0-based) of a whole IFD, band-sequential: { c, w, h, data } with data a Float32Array. */
    async function readTiffImage(tiff, ifd, want) {
      const w = ifd.width, h = ifd.height, n = w * h, data = new Float32Array(want.length * n);
      const across = Math.ceil(w / ifd.blockW), down = Math.ceil(h / ifd.blockH), per = across * down;
      const chunky = ifd.planar === 1, spb = chunky ? ifd.spp : 1;
      for (let by = 0; by < down; by++) for (let bx = 0; bx < across; bx++) {
        const blocks = chunky ? [[by * across + bx, want]] : want.map(b => [b * per + by * across + bx, [b]]);
        for (const [index, bands] of blocks) {
          const a = await decodeBlock(tiff, ifd, index);
          for (let y = 0; y < ifd.blockH && by * ifd.blockH + y < h; y++)
            for (let x = 0; x < ifd.blockW && bx * ifd.blockW + x < w; x++) {
              const p = (by * ifd.blockH + y) * w + bx * ifd.blockW + x;
              bands.forEach((b, k) => {
                const slot = chunky ? want.indexOf(b) : want.indexOf(bands[0]);
                data[slot * n + p] = a[(y * ifd.blockW + x) * spb + (chunky ? b : 0)];
              });
            }
        }
      }
      return { c: want.length, w, h, data };
    }

    /** A TIFF held in memory, read through the same range interface. */
    function memoryReader(buf) { return async (off, len) => buf.slice(off, Math.min(buf.byteLength, off + len)); }

    /** A URL read with HTTP range requests; `stats` counts the requests and bytes. */
    function rangeReader(url, stats) {
      return async (off, len) => {
        const r = await fetch(url, { headers: { Range: "bytes=" + off + "-" + (off + len - 1) } });
        if (r.status !== 206 && r.status !== 200) throw new Error(url + ": " + r.status);
        const b = await r.arrayBuffer();
        stats.requests++; stats.bytes += b.byteLength;
        return r.status === 200 ? b.slice(off, off + len) : b;
      };
    }

    // ---- drawing ----

    function bandPick(c) { return $("bands").value.split(",").map(s => Math.min(c, Math.max(1, parseInt(s, 10) || 1)) - 1); }

    /** The false-colour rendering of three bands of `img` ({ c, w, h, data }), stretched min–max per band,
     *  sampled to w×h (nearest) when the label raster is an overview. */
    function drawBase(img, w, h) {
      const base = $("base"), ctx = base.getContext("2d");
      base.width = w; base.height = h;
      if (!img) { ctx.fillStyle = "#ccc"; ctx.fillRect(0, 0, w, h); return; }
      const out = ctx.createImageData(w, h), n = img.w * img.h, pick = img.order || bandPick(img.c);
      pick.forEach((b, k) => {
        let lo = Infinity, hi = -Infinity;
        for (let i = 0; i < n; i++) { const x = img.data[b * n + i]; if (x < lo) lo = x; if (x > hi) hi = x; }
        for (let y = 0; y < h; y++) {
          const sy = Math.min(img.h - 1, Math.floor(y * img.h / h));
          for (let x = 0; x < w; x++) {
            const sx = Math.min(img.w - 1, Math.floor(x * img.w / w));
            out.data[4 * (y * w + x) + k] = 255 * (img.data[b * n + sy * img.w + sx] - lo) / ((hi - lo) || 1);
          }
        }
      });
      for (let i = 0; i < w * h; i++) out.data[4 * i + 3] = 255;
      ctx.putImageData(out, 0, 0);
    }

    function drawOverlay() {
      if (!view) return;
      const ov = $("overlay"), ctx = ov.getContext("2d");
      ov.width = view.w; ov.height = view.h;
      ov.style.width = $("base").clientWidth + "px";
      const img = ctx.createImageData(view.w, view.h), a = Math.round(2.55 * $("opacity").value);
      const rgb = classes.map(c => parseInt(c.color_hint || "888888", 16));
      for (let i = 0; i < view.labels.length; i++) {
        const k = view.labels[i];
        if (k >= rgb.length || hidden.has(k)) continue;
        img.data[4 * i] = rgb[k] >> 16; img.data[4 * i + 1] = (rgb[k] >> 8) & 255; img.data[4 * i + 2] = rgb[k] & 255; img.data[4 * i + 3] = a;
      }
      if (cursor) { const i = 4 * (cursor.y * view.w + cursor.x); img.data.set([255, 255, 255, 255], i); }
      ctx.putImageData(img, 0, 0);
    }

    /** Shows a label raster: `labels` (w×h), the image it came from (or null), and the georeference of
     *  the full-resolution raster with `scale` = full width / w (an overview level's factor). */
    function show(labels, w, h, image, geo, scale) {
      view = { labels, w, h, geo, scale: scale || 1, image };
      cursor = null;
      drawBase(image, w, h);
      const counts = new Array(classes.length).fill(0);
      for (const k of labels) if (k < counts.length) counts[k]++;
      legend(counts.map(n => n / labels.length));
      drawOverlay();
    }

    function describe(x, y) {
      const k = view.labels[y * view.w + x], c = classes[k];
      let t = "pixel (" + x + ", " + y + ")" + (view.scale !== 1 ? " of the 1/" + view.scale + " level" : "") + ": " +
              (c ? c.value + " " + (c.description || c.name) : "nodata");
      if (view.geo) {
        const g = view.geo, s = view.scale, mx = g.x0 + (x + 0.5) * s * g.sx, my = g.y0 - (y + 0.5) * s * g.sy;
        t += "; map " + mx.toFixed(2) + ", " + my.toFixed(2) + (g.crs ? " (" + g.crs + ")" : "");
      }
      $("pointer").textContent = t;
    }

    // ---- tiles ----

    /** The local image of an upload, for the false-colour rendering (null when it cannot be read here). */
    async function localImage(buf, type) {
      if (type === "application/x-npy") return { img: parseNpy(buf), geo: null };
      const tiff = await openTiff(memoryReader(buf)), ifd = tiff.ifds.find(i => !(i.subfile & 4)) || tiff.ifds[0];
      const picked = bandPick(ifd.spp), want = [...new Set(picked)], img = await readTiffImage(tiff, ifd, want);
      img.order = picked.map(b => want.indexOf(b));  // only the three drawn bands are read
      return { img, geo: ifd.geo || null };
    }

    async function withLocal(buf, type) {
      try { return await localImage(buf, type); } catch (e) { return { img: null, geo: null, why: String(e) }; }
    }

    function parseLabels(buf) {
      const v = new DataView(buf), hl = v.getUint16(8, true), header = new TextDecoder().decode(new Uint8Array(buf, 10, hl));
      const shape = header.match(/\(([^)]*)\)/)[1].split(",").filter(s => s.trim()).map(Number);
      return { w: shape[1], h: shape[0], data: new Uint8Array(buf.slice(10 + hl)) };
    }

    let upload = null;

    async function runTile(buf, type) {
      upload = { buf, type };
      const name = $("domain").value;
      say("segmenting…");
      const r = await fetch("/v1/domains/" + encodeURIComponent(name) + "/segment?output=npy&mode=tile",
                            { method: "POST", headers: { "Content-Type": type }, body: buf });
      if (!r.ok) { say("error " + r.status + ": " + (await r.text())); return; }
      const lab = parseLabels(await r.arrayBuffer()), local = await withLocal(buf, type);
      show(lab.data, lab.w, lab.h, local.img, local.geo, 1);
      say("done: " + lab.w + "×" + lab.h + ", batch size " + r.headers.get("X-SpectralX-Batch-Size") + ", " +
          r.headers.get("Server-Timing") + (local.why ? "; no false colour: " + local.why : ""));
    }

    function demoArray(h, w) {
      const card = $("card").textContent, c = parseInt((card.match(/(\d+) bands/) || [0, 4])[1], 10);
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

    // ---- scenes ----

    let scene = null;

    async function runScene(buf, type) {
      upload = { buf, type };
      const name = $("domain").value;
      $("jobprogress").value = 0; $("level").disabled = true; $("level").innerHTML = "";
      $("jobstatus").textContent = "submitting…";
      const r = await fetch("/v1/domains/" + encodeURIComponent(name) + "/jobs",
                            { method: "POST", headers: { "Content-Type": type, Accept: "application/json" }, body: buf });
      if (r.status !== 201) { $("jobstatus").textContent = "error " + r.status + ": " + (await r.text()); return; }
      const id = (await r.json()).jobID, local = await withLocal(buf, type);
      let st;
      for (let i = 0; ; i++) {
        st = await json("/v1/jobs/" + encodeURIComponent(id));
        $("jobprogress").value = st.progress; $("jobprogress").textContent = st.progress + " %";
        $("jobstatus").textContent = "job " + id + ": " + st.status + ", " + st.progress + " % (" + st.windows_done + " of " +
          st.windows_total + " windows" + (st.eta_seconds != null ? ", about " + Math.ceil(st.eta_seconds) + " s left" : "") + ")";
        if (st.status === "successful" || st.status === "failed" || st.status === "dismissed") break;
        await new Promise(res => setTimeout(res, Math.min(1000, 200 + 50 * i)));
      }
      if (st.status !== "successful") return;
      const stats = { requests: 0, bytes: 0 }, url = "/v1/jobs/" + encodeURIComponent(id) + "/results";
      const tiff = await openTiff(rangeReader(url, stats));
      const levels = tiff.ifds.filter(i => !(i.subfile & 4));
      scene = { id, tiff, levels, stats, image: local.img, url, size: st.result_bytes };
      const sel = $("level");
      levels.forEach((l, k) => {
        const o = document.createElement("option");
        o.value = k; o.textContent = (k === 0 ? "full resolution" : "overview 1/" + (levels[0].width / l.width)) + " — " + l.width + "×" + l.height;
        sel.append(o);
      });
      // The coarsest level at least 256 pixels wide: a first look that fetches little; finer levels on demand.
      let pick = 0;
      levels.forEach((l, k) => { if (l.width >= Math.min(256, levels[0].width)) pick = k; });
      sel.value = pick; sel.disabled = false;
      await showLevel(pick);
    }

    async function showLevel(k) {
      const l = scene.levels[k], before = { ...scene.stats };
      const img = await readTiffImage(scene.tiff, l, [0]);
      const labels = Uint8Array.from(img.data);
      show(labels, l.width, l.height, scene.image, scene.levels[0].geo || null, scene.levels[0].width / l.width);
      say("scene result " + l.width + "×" + l.height + " (" + (k ? "overview " + k : "full resolution") + " of " + scene.levels.length +
          " levels): " + (scene.stats.requests - before.requests) + " range request(s), " + (scene.stats.bytes - before.bytes) +
          " bytes for this level; " + scene.stats.requests + " request(s), " + scene.stats.bytes + " bytes in all of the " + scene.size +
          "-byte COG");
    }

    // ---- events ----

    function pointAt(x, y) {
      if (!view) return;
      cursor = { x: Math.max(0, Math.min(view.w - 1, x)), y: Math.max(0, Math.min(view.h - 1, y)) };
      describe(cursor.x, cursor.y);
    }

    $("overlay").addEventListener("mousemove", (e) => {
      if (!view) return;
      const r = e.target.getBoundingClientRect();
      const x = Math.floor((e.clientX - r.left) * view.w / r.width), y = Math.floor((e.clientY - r.top) * view.h / r.height);
      pointAt(x, y);
      cursor = null;
    });
    $("overlay").addEventListener("keydown", (e) => {
      if (!view) return;
      const step = e.shiftKey ? 16 : 1, c = cursor || { x: view.w >> 1, y: view.h >> 1 };
      const move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
      if (!move) return;
      e.preventDefault();
      pointAt(c.x + move[0], c.y + move[1]);
      drawOverlay();
    });
    $("domain").addEventListener("change", (e) => selectDomain(e.target.value).catch(err => say(String(err))));
    $("opacity").addEventListener("input", drawOverlay);
    $("bands").addEventListener("change", async () => {
      if (!view) return;
      if (upload) view.image = (await withLocal(upload.buf, upload.type)).img;
      if (scene) scene.image = view.image;
      drawBase(view.image, view.w, view.h);
    });
    $("demo").addEventListener("click", () => { scene = null; runTile(demoArray(224, 224), "application/x-npy").catch(err => say(String(err))); });
    $("demoscene").addEventListener("click", () => runScene(demoArray(512, 512), "application/x-npy").catch(err => say(String(err))));
    $("level").addEventListener("change", (e) => showLevel(Number(e.target.value)).catch(err => say(String(err))));
    const typeOf = (f) => f.name.toLowerCase().endsWith(".npy") ? "application/x-npy" : "image/tiff";
    $("file").addEventListener("change", async (e) => {
      const f = e.target.files[0];
      if (!f) return;
      scene = null;
      runTile(await f.arrayBuffer(), typeOf(f)).catch(err => say(String(err)));
    });
    $("scenefile").addEventListener("change", async (e) => {
      const f = e.target.files[0];
      if (f) runScene(await f.arrayBuffer(), typeOf(f)).catch(err => say(String(err)));
    });
    loadDomains().catch(err => say(String(err)));
    </script>
    </body>
    </html>

    """#
}
