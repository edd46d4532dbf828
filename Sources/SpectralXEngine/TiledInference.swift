import Foundation
import SpectralXModel
import SpectralXRaster

/// `mode=tile`: the scene is min–max normalised per band at full resolution (same formula as the
/// upstream pipeline, over the whole scene), cut into 224×224 windows with `overlap` pixels shared
/// between neighbours, each window's logits weighted by a linear ramp towards its edges and summed,
/// then divided by the summed weights. Windows run through the shared scheduler (so they batch with
/// other requests and respect its limits) one row of windows at a time, and only one window row of
/// logit accumulators is alive at once: memory grows with the scene width, not its area.
/// Windows that reach past a scene narrower or shorter than 224 replicate the edge pixels.
struct TiledInference {
    let engine: InferenceEngine
    let domain: LoadedDomain
    let raster: Raster
    let options: SegmentationOptions
    /// Progress, cancellation and batch priority of a background (job) run; nil for a request.
    var control: SceneRunControl? = nil

    static let size = ModelShape.imageSize

    /// Window origins along one axis: stride 224 − overlap, the last window flush with the edge.
    static func origins(length: Int, overlap: Int) -> [Int] {
        guard length > size else { return [0] }
        let stride = size - overlap
        var xs = Array(Swift.stride(from: 0, to: length - size, by: stride))
        xs.append(length - size)
        return xs
    }

    /// Blend weight of a window position along one axis: 1 in the middle, falling linearly over
    /// `overlap` pixels at each edge; never 0, so edge pixels covered by one window keep their value.
    static func ramp(overlap: Int) -> [Float] {
        (0..<size).map { i in
            let d = Float(min(i, size - 1 - i) + 1)
            return overlap == 0 ? 1 : min(1, d / Float(overlap + 1))
        }
    }

    func run() throws -> SegmentationResult {
        let clock = ContinuousClock()
        let t0 = clock.now
        let W = raster.width, H = raster.height, C = raster.bands, K = domain.classes, S = Self.size
        let scene = try normalizedScene()
        let preprocess = InferenceEngine.seconds(t0.duration(to: clock.now))
        let xs = Self.origins(length: W, overlap: options.overlap)
        let ys = Self.origins(length: H, overlap: options.overlap)
        let ramp = Self.ramp(overlap: options.overlap)

        var labels: [UInt8]? = options.scores ? nil : [UInt8](repeating: 0, count: W * H)
        var scores: [Float]? = options.scores ? [Float](repeating: 0, count: K * W * H) : nil
        // Accumulators for scene rows [accTop, accTop + S): logits (K, S, W) and weights (S, W).
        var acc = [Float](repeating: 0, count: K * S * W)
        var weight = [Float](repeating: 0, count: S * W)
        var accTop = 0
        var batchSizes: [Int] = []
        var queueSeconds = 0.0, runSeconds = 0.0
        var postprocess = 0.0
        let group = max(1, engine.scheduler.configuration.maxBatchSize)
        var admitted = false
        let total = xs.count * ys.count
        var done = 0
        control?.progress(0, total)

        for (row, y0) in ys.enumerated() {
            // Finalise rows that no later window reaches, then shift the accumulators up.
            if y0 > accTop {
                let tp = clock.now
                finalize(rows: accTop..<y0, accTop: accTop, acc: acc, weight: weight, labels: &labels, scores: &scores)
                shift(by: y0 - accTop, acc: &acc, weight: &weight)
                accTop = y0
                postprocess += InferenceEngine.seconds(tp.duration(to: clock.now))
            }
            _ = row
            var start = 0
            while start < xs.count {
                try control?.cancellation?.check()
                let chunk = Array(xs[start..<min(xs.count, start + group)])
                let inputs = chunk.map { x0 in window(scene, x0: x0, y0: y0, C: C, W: W, H: H) }
                // The first group is admitted like any request (may be refused when the queue is full);
                // later groups of an admitted scene wait for room instead.
                let outs = try engine.scheduler.submit(model: domain, inputs: inputs, timeout: options.timeout, waitForRoom: admitted,
                                                      priority: control?.priority ?? .interactive)
                admitted = true
                let tp = clock.now
                for (i, x0) in chunk.enumerated() {
                    batchSizes.append(outs[i].batchSize)
                    queueSeconds = max(queueSeconds, outs[i].queueSeconds)
                    accumulate(outs[i].value, x0: x0, y0: y0, accTop: accTop, ramp: ramp, W: W, H: H, K: K, acc: &acc, weight: &weight)
                }
                runSeconds += outs.first?.runSeconds ?? 0
                postprocess += InferenceEngine.seconds(tp.duration(to: clock.now))
                start += group
                done += chunk.count
                control?.progress(done, total)
            }
        }
        let tp = clock.now
        finalize(rows: accTop..<H, accTop: accTop, acc: acc, weight: weight, labels: &labels, scores: &scores)
        postprocess += InferenceEngine.seconds(tp.duration(to: clock.now))
        return SegmentationResult(width: W, height: H, classes: K, labels: labels, scores: scores, batchSizes: batchSizes,
                                  windows: xs.count * ys.count,
                                  timings: [("preprocess", preprocess), ("queue", queueSeconds), ("inference", runSeconds),
                                            ("postprocess", postprocess)])
    }

    /// Per-band min–max over the whole scene, float64 arithmetic as upstream, float32 result (C, H, W).
    private func normalizedScene() throws -> [Float] {
        let per = raster.pixelsPerBand
        var out = [Float](repeating: 0, count: per * raster.bands)
        out.withUnsafeMutableBufferPointer { dst in
            for b in 0..<raster.bands {
                let band = raster.bandFloat64(b)
                var m = band[0], M = band[0]
                for v in band { if v < m { m = v }; if v > M { M = v } }
                let o = dst.baseAddress! + b * per
                if M - m == 0 {
                    for i in 0..<per { o[i] = Float(band[i]) }
                } else {
                    let den = (M - m) + 1e-8
                    for i in 0..<per { o[i] = Float((band[i] - m) / den) }
                }
            }
        }
        return out
    }

    /// One (C, 224, 224) window; positions past the scene edge replicate the last row/column.
    private func window(_ scene: [Float], x0: Int, y0: Int, C: Int, W: Int, H: Int) -> [Float] {
        let S = Self.size
        var w = [Float](repeating: 0, count: C * S * S)
        scene.withUnsafeBufferPointer { src in
            w.withUnsafeMutableBufferPointer { dst in
                for c in 0..<C {
                    for r in 0..<S {
                        let sy = min(y0 + r, H - 1)
                        let srow = src.baseAddress! + (c * H + sy) * W
                        let drow = dst.baseAddress! + (c * S + r) * S
                        if x0 + S <= W {
                            drow.update(from: srow + x0, count: S)
                        } else {
                            for i in 0..<S { drow[i] = srow[min(x0 + i, W - 1)] }
                        }
                    }
                }
            }
        }
        return w
    }

    private func accumulate(_ logits: [Float], x0: Int, y0: Int, accTop: Int, ramp: [Float], W: Int, H: Int, K: Int,
                            acc: inout [Float], weight: inout [Float]) {
        let S = Self.size
        let cols = min(S, W - x0), rows = min(S, H - y0)
        let r0 = y0 - accTop
        logits.withUnsafeBufferPointer { lg in
            acc.withUnsafeMutableBufferPointer { a in
                weight.withUnsafeMutableBufferPointer { wt in
                    for r in 0..<rows {
                        let wy = ramp[r]
                        let wrow = wt.baseAddress! + (r0 + r) * W + x0
                        for i in 0..<cols { wrow[i] += wy * ramp[i] }
                        for k in 0..<K {
                            let src = lg.baseAddress! + (k * S + r) * S
                            let dst = a.baseAddress! + (k * S + r0 + r) * W + x0
                            for i in 0..<cols { dst[i] += wy * ramp[i] * src[i] }
                        }
                    }
                }
            }
        }
    }

    /// Blended logits of scene rows `rows` → labels (argmax) or softmax scores.
    private func finalize(rows: Range<Int>, accTop: Int, acc: [Float], weight: [Float],
                          labels: inout [UInt8]?, scores: inout [Float]?) {
        guard !rows.isEmpty else { return }
        let W = raster.width, H = raster.height, K = domain.classes, S = Self.size
        let n = rows.count * W
        var plane = [Float](repeating: 0, count: K * n)
        for k in 0..<K {
            for (j, y) in rows.enumerated() {
                let r = y - accTop
                for x in 0..<W {
                    let wsum = weight[r * W + x]
                    plane[k * n + j * W + x] = wsum > 0 ? acc[(k * S + r) * W + x] / wsum : 0
                }
            }
        }
        if scores != nil {
            ClassScores.softmax(&plane, classes: K, pixels: n)
            for k in 0..<K {
                let dst = k * W * H + rows.lowerBound * W
                scores!.replaceSubrange(dst..<(dst + n), with: plane[(k * n)..<((k + 1) * n)])
            }
        } else if let l = try? Preprocessing.argmax(plane, classes: K, pixels: n) {
            labels!.replaceSubrange((rows.lowerBound * W)..<(rows.lowerBound * W + n), with: l)
        }
    }

    /// Moves accumulator rows [by, S) to [0, S − by) and clears the rest.
    private func shift(by d: Int, acc: inout [Float], weight: inout [Float]) {
        let W = raster.width, K = domain.classes, S = Self.size
        guard d > 0 else { return }
        let keep = max(0, S - d)
        for k in 0..<K {
            let base = k * S * W
            if keep > 0 {
                for i in 0..<(keep * W) { acc[base + i] = acc[base + d * W + i] }
            }
            for i in (keep * W)..<(S * W) { acc[base + i] = 0 }
        }
        if keep > 0 { for i in 0..<(keep * W) { weight[i] = weight[d * W + i] } }
        for i in (keep * W)..<(S * W) { weight[i] = 0 }
    }
}
