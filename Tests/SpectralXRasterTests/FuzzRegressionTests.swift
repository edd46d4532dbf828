import Foundation
import Testing
import SpectralXRaster

/// Replays the fuzz seed corpora and every saved fuzzer finding (Fuzz/regressions/<target>/) through
/// the parsers with the same calls as the fuzz entry points: nothing may trap, every failure must be
/// a RasterError, and the tifffile/numpy-made seeds must decode.
@Suite struct FuzzRegressionTests {
    static let fuzzDir: String = {
        var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fuzz").path
    }()

    static func files(_ sub: String) -> [String] {
        let dir = fuzzDir + "/" + sub
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir + "/" + $0 }
    }

    @Test func tiffSeedsDecode() throws {
        let seeds = Self.files("corpus/tiff")
        if seeds.isEmpty { print("skipping: no Fuzz/corpus/tiff"); return }
        for f in seeds {
            let r = try TIFFReader(path: f, limits: .strict).read()
            #expect(r.width > 0 && r.bands > 0, "\(f)")
        }
    }

    @Test func npySeedsDecode() throws {
        for f in Self.files("corpus/npy") {
            do {
                let a = try NpyArray.read(path: f, limits: .strict)
                _ = a.toFloat32()
            } catch RasterError.npyObjectArray {
                #expect(f.hasSuffix("seed_object.npy"))
            }
        }
    }

    @Test func savedFindingsFailCleanly() throws {
        var n = 0
        for f in Self.files("regressions/tiff") {
            let d = try Data(contentsOf: URL(fileURLWithPath: f))
            do {
                let reader = try TIFFReader(data: d, limits: .strict)
                _ = try reader.read()
                if reader.info.bands > 1 { _ = try reader.read(bands: 1..<reader.info.bands, threads: 2) }
            } catch is RasterError {} catch { Issue.record("\(f): untyped \(error)") }
            do {
                let s = try TIFFScene(data: d, limits: .strict, cacheBytes: 1 << 16)
                let w = PixelWindow(x: s.width / 3, y: s.height / 3, width: max(1, s.width / 2), height: max(1, s.height / 2))
                _ = try s.read(w)
                _ = try s.readMask(w)
            } catch is RasterError {} catch { Issue.record("\(f): untyped \(error) (windowed)") }
            do {
                let s = try TIFFScene(source: DataByteSource(d), limits: .strict, cacheBytes: 1 << 16, firstRead: 64)
                let w = PixelWindow(x: s.width / 3, y: s.height / 3, width: max(1, s.width / 2), height: max(1, s.height / 2))
                _ = try s.read(w)
                _ = try s.readMask(w)
            } catch is RasterError {} catch { Issue.record("\(f): untyped \(error) (by range)") }
            n += 1
        }
        for f in Self.files("regressions/npy") {
            let d = try Data(contentsOf: URL(fileURLWithPath: f))
            do { let a = try NpyArray.decode(data: d, limits: .strict); _ = a.toFloat32(); _ = a.toInt64() }
            catch is RasterError {} catch { Issue.record("\(f): untyped \(error)") }
            do {
                let s = try NpyScene(data: d, limits: .strict)
                _ = try s.read(PixelWindow(x: 0, y: 0, width: s.width, height: s.height))
            } catch is RasterError {} catch { Issue.record("\(f): untyped \(error) (windowed)") }
            n += 1
        }
        print("replayed \(n) saved fuzzer inputs")
    }
}
