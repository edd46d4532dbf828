/// TIFF LZW (compression 5): MSB-first codes of 9–12 bits, Clear = 256, EOI = 257, code width
/// switched one code early as libtiff does. Decoding is bounded by the output capacity.
enum LZW {
    /// Decodes into `dst`; returns bytes produced. Strings are (offset, length) references into
    /// the output already written, so decoding needs no per-code allocation.
    static func decode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws -> Int {
        let cap = dst.count
        guard cap > 0 else { return 0 }
        if src.count >= 2 && src[0] == 0 && (src[1] & 0x01) != 0 {
            throw RasterError.unsupported("old-style (pre-TIFF 6.0, LSB-first) LZW")
        }
        let out = dst.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var starts = [Int](repeating: 0, count: 4096)
        var lengths = [Int](repeating: 0, count: 4096)
        return starts.withUnsafeMutableBufferPointer { starts in
            lengths.withUnsafeMutableBufferPointer { lengths in
                var o = 0
                var bitBuf: UInt64 = 0
                var bitCount = 0
                var ip = 0
                let n = src.count
                var width = 9
                var next = 258
                var prevStart = -1, prevLen = 0
                while o < cap {
                    while bitCount < width {
                        guard ip < n else { return o }  // input ends without EOI: keep what we have
                        bitBuf = (bitBuf << 8) | UInt64(src[ip]); ip += 1; bitCount += 8
                    }
                    let code = Int((bitBuf >> UInt64(bitCount - width)) & UInt64((1 << width) - 1))
                    bitCount -= width
                    if code == 257 { break }
                    if code == 256 { width = 9; next = 258; prevStart = -1; continue }
                    let curStart = o
                    var curLen: Int
                    if code < 256 {
                        out[o] = UInt8(code); o += 1; curLen = 1
                    } else if code < next && prevStart >= 0 {
                        let s = starts[code], l = lengths[code]
                        let m = min(l, cap - o)
                        (out + o).update(from: out + s, count: m)
                        o += m; curLen = l
                    } else if code == next && prevStart >= 0 {
                        let m = min(prevLen, cap - o)
                        (out + o).update(from: out + prevStart, count: m)
                        o += m
                        if o < cap { out[o] = out[prevStart]; o += 1 }
                        curLen = prevLen + 1
                    } else {
                        // Invalid code: stop here; the caller reports the short block.
                        return o
                    }
                    if prevStart >= 0 && next < 4096 {
                        starts[next] = prevStart; lengths[next] = prevLen + 1
                        next += 1
                        if next == 511 { width = 10 } else if next == 1023 { width = 11 } else if next == 2047 { width = 12 }
                    }
                    prevStart = curStart; prevLen = curLen
                    if o >= cap { break }
                }
                return o
            }
        }
    }

    /// Encodes `src` as TIFF LZW (Clear first, Clear again when the table is full, EOI last).
    static func encode(_ src: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(src.count / 2 + 16)
        var acc: UInt64 = 0
        var accBits = 0
        var width = 9
        @inline(__always) func put(_ code: Int) {
            acc = (acc << UInt64(width)) | UInt64(code)
            accBits += width
            while accBits >= 8 {
                out.append(UInt8(truncatingIfNeeded: acc >> UInt64(accBits - 8)))
                accBits -= 8
            }
        }
        // Open-addressing hash of (prefix << 8 | byte) -> code, cleared via a generation counter.
        let hsize = 8192
        var keys = [Int](repeating: 0, count: hsize)
        var codes = [Int](repeating: 0, count: hsize)
        var gens = [Int](repeating: 0, count: hsize)
        var gen = 1
        var next = 258
        put(256)
        guard src.count > 0 else { put(257); if accBits > 0 { out.append(UInt8(truncatingIfNeeded: acc << UInt64(8 - accBits))) }; return out }
        var ent = Int(src[0])
        var i = 1
        while i < src.count {
            let c = Int(src[i]); i += 1
            let key = (ent << 8) | c
            var h = (key &* 2654435761) & (hsize - 1)
            var found = -1
            while gens[h] == gen {
                if keys[h] == key { found = codes[h]; break }
                h = (h + 1) & (hsize - 1)
            }
            if found >= 0 { ent = found; continue }
            put(ent)
            ent = c
            gens[h] = gen; keys[h] = key; codes[h] = next
            next += 1
            if next == 4094 {
                put(256); width = 9; next = 258; gen += 1
            } else if next > (1 << width) - 1 {
                width += 1
            }
        }
        put(ent)
        next += 1
        if next == 4094 { put(256); width = 9 } else if next > (1 << width) - 1 { width += 1 }
        put(257)
        if accBits > 0 { out.append(UInt8(truncatingIfNeeded: acc << UInt64(8 - accBits))) }
        return out
    }
}
