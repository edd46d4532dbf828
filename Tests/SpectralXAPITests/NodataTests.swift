import Foundation
import SpectralXRaster
import Testing

@Suite("Nodata and georeferencing", .serialized)
struct NodataTests {
    /// A georeferenced 4-band uint16 GeoTIFF with GDAL_NODATA=255 and a 10×10 block of nodata pixels:
    /// the answer keeps the tags and labels exactly that block 255.
    @Test func nodataPixelsKeepTheNodataValue() throws {
        let w = 64, h = 48
        var v = [UInt16](repeating: 0, count: 4 * w * h)
        for b in 0..<4 { for y in 0..<h { for x in 0..<w {
            let nodata = x < 10 && y < 10
            v[(b * h + y) * w + x] = nodata ? 255 : UInt16(1000 + 300 * sin(Double(x + 3 * b) * 0.2) + 200 * cos(Double(y) * 0.1))
        } } }
        let geo = GeoReference(pixelScale: [20, 20, 0], tiepoints: [0, 0, 0, 300000, 5_000_000, 0],
                               geoKeyDirectory: [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32632], nodata: "255")
        let tiff = try GeoTIFFWriter.encode(try Raster(width: w, height: h, bands: 4, values: v, geo: geo))
        let r = try SharedServer.fake.request("POST", "/v1/domains/syn/segment", headers: [("Content-Type", "image/tiff")],
                                                  body: Data(tiff))
        #expect(r.status == 200, "\(r.text)")
        let out = try TIFFReader(data: r.body).read()
        #expect(out.geo.crsAndTransform == geo.crsAndTransform && out.geo.nodata == "255")
        let labels = try #require(out.values(as: UInt8.self))
        for y in 0..<h { for x in 0..<w {
            let nodata = x < 10 && y < 10
            #expect((labels[y * w + x] == 255) == nodata)
        } }
    }
}
