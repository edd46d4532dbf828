import Foundation
import SpectralXTestSupport
import Testing
import SpectralXBlobStore
import SpectralXFetch
import SpectralXRaster
import SpectralXRemote
#if canImport(Glibc)
import Glibc
#endif

/// The fetch allow-list's address check, on addresses themselves (nothing connects).
@Suite struct FetchPolicyTests {
    @Test func specialRangesAreNamed() {
        let special: [String: String] = [
            "127.0.0.1": "loopback", "127.9.9.9": "loopback", "::1": "loopback",
            "169.254.169.254": "link-local, cloud metadata", "169.254.1.2": "link-local", "fe80::1": "link-local",
            "10.1.2.3": "private", "172.16.0.1": "private", "172.31.255.255": "private", "192.168.1.1": "private",
            "fc00::1": "private (unique local)", "fd12:3456::1": "private (unique local)",
            "0.0.0.0": "unspecified", "::": "unspecified", "100.64.0.1": "shared (carrier-grade NAT)",
            "::ffff:10.0.0.1": "private", "::ffff:169.254.169.254": "link-local, cloud metadata", "::ffff:127.0.0.1": "loopback",
            "224.0.0.1": "multicast", "255.255.255.255": "broadcast", "ff02::1": "multicast",
        ]
        for (text, range) in special {
            #expect(FetchAddress(text)?.specialRange == range, "\(text)")
        }
        for text in ["8.8.8.8", "172.32.0.1", "172.15.255.255", "192.169.0.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "100.128.0.1"] {
            #expect(FetchAddress(text) != nil && FetchAddress(text)?.specialRange == nil, "\(text) is public")
        }
    }

    @Test func internalAddressesNeedTheirOwnEntry() throws {
        let policy = try FetchPolicy(allow: ["https://data.example.com/cogs/", "127.0.0.1:8080", "localhost:9000"])
        let named = try policy.allowing(URL(string: "https://data.example.com/cogs/a.tif")!)
        // A public name that resolves to an internal address (DNS rebinding, a hostile record) is refused.
        for text in ["169.254.169.254", "10.0.0.5", "192.168.0.1", "127.0.0.1", "::1", "fe80::1", "fd00::1", "0.0.0.0", "::ffff:10.0.0.1"] {
            #expect(throws: FetchError.self, "\(text)") {
                try policy.check(address: FetchAddress(text)!, allowedBy: named, target: "t")
            }
        }
        try policy.check(address: FetchAddress("93.184.216.34")!, allowedBy: named, target: "t")
        // An entry naming the address (or localhost for loopback) allows it.
        let loop = try policy.allowing(URL(string: "http://127.0.0.1:8080/x.tif")!)
        try policy.check(address: FetchAddress("127.0.0.1")!, allowedBy: loop, target: "t")
        #expect(throws: FetchError.self) { try policy.check(address: FetchAddress("10.0.0.1")!, allowedBy: loop, target: "t") }
        let local = try policy.allowing(URL(string: "http://localhost:9000/x.tif")!)
        try policy.check(address: FetchAddress("::1")!, allowedBy: local, target: "t")
        #expect(throws: FetchError.self) { try policy.check(address: FetchAddress("169.254.169.254")!, allowedBy: local, target: "t") }
    }

    @Test func urlsOutsideTheListAreRefused() throws {
        let policy = try FetchPolicy(allow: ["https://data.example.com/cogs/", "127.0.0.1:8080,s3://bucket/scenes/"])
        for ok in ["https://data.example.com/cogs/a.tif", "https://data.example.com:443/cogs/x/y.tif?sig=1",
                   "http://127.0.0.1:8080/any", "s3://bucket/scenes/a.tif"] {
            #expect(throws: Never.self, "\(ok)") { try policy.allowing(URL(string: ok)!) }
        }
        for bad in ["https://data.example.com/other/a.tif", "http://data.example.com/cogs/a.tif", "https://data.example.com:8443/cogs/a",
                    "https://data.example.com/cogs/../secret", "https://data.example.com/cogs/%2e%2e/secret",
                    "http://127.0.0.1:8081/x", "http://127.0.0.1/x", "file:///etc/passwd", "ftp://data.example.com/cogs/a",
                    "https://user:pw@data.example.com/cogs/a.tif", "s3://bucket/other/a.tif", "s3://other/scenes/a.tif",
                    "http://169.254.169.254/latest/meta-data/", "gopher://127.0.0.1:8080/"] {
            #expect(throws: FetchError.self, "\(bad)") { try policy.allowing(URL(string: bad)!) }
        }
        // Off unless allowed.
        #expect(throws: FetchError.self) { try FetchPolicy().allowing(URL(string: "https://data.example.com/a.tif")!) }
        // Credentials never appear in the refusal.
        do { try policy.allowing(URL(string: "https://user:s3cret@data.example.com/cogs/a.tif?X-Amz-Signature=abc")!) } catch {
            #expect(!"\(error)".contains("s3cret") && !"\(error)".contains("abc"))
        }
    }
}

/// Scenes by reference over loopback: nginx, moto's S3, and a scripted range server for faults.
@Suite(.serialized) struct RemoteSceneTests {
    static let cog: Result<(path: String, data: Data), MotoServer.SkipReason> = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-remote-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("scene.tif").path
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/test/make_cog.py").standardized.path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, path, "--size", "2048", "--bands", "3", "--tile", "256", "--mask"]
        do { try p.run() } catch { return .failure(.init(description: "cannot run python3: \(error)")) }
        p.waitUntilExit()
        guard p.terminationStatus == 0, let d = FileManager.default.contents(atPath: path) else {
            return .failure(.init(description: "make_cog.py failed (needs rasterio and rio-cogeo)"))
        }
        return .success((path, d))
    }()

    func fetcher(_ allow: [String], environment: [String: String] = [:]) throws -> Fetcher {
        var c = Fetcher.Configuration(policy: try FetchPolicy(allow: allow))
        c.backoffBase = 0.01
        c.environment = environment
        return Fetcher(configuration: c)
    }

    /// Reads the same windows (and mask) from `remote` and from the local file.
    func expectSamePixels(_ remote: TIFFScene, _ local: TIFFScene) throws {
        #expect(remote.info == local.info)
        #expect(remote.hasMask && local.hasMask)
        for w in [PixelWindow(x: 0, y: 0, width: 300, height: 200), PixelWindow(x: 1000, y: 1500, width: 700, height: 548),
                  PixelWindow(x: 2047, y: 0, width: 1, height: 2048)] {
            #expect(try remote.read(w).data == local.read(w).data, "window \(w)")
            #expect(try remote.readMask(w) == local.readMask(w), "mask \(w)")
        }
    }

    @Test func nginxServesTheSamePixelsAndOnlyTheTouchedTiles() throws {
        let cog = try Self.cog.get()
        let nginx = try NginxServer.start(serving: cog.path).get()
        defer { nginx.stop() }
        let fetcher = try fetcher(["127.0.0.1:\(nginx.port)"])
        let href = "http://127.0.0.1:\(nginx.port)/scene.tif"
        let local = try TIFFScene(path: cog.path)
        let remote = try RemoteScene.open(href, fetcher: fetcher, cacheBytes: 64 << 20)
        let headerBytes = fetcher.counters.bytes, headerRequests = fetcher.counters.requests
        #expect(headerRequests <= 2, "header and IFDs in one or two requests")
        // A window-aligned crop of 2×2 tiles: fetched bytes against the tiles' compressed size.
        let w = PixelWindow(x: 512, y: 768, width: 512, height: 512)
        _ = try remote.read(w)
        let across = 2048 / 256
        let tiles = [3 * across + 2, 3 * across + 3, 4 * across + 2, 4 * across + 3]
        let compressed = tiles.reduce(0) { $0 + local.reader.blockExtent($1).count }
        let cropBytes = fetcher.counters.bytes - headerBytes, cropRequests = fetcher.counters.requests - headerRequests
        print("by-range crop \(w): \(cropBytes) bytes in \(cropRequests) requests for tiles of \(compressed) compressed bytes"
              + " (ratio \(String(format: "%.3f", Double(cropBytes) / Double(compressed)))); header \(headerBytes) bytes in \(headerRequests) requests;"
              + " file \(cog.data.count) bytes")
        #expect(Double(cropBytes) <= 1.2 * Double(compressed))
        #expect(cropRequests <= 2, "two tile rows, each one coalesced request")
        try expectSamePixels(remote, local)
        #expect(fetcher.counters.bytes < cog.data.count)
        #expect(FetchCounters.process.bytes >= fetcher.counters.bytes)
    }

    @Test func motoS3ServesTheSamePixels() throws {
        let cog = try Self.cog.get()
        let moto = try MotoServer.plain.get()
        let store = try moto.store(prefix: "")
        try store.put("remote/scene.tif", data: cog.data)
        let env = ["AWS_ACCESS_KEY_ID": MotoServer.credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": MotoServer.credentials.secretAccessKey,
                   "AWS_ENDPOINT_URL_S3": moto.endpoint.absoluteString, "AWS_REGION": "us-east-1"]
        let fetcher = try fetcher(["s3://\(MotoServer.bucket)/remote/"], environment: env)
        let remote = try RemoteScene.open("s3://\(MotoServer.bucket)/remote/scene.tif", fetcher: fetcher)
        try expectSamePixels(remote, try TIFFScene(path: cog.path))
        #expect(fetcher.counters.bytes < cog.data.count)
        // Not on the list: refused before any request.
        #expect(throws: RemoteError.self) { try fetcher.open("s3://\(MotoServer.bucket)/elsewhere/scene.tif") }
        // Replaced mid-read: the pinned ETag no longer matches.
        let again = try RemoteScene.open("s3://\(MotoServer.bucket)/remote/scene.tif", fetcher: fetcher, cacheBytes: 1 << 20)
        try store.put("remote/scene.tif", data: cog.data + Data([0]))
        do {
            _ = try again.read(PixelWindow(x: 1024, y: 1024, width: 256, height: 256))
            Issue.record("a replaced object was read")
        } catch let e as RemoteError {
            guard case .changed(let url, let pinned, let now) = e else { Issue.record("\(e)"); return }
            #expect(url.contains("remote/scene.tif") && pinned != now && "\(e)".contains(pinned))
        }
    }

    /// An S3 read that the server answers 503 twice: retried by the store's client, and the retries
    /// counted with the scene's other fetches (a loopback server speaking just enough S3).
    @Test func s3RetriesAreCounted() throws {
        let cog = try Self.cog.get()
        let server = try RangeServer(cog.data)
        defer { server.close() }
        let env = ["AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1",
                   "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:\(server.port)"]
        let f = try fetcher(["s3://bucket/"], environment: env)
        let scene = try RemoteScene.open("s3://bucket/scene.tif", fetcher: f, cacheBytes: 1 << 20)
        let before = f.counters.retries
        server.inject([.status(503), .status(503)])
        let w = PixelWindow(x: 0, y: 512, width: 256, height: 256)
        #expect(try scene.read(w).data == TIFFScene(path: cog.path).read(w).data)
        #expect(f.counters.retries == before + 2)
    }

    @Test func faultsAreRetriedOrNamed() throws {
        let cog = try Self.cog.get()
        let server = try RangeServer(cog.data)
        defer { server.close() }
        let href = "http://127.0.0.1:\(server.port)/scene.tif"
        let local = try TIFFScene(path: cog.path)

        // 503 twice, then served: success, two retries counted.
        server.inject([.status(503), .status(503)])
        let f1 = try fetcher(["127.0.0.1:\(server.port)"])
        let scene = try RemoteScene.open(href, fetcher: f1, cacheBytes: 1 << 20)
        #expect(f1.counters.retries == 2)
        // A reset in the middle of a tile: retried, the pixels are right.
        server.inject([.resetMidBody])
        let w = PixelWindow(x: 0, y: 512, width: 256, height: 256)
        #expect(try scene.read(w).data == local.read(w).data)
        #expect(f1.counters.retries == 3)
        // Every later request carried the pinned ETag.
        #expect(server.requests.last?.contains("If-Match: \(server.etag)") == true)

        // Replaced mid-read: 412 → an error naming the URL and both ETags.
        let pinned = server.etag
        server.replace(cog.data + Data([1, 2, 3]))
        do {
            _ = try scene.read(PixelWindow(x: 1536, y: 1536, width: 256, height: 256))
            Issue.record("a replaced file was read")
        } catch let e as RemoteError {
            #expect(e == .changed(url: href, pinned: pinned, current: server.etag), "\(e)")
            #expect("\(e)".contains(pinned) && "\(e)".contains(server.etag) && "\(e)".contains(href))
        }

        // 404: the URL is named.
        do {
            _ = try f1.open("http://127.0.0.1:\(server.port)/missing.tif")
            Issue.record("404 opened")
        } catch let e as RemoteError {
            #expect(e == .notFound(url: "http://127.0.0.1:\(server.port)/missing.tif"))
        }
    }

    /// A scene split into per-band files on 10, 20 and 60 m grids, described by a STAC item
    /// (pystac): bands paired with the domain's wavelengths, stacked, equal the local stack.
    @Test func stacItemBandsByWavelength() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-stac-\(getpid())").path
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../scripts/test/make_stac_scene.py").standardized.path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, dir, "--size", "600"]
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "make_stac_scene.py (needs rasterio and pystac)")
        let nginx = try NginxServer.start(serving: dir + "/item.json").get()
        defer { nginx.stop() }
        let base = "http://127.0.0.1:\(nginx.port)"
        let fetcher = try fetcher(["\(base)/"])
        // The domain's order, not the item's; B8A (0.865) must not take B09 (0.945) or the reverse.
        let wavelengths = [0.665, 0.49, 0.945, 0.865, 1.61]
        let item = try STACItem(json: try fetcher.document("\(base)/item.json"), base: URL(string: "\(base)/item.json"))
        let picked = try item.pair(wavelengths: wavelengths)
        #expect(picked.map(\.asset) == ["B04", "B02", "B09", "B8A", "B11"])
        #expect(picked[0].href == "\(base)/B04.tif")
        let remote = try RemoteScene.open(stack: picked.map(\.href), fetcher: fetcher)
        let names = ["B04", "B02", "B09", "B8A", "B11"].map { "\(dir)/\($0).tif" }
        let local = try StackedRasterSource(try names.map { try TIFFScene(path: $0) }, names: names)
        #expect(remote.width == 600 && remote.bands == 5)
        for w in [PixelWindow(x: 0, y: 0, width: 600, height: 600), PixelWindow(x: 37, y: 411, width: 224, height: 150)] {
            #expect(try remote.read(w).data == local.read(w).data, "window \(w)")
        }
        // Named assets, in the caller's order.
        #expect(try item.pick(assets: ["B12", "B03"]).map(\.asset) == ["B12", "B03"])
        // A band no asset is near: named in the error.
        do {
            _ = try item.pair(wavelengths: [0.665, 1.375])
            Issue.record("unmatched band accepted")
        } catch {
            guard case .unmatchedBand(let i, let um, _, _)? = error as? STACError else { Issue.record("\(error)"); return }
            #expect(i == 1 && um == 1.375 && "\(error)".contains("1.375"))
        }
        // Each asset band is used once, and a "visual" asset (8-bit true colour, not reflectance) is
        // never paired: two domain bands at the same wavelength cannot share B04.
        #expect(throws: STACError.self) { try item.pair(wavelengths: [0.665, 0.665]) }
    }

    /// Refusals happen before any connection: an unlisted loopback port, file:, a redirect from an
    /// allowed origin to a disallowed one.
    @Test func refusalsComeBeforeConnecting() throws {
        let cog = try Self.cog.get()
        let allowed = try RangeServer(cog.data), other = try RangeServer(cog.data)
        defer { allowed.close(); other.close() }
        let f = try fetcher(["http://127.0.0.1:\(allowed.port)/ok/"])
        #expect(throws: RemoteError.self) { try f.open("http://127.0.0.1:\(other.port)/ok/scene.tif") }
        #expect(throws: RemoteError.self) { try f.open("file://\(cog.path)") }
        #expect(throws: RemoteError.self) { try f.open("http://localhost:\(allowed.port)/ok/scene.tif") }
        allowed.setRedirect("/ok/moved.tif", to: "http://127.0.0.1:\(other.port)/ok/scene.tif")
        do {
            _ = try f.open("http://127.0.0.1:\(allowed.port)/ok/moved.tif")
            Issue.record("redirect followed")
        } catch let e as RemoteError {
            guard case .refused = e else { Issue.record("\(e)"); return }
        }
        // A redirect within the allowed prefix is followed.
        allowed.setRedirect("/ok/alias.tif", to: "/ok/scene.tif")
        #expect(try f.open("http://127.0.0.1:\(allowed.port)/ok/alias.tif").size == cog.data.count)
        #expect(other.connections == 0, "nothing connected to the unlisted port")
        // A public-looking name is refused by the resolved-address check when it resolves to loopback.
        let byName = try fetcher(["localhost.localdomain:\(allowed.port)"])
        let before = allowed.connections
        #expect(throws: RemoteError.self) { try byName.open("http://localhost.localdomain:\(allowed.port)/ok/scene.tif") }
        #expect(allowed.connections == before)
    }
}
