import Foundation
import Testing
import SpectralXRaster

@Suite struct RasterIOTests {
    @Test func detectsFormats() throws {
        let t = try GeoTIFFWriter.encodeLabels([1, 2, 3, 4], width: 2, height: 2, geo: GeoReference())
        #expect(RasterFormat.detect(Data(t)) == .tiff)
        let be = try GeoTIFFWriter.encode(try Raster(width: 1, height: 1, bands: 1, values: [UInt8(1)]), options: TIFFWriteOptions(bigEndian: true, bigTIFF: true))
        #expect(RasterFormat.detect(Data(be)) == .tiff)
        #expect(RasterFormat.detect(Data(try NpyWriter.encode([Float(1)], shape: [1]))) == .npy)
        #expect(RasterFormat.detect(Data([1, 2, 3])) == .unknown)
    }

    @Test func npyTileBecomesRaster() throws {
        let vals: [UInt16] = (0..<(2 * 3 * 4)).map { UInt16($0 * 1000) }
        let a = try NpyArray.decode(data: Data(try NpyWriter.encode(vals, shape: [2, 3, 4])))
        let r = try a.toRaster()
        #expect(r.bands == 2 && r.height == 3 && r.width == 4 && r.values(as: UInt16.self) == vals)
        // Big-endian Fortran (H, W) float32.
        var raw: [UInt8] = []
        for j in 0..<3 { for i in 0..<2 { withUnsafeBytes(of: Float(10 * i + j).bitPattern.bigEndian) { raw += $0 } } }
        let f = try NpyArray.decode(data: Data(try NpyWriter.encodeRaw(raw, dtype: NpyDType(kind: .float, size: 4, littleEndian: false), shape: [2, 3], fortranOrder: true)))
        #expect(try f.toRaster().values(as: Float.self) == [0, 1, 2, 10, 11, 12])
        #expect(throws: RasterError.self) { try NpyArray.decode(data: Data(try NpyWriter.encode([Float(1)], shape: [1]))).toRaster() }
    }
}
