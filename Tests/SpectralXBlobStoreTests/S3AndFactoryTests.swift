import Foundation
import SpectralXBlobStore
import SpectralXFetch
import Testing

/// What only one kind of store has: credentials, presigned URLs, the URL factory.
@Suite struct S3AndFactoryTests {
    @Test func wrongCredentialsAreATypedErrorWithoutTheSecret() throws {
        let moto: MotoServer
        switch MotoServer.authenticating {
        case .success(let m): moto = m
        case .failure(let reason): print("skipping the S3 credentials test: \(reason)"); return
        }
        let secret = "never-print-this-Secret/123"
        let store = try moto.store(prefix: "p", credentials: AWSCredentials(accessKeyID: "AKIDWRONG", secretAccessKey: secret,
                                                                              sessionToken: "never-print-this-token"))
        for operation in [{ _ = try store.get("k") }, { _ = try store.put("k", data: Data("x".utf8)) }, { _ = try store.list(prefix: "") }] {
            do {
                try operation()
                Issue.record("a request with unknown credentials succeeded")
            } catch let error as BlobStoreError {
                guard case .accessDenied(let code, _) = error else { Issue.record("expected accessDenied, got \(error)"); continue }
                #expect(code == "InvalidAccessKeyId")
                let text = "\(error) \(String(reflecting: error)) \(error.localizedDescription)"
                #expect(!text.contains(secret) && !text.contains("never-print-this-token"), "\(text)")
            }
        }
        #expect(!"\(store.configuration)".contains(secret))
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
