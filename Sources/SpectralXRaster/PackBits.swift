/// PackBits run-length coding (TIFF compression 32773), bounded by the output capacity.
enum PackBits {
    /// Decodes into `dst`; returns bytes produced (stops when `dst` is full).
    static func decode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int {
        var i = 0, o = 0
        let n = src.count, cap = dst.count
        while i < n && o < cap {
            let h = Int(Int8(bitPattern: src[i])); i += 1
            if h >= 0 {
                let len = min(h + 1, n - i, cap - o)
                if len > 0 { dst.baseAddress!.advanced(by: o).copyMemory(from: src.baseAddress!.advanced(by: i), byteCount: len) }
                i += h + 1; o += len
            } else if h != -128 {
                guard i < n else { break }
                let len = min(1 - h, cap - o)
                dst.baseAddress!.advanced(by: o).initializeMemory(as: UInt8.self, repeating: src[i], count: len)
                i += 1; o += len
            }
        }
        return o
    }

    /// Encodes `src` as PackBits, each row of `rowBytes` packed separately (as TIFF requires).
    static func encode(_ src: UnsafeRawBufferPointer, rowBytes: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(src.count + src.count / 64 + 16)
        var rowStart = 0
        let step = max(rowBytes, 1)
        while rowStart < src.count {
            let end = min(rowStart + step, src.count)
            var i = rowStart
            while i < end {
                // Run of equal bytes?
                var run = 1
                while i + run < end && run < 128 && src[i + run] == src[i] { run += 1 }
                if run >= 2 {
                    out.append(UInt8(bitPattern: Int8(1 - run)))
                    out.append(src[i])
                    i += run
                    continue
                }
                // Literal: extend until a run of 2+ starts or 128 bytes.
                var j = i
                while j < end && j - i < 128 {
                    if j + 1 < end && src[j] == src[j + 1] { break }
                    j += 1
                }
                if j == i { j = i + 1 }
                out.append(UInt8(j - i - 1))
                for k in i..<j { out.append(src[k]) }
                i = j
            }
            rowStart = end
        }
        return out
    }
}
