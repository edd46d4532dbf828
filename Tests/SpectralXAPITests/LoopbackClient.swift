import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A response as the wire carried it.
struct WireResponse {
    var status: Int
    var headers: [(String, String)]
    var body: Data

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    /// `(status, code)` of the standard error body.
    var errorCode: (Int, String)? {
        guard let e = json["error"] as? [String: Any], let s = e["status"] as? Int, let c = e["code"] as? String else { return nil }
        return (s, c)
    }
    /// The `message` of the standard error body.
    var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
}

/// A minimal HTTP/1.1 client over a real loopback socket: exact bytes out, `Connection: close`,
/// reads to EOF. Enough to check statuses, headers and bodies without URLSession's rewriting.
enum LoopbackClient {
    /// A TCP socket connected to 127.0.0.1:`port` (the caller closes it).
    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    static func send(port: Int, method: String, path: String, headers: [(String, String)] = [], body: Data = Data(),
                     declaredLength: Int? = nil) throws -> WireResponse {
        let fd = try connect(port: port)
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (n, v) in headers { head += "\(n): \(v)\r\n" }
        // With a Transfer-Encoding header the body is sent as given (already chunked), without Content-Length.
        let framed = headers.contains { $0.0.lowercased() == "transfer-encoding" }
        if !framed && (method == "POST" || method == "PUT" || !body.isEmpty) { head += "Content-Length: \(declaredLength ?? body.count)\r\n" }
        head += "\r\n"
        var out = Data(head.utf8)
        if declaredLength == nil || framed { out.append(body) }
        writeAll(fd, out)
        var received = Data()
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            received.append(contentsOf: buf[0..<n])
        }
        return try parse(received)
    }

    static func writeAll(_ fd: Int32, _ data: Data) {
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }  // the server may close early (e.g. after refusing a head)
                off += n
            }
        }
    }

    static func parse(_ data: Data) throws -> WireResponse {
        var rest = data
        // Skip interim 100 Continue responses.
        while true {
            guard let end = rest.range(of: Data("\r\n\r\n".utf8)) else { throw POSIXError(.EBADMSG) }
            let head = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self)
            let lines = head.components(separatedBy: "\r\n")
            let status = Int(lines[0].split(separator: " ")[1])!
            let headers = lines.dropFirst().compactMap { l -> (String, String)? in
                guard let c = l.firstIndex(of: ":") else { return nil }
                return (String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces))
            }
            rest = rest[end.upperBound...]
            if status == 100 { continue }
            return WireResponse(status: status, headers: headers, body: Data(rest))
        }
    }

    /// A multipart/form-data body with one file part.
    static func multipart(name: String, filename: String, contentType: String, data: Data) -> (String, Data) {
        let boundary = "spectralx-test-\(UUID().uuidString)"
        var body = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\nContent-Type: \(contentType)\r\n\r\n".utf8)
        body.append(data)
        body.append(Data("\r\n--\(boundary)--\r\n".utf8))
        return ("multipart/form-data; boundary=\(boundary)", body)
    }
}
