import Foundation
import SpectralXBlobStore
import SpectralXTestSupport
import SpectralXFetch
import Testing

/// What only one kind of store has: credentials, presigned URLs, the URL factory.
@Suite struct S3AndFactoryTests {
    /// Against moto checking every signature: our signing passes an independent verifier
    /// (ranges, multipart query strings, listing), and bad credentials are typed errors that name
    /// the server's code but not the secret. Keys and prefixes stay within A–Z a–z 0–9 -_.~ here:
    /// moto verifies against a URL it rebuilds from the decoded path and query, so a space, "+",
    /// "ü" or an encoded "/" in a query value fail its check although the encoding is AWS's (pinned
    /// by the published vectors in SigV4Tests, and exercised unverified by the behaviour suite).
    @Test func signaturesVerifiedAndWrongCredentialsTyped() throws {
        let moto: MotoServer, good: AWSCredentials
        switch MotoServer.authenticating {
        case .success(let m): (moto, good) = m
        case .failure(let reason): print("skipping the S3 credentials test: \(reason)"); return
        }
        let store = try moto.store(prefix: "verified", credentials: good)
        try store.createBucket()
        try store.put("dir/plain.txt", data: Data("signed".utf8))
        #expect(try store.get("dir/plain.txt", range: ByteRange(offset: 1, length: 3)) == Data("ign".utf8))
        let root = try moto.store(prefix: "", credentials: good)
        #expect(try root.list(prefix: "verified").map(\.key) == ["verified/dir/plain.txt"])
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-auth-\(UUID().uuidString)")
        try bytes((5 << 20) + 10, seed: 5).write(to: scratch)
        defer { try? FileManager.default.removeItem(at: scratch) }
        #expect(try store.put("multi", fromFile: scratch).size == Int64((5 << 20) + 10))
        try store.delete("dir/plain.txt")
        // UNSIGNED-PAYLOAD: the headers are still signed and verified.
        let unsigned = try moto.store(prefix: "verified", credentials: good, signPayload: false)
        try unsigned.put("unsigned.bin", fromFile: scratch)
        #expect(try unsigned.get("unsigned.bin", range: ByteRange(offset: 5 << 20, length: 10)) == bytes((5 << 20) + 10, seed: 5)[(5 << 20)...])

        let secret = "never-print-this-Secret/123"
        let cases: [(AWSCredentials, String)] = [
            (AWSCredentials(accessKeyID: good.accessKeyID, secretAccessKey: secret), "SignatureDoesNotMatch"),
            (AWSCredentials(accessKeyID: "AKIDWRONG", secretAccessKey: secret, sessionToken: "never-print-this-token"), "InvalidAccessKeyId"),
        ]
        for (credentials, expected) in cases {
            let bad = try moto.store(prefix: "verified", credentials: credentials)
            for operation in [{ _ = try bad.get("multi") }, { _ = try bad.put("k", data: Data("x".utf8)) }, { _ = try bad.list(prefix: "") }] {
                do {
                    try operation()
                    Issue.record("a request with bad credentials succeeded")
                } catch let error as BlobStoreError {
                    guard case .accessDenied(let code, _) = error else { Issue.record("expected accessDenied, got \(error)"); continue }
                    #expect(code == expected)
                    let text = "\(error) \(String(reflecting: error)) \(error.localizedDescription)"
                    #expect(!text.contains(secret) && !text.contains("never-print-this-token") && !text.contains(good.secretAccessKey), "\(text)")
                }
            }
            #expect(!"\(bad.configuration)".contains(secret))
        }
    }

    @Test func presignedGetWorksWithoutCredentials() throws {
        guard case .success(let moto) = MotoServer.plain else { print("skipping the presigned URL test: moto unavailable"); return }
        let store = try moto.store(prefix: "presign/\(UUID().uuidString)")
        try store.put("a b.txt", data: Data("shared".utf8))
        let url = try store.presignedGetURL("a b.txt", expires: 600)
        #expect(url.absoluteString.contains("X-Amz-Expires=600") && url.absoluteString.contains("X-Amz-Signature="))
        #expect(!url.absoluteString.contains(MotoServer.credentials.secretAccessKey))
        let r = try HTTPClient().execute(HTTPClientRequest(url: url))
        #expect(r.status == 200 && r.body == Data("shared".utf8))
    }

    @Test func factoryParsesFileAndS3URLs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-factory-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = try BlobStores.open(url: "file://\(dir.path)", environment: [:])
        #expect(file is FileBlobStore && file.location == "file://\(dir.standardizedFileURL.path)")

        let env = ["AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "topsecret", "AWS_REGION": "eu-west-1",
                   "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"]
        let s3 = try #require(try BlobStores.open(url: "s3://my-bucket/jobs/shared/", environment: env) as? S3BlobStore)
        #expect(s3.configuration.bucket == "my-bucket" && s3.configuration.region == "eu-west-1")
        #expect(s3.location == "s3://my-bucket/jobs/shared/ at http://127.0.0.1:9/")
        #expect(!s3.location.contains("topsecret"))
        let aws = try #require(try BlobStores.open(url: "s3://my-bucket", environment: ["AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "k"]) as? S3BlobStore)
        #expect(aws.location == "s3://my-bucket/ at https://s3.us-east-1.amazonaws.com/")

        func rejects(_ url: String, _ environment: [String: String] = env) {
            #expect(throws: BlobStoreError.self, "\(url)") { try BlobStores.open(url: url, environment: environment) }
        }
        rejects("")
        rejects("/no/scheme")
        rejects("http://example.com/x")
        rejects("file://host/dir")
        rejects("file:///")
        rejects("file://\(dir.path)/missing")  // an unmounted volume fails loudly
        rejects("s3://")
        rejects("s3://Bad_Bucket/x")
        rejects("s3://ab/x")
        rejects("s3://bucket:9000/x")
        rejects("s3://bucket/x?versionId=1")
        rejects("s3://bucket/../x")
        rejects("s3://bucket/x", [:])  // no credentials
        rejects("s3://bucket/x", ["AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "k", "AWS_ENDPOINT_URL": "ftp://x"])
        do {
            _ = try BlobStores.open(url: "s3://bucket/x", environment: ["AWS_ACCESS_KEY_ID": "id"])
        } catch {
            #expect("\(error)".contains("AWS_SECRET_ACCESS_KEY"))
        }
    }
}
