import Foundation
import SpectralXAPI
import SpectralXEngine
import SpectralXEngineTestSupport
import SpectralXRaster
import Synchronization
import Testing

/// An opener over files held in memory, named by URL: the API's by-reference paths on the fake
/// runner without a network (the real opener's own tests run over loopback HTTP and S3).
final class MemoryOpener: SceneOpening {
    private let files = Mutex<[String: Data]>([:])

    func put(_ href: String, _ data: Data) { files.withLock { $0[href] = data } }

    static func etag(_ d: Data) -> String { "\"\(d.count)-\(d.hashValue & 0xffff_ffff)\"" }

    func open(_ reference: SceneReference, limits: RasterLimits) throws -> OpenedScene {
        var pinned = reference
        var sources: [any RasterSource] = []
        for (i, s) in reference.sources.enumerated() {
            guard let d = files.withLock({ $0[s.href] }) else { throw SceneReferenceError.notFound(url: s.href, status: 404) }
            let tag = Self.etag(d)
            if let was = s.etag, was != tag { throw SceneReferenceError.changed(url: s.href, pinned: was, now: tag) }
            pinned.sources[i].etag = tag
            sources.append(try TIFFScene(data: d, limits: limits))
        }
        return OpenedScene(source: try Self.stack(sources, reference: reference), pinned: pinned, bytesFetched: { 0 })
    }

    func document(_ href: String, limit: Int) throws -> Data {
        guard let d = files.withLock({ $0[href] }) else { throw SceneReferenceError.notFound(url: href, status: 404) }
        return d
    }
}

/// Scenes by reference through the API (JSON bodies with `href` and `stac_item`), on the fake runner.
@Suite("Scenes by reference", .serialized)
struct ReferenceTests {
    static let opener = MemoryOpener()
    static let server: JobTestServer = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-ref-jobs-\(UUID().uuidString)")
        // An engine of its own: JobTests' dismissal checks count the shared engine's windows.
        return try! JobTestServer(directory: dir, engine: JobScenes.fakeEngine(root: FakeStore.shared), opener: opener)
    }()
    var s: JobTestServer { Self.server }
    static let json = [("Content-Type", "application/json")]
    static let base = "http://127.0.0.1:9/scenes/"

    static func body(_ inputs: [String: Any]) -> Data { try! JSONSerialization.data(withJSONObject: ["inputs": inputs]) }

    /// `twoWindows` split into one single-band file per band, described by a STAC item whose asset
    /// keys do not sort in band order and whose wavelengths are the domain's (a few nm off).
    static func stacScene(skewBand3 skew: Double = 0) throws -> Data {
        let scene = try TIFFReader(data: JobScenes.twoWindows).read()
        let wavelengths = try #require(JobScenes.engine.store.domain("syn")).config.wavelengths
        let keys = ["d", "b", "c", "a"]  // band 1 is asset "d", band 2 "b", …
        var assets: [String: Any] = [:]
        let plane = scene.width * scene.height * 2
        for b in 0..<4 {
            let bytes = Array(scene.data[b * plane..<(b + 1) * plane])
            let one = try Raster(width: scene.width, height: scene.height, bands: 1, sampleType: scene.sampleType, data: bytes, geo: scene.geo)
            opener.put(base + "band\(b).tif", Data(try GeoTIFFWriter.encode(one)))
            let w = wavelengths[b] + (b == 2 ? skew : 0.003)
            assets[keys[b]] = ["href": "band\(b).tif", "type": "image/tiff; application=geotiff", "roles": ["data"],
                               "eo:bands": [["name": "B\(b + 1)", "center_wavelength": w]]]
        }
        assets["thumbnail"] = ["href": "thumb.png", "type": "image/png", "roles": ["thumbnail"]]
        return try JSONSerialization.data(withJSONObject: ["type": "Feature", "stac_version": "1.0.0", "id": "split", "assets": assets])
    }

    @Test func aJobByHrefEqualsTheUpload() throws {
        Self.opener.put(Self.base + "scene.tif", JobScenes.twoWindows)
        let r = try s.request("POST", "/v1/domains/syn/jobs", headers: Self.json, body: Self.body(["href": Self.base + "scene.tif"]))
        #expect(r.status == 201, "\(r.text)")
        let id = try #require(r.json["jobID"] as? String)
        // The job directory holds the pinned reference, not the scene (until the job ends).
        let stored = try Data(contentsOf: s.directory.appendingPathComponent(id).appendingPathComponent("input.json"))
        let reference = try SceneReference.decode(stored)
        #expect(reference.sources == [SceneReference.Source(href: Self.base + "scene.tif", etag: MemoryOpener.etag(JobScenes.twoWindows))])
        #expect(try s.waitFinal(id).last?["status"] as? String == "successful")
        let result = try s.request("GET", "/v1/jobs/\(id)/results")
        #expect(try JobScenes.labels(result.body) == JobScenes.reference)
    }

    @Test func stacBandsPairedByWavelengthEqualTheStackedUpload() throws {
        Self.opener.put(Self.base + "item.json", try Self.stacScene())
        let r = try s.request("POST", "/v1/domains/syn/jobs", headers: Self.json, body: Self.body(["stac_item": Self.base + "item.json"]))
        #expect(r.status == 201, "\(r.text)")
        let id = try #require(r.json["jobID"] as? String)
        #expect(try s.waitFinal(id).last?["status"] as? String == "successful")
        #expect(try JobScenes.labels(try s.request("GET", "/v1/jobs/\(id)/results").body) == JobScenes.reference)
        // The same JSON on /segment, and the assets named in band order.
        let upload = try s.request("POST", "/v1/domains/syn/segment?mode=tile&output=npy", headers: [("Content-Type", "image/tiff")],
                                   body: JobScenes.twoWindows)
        let byItem = try s.request("POST", "/v1/domains/syn/segment?mode=tile&output=npy", headers: Self.json,
                                   body: Self.body(["stac_item": Self.base + "item.json"]))
        let byAssets = try s.request("POST", "/v1/domains/syn/segment?mode=tile&output=npy", headers: Self.json,
                                     body: Self.body(["stac_item": Self.base + "item.json", "assets": ["d", "b", "c", "a"]]))
        #expect(upload.status == 200 && byItem.status == 200 && byAssets.status == 200, "\(byItem.text) \(byAssets.text)")
        #expect(byItem.body == upload.body && byAssets.body == upload.body)
        // Several hrefs stacked in order.
        let hrefs = (0..<4).map { Self.base + "band\($0).tif" }
        let stacked = try s.request("POST", "/v1/domains/syn/segment?mode=tile&output=npy", headers: Self.json, body: Self.body(["href": hrefs]))
        #expect(stacked.body == upload.body, "\(stacked.text)")
    }

    @Test func refusalsNameTheProblem() throws {
        Self.opener.put(Self.base + "skewed.json", try Self.stacScene(skewBand3: 0.3))
        let unmatched = try s.request("POST", "/v1/domains/syn/jobs", headers: Self.json, body: Self.body(["stac_item": Self.base + "skewed.json"]))
        #expect(unmatched.errorCode! == (422, "unmatched_band"), "\(unmatched.text)")
        #expect(unmatched.errorMessage?.contains("band 3") == true, "\(unmatched.text)")
        let unknown = try s.request("POST", "/v1/domains/syn/jobs", headers: Self.json,
                                    body: Self.body(["stac_item": Self.base + "item.json", "assets": ["z"]]))
        #expect(unknown.errorCode! == (422, "unknown_asset"), "\(unknown.text)")
        let missing = try s.request("POST", "/v1/domains/syn/jobs", headers: Self.json, body: Self.body(["href": Self.base + "nothing.tif"]))
        #expect(missing.errorCode! == (422, "reference_not_found"))
        #expect(missing.errorMessage?.contains(Self.base + "nothing.tif") == true, "\(missing.text)")
        let secret = try s.request("POST", "/v1/domains/syn/jobs", headers: Self.json, body: Self.body(["href": "http://user:hunter2@127.0.0.1:9/x.tif"]))
        #expect(secret.errorCode! == (400, "invalid_parameter") && !secret.text.contains("hunter2"), "\(secret.text)")
        for bad: [String: Any] in [[:], ["href": []], ["href": 3], ["href": "x", "stac_item": "y"], ["href": "ftp://127.0.0.1/x"],
                                   ["stac_item": "http://127.0.0.1:9/i.json", "wavelength_tolerance_um": -1], ["colour": 1]] {
            let r = try s.request("POST", "/v1/domains/syn/segment", headers: Self.json, body: Self.body(bad))
            #expect(r.errorCode! == (400, "invalid_parameter"), "\(bad): \(r.text)")
        }
        #expect(try s.request("POST", "/v1/domains/syn/segment", headers: Self.json, body: Data("[".utf8)).errorCode! == (400, "invalid_parameter"))
    }

    /// A file replaced after the job was accepted: the run reads it with the pinned ETag and fails naming both.
    @Test func aFileReplacedAfterSubmissionFailsTheJob() throws {
        let href = Self.base + "replaced.tif"
        Self.opener.put(href, JobScenes.twoWindows)
        // A first job keeps the single runner busy while the file is replaced.
        let busy = try s.request("POST", "/v1/domains/syn/jobs", headers: [("Content-Type", "image/tiff")], body: JobScenes.threeWindows)
        let r = try s.request("POST", "/v1/domains/syn/jobs", headers: Self.json, body: Self.body(["href": href]))
        #expect(r.status == 201, "\(r.text)")
        let id = try #require(r.json["jobID"] as? String)
        Self.opener.put(href, JobScenes.threeWindows)
        let last = try s.waitFinal(id).last ?? [:]
        #expect(last["status"] as? String == "failed")
        let message = last["message"] as? String ?? ""
        #expect(message.contains(href) && message.contains(MemoryOpener.etag(JobScenes.twoWindows))
                && message.contains(MemoryOpener.etag(JobScenes.threeWindows)), "\(message)")
        _ = try s.waitFinal(try #require(busy.json["jobID"] as? String))
    }

    @Test func withoutAnOpenerJSONBodiesAreRefusedFromTheHead() throws {
        let body = Self.body(["href": Self.base + "scene.tif"])
        let segment = try SharedServer.fake.request("POST", "/v1/domains/syn/segment", headers: Self.json, body: body)
        #expect(segment.errorCode! == (403, "fetch_not_allowed"), "\(segment.text)")
    }
}
