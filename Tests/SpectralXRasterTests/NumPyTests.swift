import Foundation
import Testing
import SpectralXRaster

@Suite struct NumPyTests {
    @Test func writerRoundTripsEveryType() throws {
        let shape = [2, 3, 4]
        func check<T: NpyScalar & Equatable & BinaryInteger>(_ v: [T]) throws {
            let a = try NpyArray.decode(try NpyWriter.encode(v, shape: shape).withUnsafeBytes { UnsafeRawBufferPointer($0) }.copy())
            #expect(a.shape == shape && a.dtype == T.npyDType && a.toInt64() == v.map { Int64($0) })
        }
        let base = (0..<24).map { $0 * 5 }
        try check(base.map { UInt8($0) }); try check(base.map { Int8($0 - 60) })
        try check(base.map { UInt16($0 * 500) }); try check(base.map { Int16($0 * 200 - 10000) })
        try check(base.map { UInt32($0 * 70000) }); try check(base.map { Int32($0 * -70000) })
        try check(base.map { UInt64($0) << 40 }); try check(base.map { Int64($0) * -(1 << 40) })
        let f = base.map { Float($0) / 3 }
        let af = try NpyArray.decode(try NpyWriter.encode(f, shape: shape).withUnsafeBytes { UnsafeRawBufferPointer($0) }.copy())
        #expect(af.toFloat32() == f && af.toFloat64() == f.map(Double.init))
        let d = base.map { Double($0) / 7 }
        #expect(try NpyArray.decode(try NpyWriter.encode(d, shape: shape).withUnsafeBytes { UnsafeRawBufferPointer($0) }.copy()).toFloat64() == d)
    }

    @Test func headerIsAlignedAndParsableByShape() throws {
        let bytes = try NpyWriter.encode([Float](repeating: 1, count: 6), shape: [6])
        let hlen = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + hlen) % 64 == 0 && bytes[9 + hlen] == 0x0A)
        let text = String(decoding: bytes[10..<(10 + hlen)], as: UTF8.self)
        #expect(text.contains("'shape': (6,)") && text.contains("'descr': '<f4'"))
        let scalar = try NpyWriter.encode([Double(3)], shape: [])
        #expect(try NpyArray.decode(scalar.withUnsafeBytes { UnsafeRawBufferPointer($0) }.copy()).toFloat64() == [3])
    }

    @Test func bigEndianFortranAndVersionsByHand() throws {
        // 2×3 int16 big-endian Fortran order: values v[i][j] = 10*i + j stored column-major.
        var raw: [UInt8] = []
        for j in 0..<3 { for i in 0..<2 { let v = Int16(10 * i + j); raw += [UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] } }
        for version in 1...3 {
            let bytes = try NpyWriter.encodeRaw(raw, dtype: NpyDType(kind: .int, size: 2, littleEndian: false), shape: [2, 3], fortranOrder: true, version: version)
            #expect(bytes[6] == UInt8(version))
            let a = try NpyArray.decode(bytes.withUnsafeBytes { UnsafeRawBufferPointer($0) }.copy())
            #expect(a.fortranOrder && a.toInt64() == [0, 1, 2, 10, 11, 12] && a.toFloat32() == [0, 1, 2, 10, 11, 12])
        }
    }

    @Test func refusesObjectAndMalformedHeaders() throws {
        func header(_ dict: String, data: [UInt8] = []) -> [UInt8] {
            var h = Array(dict.utf8) + [0x0A]
            while (10 + h.count) % 64 != 0 { h.insert(0x20, at: h.count - 1) }
            return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h + data
        }
        func err(_ b: [UInt8]) -> RasterError? {
            do { _ = try b.withUnsafeBytes { try NpyArray.decode($0) }; return nil } catch let e as RasterError { return e } catch { return nil }
        }
        guard case .npyObjectArray? = err(header("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", data: [0x80, 0x04])) else {
            Issue.record("object array not refused"); return
        }
        #expect(err(header("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", data: [0, 0, 0, 0])).map { "\($0)" }?.contains("truncated") == true)
        #expect(err(header("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }")) == .unsupported("npy dtype '<c8'", kind: .npyDtype))
        #expect(err(header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }")) == .unsupported("npy structured dtype", kind: .npyDtype))
        #expect(err(header("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }")) != nil)
        #expect(err(header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }")) != nil)
        #expect(err(header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,")) != nil)
        #expect(err([0x93, 0x4E, 0x55]) != nil)
        #expect(err(Array("PK\u{3}\u{4}hello world".utf8)) != nil)
        var big = header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }")
        big[6] = 9
        #expect(err(big) == .unsupported("npy format version 9.0", kind: .npyFeature))
        // Every prefix of a valid file is refused cleanly.
        let valid = try NpyWriter.encode([Float](repeating: 2, count: 8), shape: [2, 4])
        for n in 0..<valid.count { #expect(err(Array(valid[0..<n])) != nil) }
    }

    /// Files written by NumPy itself: every dtype, byte order, memory order and format version.
    @Test func readsNumPyProducedFiles() throws {
        guard pythonHas(["numpy"]) else { print("skipping: python3 with numpy not available"); return }
        let dir = try makeTempDir("npy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, out) = try run("python3", [scriptsDir + "/gen_npy_matrix.py", dir])
        #expect(status == 0, "\(out)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".npy") && !$0.hasSuffix(".ref.npy") && $0 != "object.npy" && $0 != "scalar.npy" }
        #expect(files.count == 120)
        for f in files {
            let a = try NpyArray.read(path: "\(dir)/\(f)")
            let ref = try NpyArray.read(path: "\(dir)/\(f.dropLast(4)).ref.npy")
            #expect(a.shape == [2, 3, 5] && a.toFloat64() == ref.toFloat64(), "\(f)")
            #expect(a.toInt64() == ref.toFloat64().map { Int64($0) } || a.dtype.kind == .float, "\(f)")
            #expect(a.fortranOrder == f.contains("_F_"), "\(f)")
        }
        #expect(throws: RasterError.self) { try NpyArray.read(path: dir + "/object.npy") }
        #expect(try NumPy.readFloat32(path: dir + "/scalar.npy").values == [2.5])
    }

    @Test func readsFixtureFast() throws {
        guard let p = Shared.fixture("inputA.npy"), let idx = Shared.fixture("areA_idx_s.npy") else { print("skipping: \(Shared.skipReason)"); return }
        let t0 = Date()
        let (shape, v) = try NumPy.readFloat32(path: p)
        print("readFloat32 inputA.npy \(shape) in \(Date().timeIntervalSince(t0)) s")
        #expect(shape == [2, 32, 224, 224] && v.count == 2 * 32 * 224 * 224)
        let (ishape, iv) = try NumPy.readInt64(path: idx)
        #expect(ishape == [4, 2, 784] && iv.allSatisfy { $0 >= 0 && $0 < 196 })
    }
}

extension UnsafeRawBufferPointer {
    /// Copies into a fresh array-backed buffer so the test owns the memory.
    func copy() -> UnsafeRawBufferPointer {
        let m = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        if count > 0 { m.copyMemory(from: self) }
        return UnsafeRawBufferPointer(m)
    }
}
