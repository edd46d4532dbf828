import Foundation
import Testing
import SpectralXRaster

/// A TIFF read by range (`TIFFScene(source:)`) reads the same pixels as the same bytes held in
/// place, fetching the header in few reads and then only the blocks a window touches.
@Suite struct ByteRangeSceneTests {
    @Test(arguments: [
        TIFFWriteOptions(compression: .deflate, predictor: 2, planarConfiguration: 1, tileWidth: 32, tileLength: 48),
        TIFFWriteOptions(compression: .lzw, predictor: 1, planarConfiguration: 2, tileWidth: 16, tileLength: 16),
        TIFFWriteOptions(compression: .packBits, planarConfiguration: 1, rowsPerStrip: 7),
        TIFFWriteOptions(compression: .none, planarConfiguration: 2, rowsPerStrip: 5, bigEndian: true, bigTIFF: true),
    ])
    func byRangeEqualsInPlace(options: TIFFWriteOptions) throws {
        let r = try SceneIOTests.pattern(width: 75, height: 61, bands: 3)
        let bytes = Data(try GeoTIFFWriter.encode(r, options: options))
        let local = try TIFFScene(data: bytes, cacheBytes: 4096)
        // A 64-byte first read makes every IFD and tag value a further read; 16 KiB holds them all.
        for first in [64, 16 << 10] {
            let source = DataByteSource(bytes)
            // A tiny cache evicts blocks of a window while it is read (they are fetched again); a large one does not.
            let remote = try TIFFScene(source: source, cacheBytes: first == 64 ? 4096 : 1 << 20, firstRead: first)
            #expect(remote.info == local.info)
            // Our writer puts the IFD after the data: the first read finds its offset, the second the IFD.
            if first == 16 << 10 { #expect(source.counters.requests <= 2, "header in at most two reads") }
            for w in [PixelWindow(x: 0, y: 0, width: 75, height: 61), PixelWindow(x: 13, y: 9, width: 40, height: 33),
                      PixelWindow(x: 74, y: 60, width: 1, height: 1)] {
                let before = source.counters.requests
                #expect(try remote.read(w).data == local.read(w).data, "window \(w), first read \(first)")
                if first != 64 { #expect(source.counters.requests - before <= 1, "one read per window") }
            }
        }
        // Read by range, the whole-image decoder is refused (it would need every byte at hand).
        #expect(throws: RasterError.self) { try TIFFScene(source: DataByteSource(bytes)).reader.read() }
    }

    /// A window inside one tile fetches that tile's bytes and nothing else.
    @Test func fetchesOnlyTouchedBlocks() throws {
        let r = try SceneIOTests.pattern(width: 128, height: 128, bands: 2)
        let bytes = Data(try GeoTIFFWriter.encode(r, options: TIFFWriteOptions(compression: .deflate, planarConfiguration: 1,
                                                                               tileWidth: 32, tileLength: 32)))
        let source = DataByteSource(bytes)
        let scene = try TIFFScene(source: source, cacheBytes: 1 << 20)
        let headerBytes = source.counters.bytes
        _ = try scene.read(PixelWindow(x: 40, y: 40, width: 20, height: 20))   // inside tile (1,1)
        let local = try TIFFReader(data: bytes)
        #expect(source.counters.bytes - headerBytes == local.blockExtent(5).count)
        _ = try scene.read(PixelWindow(x: 40, y: 40, width: 20, height: 20))   // cached: nothing fetched
        #expect(source.counters.bytes - headerBytes == local.blockExtent(5).count)
    }

    /// Hostile headers fail as RasterErrors by range too (offsets past the end, truncation).
    @Test func truncatedFileFailsCleanly() throws {
        let r = try SceneIOTests.pattern(width: 64, height: 64, bands: 1)
        let bytes = Data(try GeoTIFFWriter.encode(r, options: TIFFWriteOptions(compression: .deflate, tileWidth: 16, tileLength: 16)))
        for cut in [4, 9, 100, bytes.count / 2, bytes.count - 10] {
            #expect(throws: RasterError.self) {
                let s = try TIFFScene(source: DataByteSource(bytes.prefix(cut)), firstRead: 64)
                _ = try s.read(PixelWindow(x: 0, y: 0, width: 64, height: 64))
            }
        }
    }
}
