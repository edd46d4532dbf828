import Foundation
import SpectralXBlobStore
import SpectralXFetch
#if canImport(Glibc)
import Glibc
#endif

/// moto's S3 in server mode on 127.0.0.1, one per flavour per test process. It runs under a small
/// shell that kills it when its stdin (a pipe held by this process) closes, so it ends with the
/// test process however that ends (SIGTERM, then SIGKILL: moto can outlive SIGTERM).
public final class MotoServer: Sendable {
    public let port: Int
    public let endpoint: URL
    private let keepAlive: FileHandle
    public static let bucket = "spectralx-test"
    public static let credentials = AWSCredentials(accessKeyID: "testing-key", secretAccessKey: "testing-secret-value")

    /// Anonymous-auth moto (any credentials accepted) with the test bucket created.
    public static let plain: Result<MotoServer, SkipReason> = start(environment: [:]).flatMap { server in
        do {
            try server.store(prefix: "").createBucket()
            return .success(server)
        } catch {
            return .failure(SkipReason(description: "cannot create the test bucket in moto: \(error)"))
        }
    }

    /// moto verifying signatures and permissions, with an IAM user allowed s3:* whose key is
    /// `verifiedCredentials` (made by the three requests moto lets through unauthenticated).
    public static let authenticating: Result<(server: MotoServer, credentials: AWSCredentials), SkipReason> =
        start(environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "3"]).flatMap { server in
            do { return .success((server, try server.makeIAMUser())) } catch {
                return .failure(SkipReason(description: "cannot create an IAM user in moto: \(error)"))
            }
        }

    /// CreateUser, CreateAccessKey, PutUserPolicy (s3:*) through moto's IAM query API.
    private func makeIAMUser() throws -> AWSCredentials {
        let client = HTTPClient()
        // Count from zero whatever the readiness probe did.
        let reset = try client.execute(HTTPClientRequest(method: "POST", url: endpoint.appendingPathComponent("moto-api/reset-auth"),
                                                         body: .data(Data("3".utf8))))
        guard reset.status == 200 else { throw SkipReason(description: "reset-auth answered \(reset.status)") }
        let iam = SigV4Signer(credentials: AWSCredentials(accessKeyID: "bootstrap", secretAccessKey: "bootstrap"), region: "us-east-1", service: "iam")
        func call(_ form: String) throws -> String {
            let body = Data((form + "&Version=2010-05-08").utf8)
            var request = HTTPClientRequest(method: "POST", url: URL(string: "\(endpoint.absoluteString)/")!,
                                            headers: ["Content-Type": "application/x-www-form-urlencoded"], body: .data(body))
            try iam.sign(&request, payloadHash: Digest.sha256Hex(body), contentSHA256Header: false)
            let r = try client.execute(request)
            let text = String(decoding: r.body, as: UTF8.self)
            guard r.status == 200 else { throw SkipReason(description: "IAM \(form.prefix(30)) answered \(r.status)") }
            return text
        }
        _ = try call("Action=CreateUser&UserName=spectralx")
        let key = try call("Action=CreateAccessKey&UserName=spectralx")
        func field(_ name: String) throws -> String {
            guard let open = key.range(of: "<\(name)>"), let close = key.range(of: "</\(name)>") else {
                throw SkipReason(description: "CreateAccessKey answered without \(name)")
            }
            return String(key[open.upperBound..<close.lowerBound])
        }
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        _ = try call("Action=PutUserPolicy&UserName=spectralx&PolicyName=all-s3&PolicyDocument="
                     + SigV4Signer.uriEncode(policy))
        return AWSCredentials(accessKeyID: try field("AccessKeyId"), secretAccessKey: try field("SecretAccessKey"))
    }

    public struct SkipReason: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    private init(port: Int, keepAlive: FileHandle) {
        self.port = port
        self.keepAlive = keepAlive
        endpoint = URL(string: "http://127.0.0.1:\(port)")!
    }

    public func store(prefix: String, credentials: AWSCredentials = MotoServer.credentials, partSize: Int = 5 << 20,
               signPayload: Bool = true) throws -> S3BlobStore {
        var c = S3Configuration(endpoint: endpoint, bucket: Self.bucket, prefix: prefix, region: "us-east-1", credentials: credentials)
        c.partSize = partSize
        c.signPayload = signPayload
        c.client.maxAttempts = 2
        c.client.backoffBase = 0.05
        return try S3BlobStore(configuration: c)
    }

    public static func executable() -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/moto_server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// A free loopback port (bound, read, released).
    public static func freePort() -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        return ok ? Int(UInt16(bigEndian: addr.sin_port)) : nil
    }

    private static func start(environment extra: [String: String]) -> Result<MotoServer, SkipReason> {
        guard let moto = executable() else {
            return .failure(SkipReason(description: "moto_server is not on PATH (scripts/setup.sh --test installs moto[server])"))
        }
        guard let port = freePort() else { return .failure(SkipReason(description: "no free loopback port")) }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("moto-\(port).log").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "\"$0\" -H 127.0.0.1 -p \"$1\" >\"$2\" 2>&1 & pid=$!; read _; kill $pid; sleep 1; kill -KILL $pid 2>/dev/null", moto, String(port), log]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        process.environment = env
        let pipe = Pipe()
        process.standardInput = pipe
        do { try process.run() } catch {
            return .failure(SkipReason(description: "cannot start moto_server: \(error)"))
        }
        let server = MotoServer(port: port, keepAlive: pipe.fileHandleForWriting)
        var probe = HTTPClient.Configuration()
        probe.maxAttempts = 1
        probe.connectTimeout = 1
        let client = HTTPClient(configuration: probe)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if (try? client.execute(HTTPClientRequest(url: URL(string: "http://127.0.0.1:\(port)/moto-api/")!))) != nil {
                return .success(server)
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(500)) } ?? ""
        return .failure(SkipReason(description: "moto_server did not answer on 127.0.0.1:\(port) within 60 s: \(tail)"))
    }
}

/// The two blob stores the fleet's job tests run against, the same tests for each.
public enum TestBlobStoreKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case file, s3

    public var description: String { rawValue + "://" }

    /// A fresh, empty store of this kind; nil (after printing why) when moto is not available.
    public func fresh() throws -> (any BlobStore)? {
        switch self {
        case .file:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("spectralx-blobs-\(UUID().uuidString)")
            return try FileBlobStore(directory: dir)
        case .s3:
            switch MotoServer.plain {
            case .success(let moto): return try moto.store(prefix: "fleet/\(UUID().uuidString)")
            case .failure(let why): print("SKIP (s3://): \(why)"); return nil
            }
        }
    }
}
