import Foundation
import Testing
import SpectralXRaster

/// STAC Item parsing (STAC 1.0 + eo, STAC 1.1 `bands`, the old index form) and the pairing of asset
/// bands with a domain's wavelengths.
@Suite struct STACItemTests {
    /// Sentinel-2 L2A band centres (µm) as Earth Search catalogues them.
    static let s2: [(String, Double)] = [
        ("B01", 0.443), ("B02", 0.49), ("B03", 0.56), ("B04", 0.665), ("B05", 0.704), ("B06", 0.74), ("B07", 0.783),
        ("B08", 0.842), ("B8A", 0.865), ("B09", 0.945), ("B11", 1.61), ("B12", 2.19),
    ]

    /// An item in the STAC 1.0 + eo form: one asset per band, a 3-band visual asset, a thumbnail.
    static func item10() -> Data {
        var assets: [String: Any] = [:]
        for (name, w) in s2 {
            assets[name] = ["href": "\(name).tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                            "roles": ["data"], "eo:bands": [["name": name, "center_wavelength": w]]]
        }
        assets["visual"] = ["href": "http://127.0.0.1:9/elsewhere/TCI.tif", "type": "image/tiff; application=geotiff",
                            "eo:bands": [["name": "B04", "center_wavelength": 0.665], ["name": "B03", "center_wavelength": 0.56],
                                         ["name": "B02", "center_wavelength": 0.49]]]
        assets["thumbnail"] = ["href": "thumb.png", "type": "image/png", "roles": ["thumbnail"]]
        assets["metadata"] = ["href": "meta.xml", "type": "application/xml", "roles": ["metadata"]]
        return try! JSONSerialization.data(withJSONObject: ["type": "Feature", "stac_version": "1.0.0", "id": "S2B_T33_0",
                                                            "properties": [:], "assets": assets])
    }

    @Test func parsesAssetsAndResolvesHrefs() throws {
        let item = try STACItem(json: Self.item10(), base: URL(string: "http://127.0.0.1:9/items/S2B/item.json"))
        #expect(item.id == "S2B_T33_0")
        #expect(item.assets.count == Self.s2.count + 1, "thumbnail and metadata are not rasters")
        let b04 = try #require(item.assets.first { $0.key == "B04" })
        #expect(b04.href == "http://127.0.0.1:9/items/S2B/B04.tif")
        #expect(b04.bands == [STACItem.Band(name: "B04", commonName: nil, centerWavelength: 0.665)])
        #expect(item.assets.first { $0.key == "visual" }?.href == "http://127.0.0.1:9/elsewhere/TCI.tif")
    }

    @Test func pairsByWavelengthEachBandOnce() throws {
        let item = try STACItem(json: Self.item10(), base: URL(string: "http://127.0.0.1:9/item.json"))
        // A domain built for 4 bands catalogued a few nm apart from Earth Search's values.
        let picks = try item.pair(wavelengths: [0.4924, 0.5598, 0.6646, 0.8328])
        #expect(picks.map(\.name) == ["B02", "B03", "B04", "B08"])
        // Each asset band once: the single-band B04 asset (exactly 0.665) and the visual asset's B04
        // (same wavelength) are distinct offers; sorting by key makes the choice stable.
        let twice = try item.pair(wavelengths: [0.665, 0.665])
        #expect(Set(twice.map(\.asset)) == ["B04", "visual"])
        #expect(try item.pair(wavelengths: [0.665, 0.665]) == twice, "the same item pairs the same way")
        // The closest pair is taken first: 0.85 is nearer B08 (0.842) than B8A (0.865) but 0.845 is nearer
        // still, so 0.85 gets B8A.
        let close = try item.pair(wavelengths: [0.85, 0.845])
        #expect(close.map(\.name) == ["B8A", "B08"])
    }

    @Test func anUnmatchedBandIsNamed() throws {
        let item = try STACItem(json: Self.item10(), base: URL(string: "http://127.0.0.1:9/item.json"))
        #expect(throws: STACError.self) { try item.pair(wavelengths: [0.49, 1.0]) }
        do {
            _ = try item.pair(wavelengths: [0.49, 1.0])
        } catch {
            #expect(error.description.contains("band 2 (1 µm)"), "\(error)")
            #expect(error.description.contains("B09 (B09) at 0.945"), "\(error)")
        }
        // Three wants, only two offers near 0.49: the third is unmatched, not silently reused.
        #expect(throws: STACError.self) { try item.pair(wavelengths: [0.49, 0.49, 0.49]) }
        #expect(throws: STACError.self) { try item.pair(wavelengths: [0.49, 0.5], tolerance: 0.001) }
    }

    @Test func assetsByNameInOrder() throws {
        let item = try STACItem(json: Self.item10(), base: URL(string: "http://127.0.0.1:9/item.json"))
        let picks = try item.pick(assets: ["B8A", "visual", "B02"])
        #expect(picks.map(\.asset) == ["B8A", "visual", "visual", "visual", "B02"])
        #expect(picks.map(\.band) == [0, 0, 1, 2, 0])
        #expect(throws: STACError.unknownAsset("B10", known: item.assets.map(\.key))) { try item.pick(assets: ["B10"]) }
    }

    @Test func stac11BandsAndIndexForm() throws {
        let v11: [String: Any] = ["type": "Feature", "stac_version": "1.1.0", "id": "ls9", "properties": [:], "assets": [
            "red": ["href": "s3://bucket/LC09_SR_B4.TIF", "type": "image/tiff; application=geotiff",
                    "bands": [["name": "SR_B4", "eo:common_name": "red", "eo:center_wavelength": 0.65]]],
            "nir08": ["href": "s3://bucket/LC09_SR_B5.TIF", "type": "image/tiff; application=geotiff",
                      "bands": [["name": "SR_B5", "eo:center_wavelength": 0.86]]],
        ]]
        let item = try STACItem(json: try JSONSerialization.data(withJSONObject: v11), base: nil)
        #expect(try item.pair(wavelengths: [0.86, 0.655]).map(\.href) == ["s3://bucket/LC09_SR_B5.TIF", "s3://bucket/LC09_SR_B4.TIF"])
        #expect(item.assets.first?.bands.first?.commonName == "red" || item.assets.last?.bands.first?.commonName == "red")

        let old: [String: Any] = ["type": "Feature", "id": "old", "properties": [
            "eo:bands": [["name": "B1", "center_wavelength": 0.48], ["name": "B2", "center_wavelength": 0.56]]],
            "assets": ["all": ["href": "a.tif", "type": "image/tiff", "eo:bands": [1, 0]]]]
        let o = try STACItem(json: try JSONSerialization.data(withJSONObject: old), base: URL(string: "http://127.0.0.1:9/x/item.json"))
        #expect(o.assets[0].bands.map(\.name) == ["B2", "B1"])
        #expect(try o.pair(wavelengths: [0.48]) == [STACItem.BandPick(asset: "all", href: "http://127.0.0.1:9/x/a.tif", band: 1,
                                                                      name: "B1", centerWavelength: 0.48)])
    }

    @Test func badItemsAreRefusedWithTheReason() {
        func refused(_ object: Any, _ fragment: String) {
            do {
                _ = try STACItem(json: try JSONSerialization.data(withJSONObject: object), base: URL(string: "http://127.0.0.1:9/item.json"))
                Issue.record("accepted \(object)")
            } catch {
                #expect("\(error)".contains(fragment), "\(error)")
            }
        }
        refused(["type": "FeatureCollection"], "Feature")
        refused(["type": "Feature", "assets": [:]], "no \"assets\"")
        refused(["type": "Feature", "assets": ["a": ["type": "image/tiff"]]], "has no \"href\"")
        refused(["type": "Feature", "assets": ["a": ["href": "x.png", "type": "image/png"]]], "no raster asset")
        refused(["type": "Feature", "properties": [:], "assets": ["a": ["href": "a.tif", "type": "image/tiff", "eo:bands": [3]]]],
                "eo:band 3")
        #expect(throws: STACError.self) { try STACItem(json: Data("[1]".utf8), base: nil) }
        // A relative href needs the item's URL.
        let relative = try! JSONSerialization.data(withJSONObject: ["type": "Feature", "assets": ["a": ["href": "a.tif", "type": "image/tiff"]]])
        #expect(throws: STACError.self) { try STACItem(json: relative, base: nil) }
        let noWavelengths = STACItem(id: "x", assets: [STACItem.Asset(key: "a", href: "a.tif", mediaType: "image/tiff", roles: [], bands: [])])
        #expect(throws: STACError.noWavelengths(item: "x")) { try noWavelengths.pair(wavelengths: [0.5]) }
    }

    @Test func bandSubsetPicksPlanes() throws {
        let values: [UInt16] = (0..<(3 * 4 * 2)).map { UInt16($0) }
        let r = try Raster(width: 4, height: 2, bands: 3, values: values)
        let s = try BandSubsetSource(r, bands: [2, 0])
        let w = PixelWindow(x: 1, y: 0, width: 2, height: 2)
        let out = try s.read(w)
        #expect(out.bands == 2 && s.bandNodata.count == 2)
        #expect(out.values(as: UInt16.self) == [17, 18, 21, 22, 1, 2, 5, 6])
        #expect(throws: RasterError.self) { try BandSubsetSource(r, bands: [3]) }
    }
}
