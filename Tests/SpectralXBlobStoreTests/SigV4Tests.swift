import Foundation
import SpectralXFetch
import Testing

/// The signer against AWS's published vectors.
@Suite struct SigV4Tests {
    static let suiteCredentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let s3DocCredentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    /// 2015-08-30T12:36:00Z and 2013-05-24T00:00:00Z.
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)
    static let s3DocDate = Date(timeIntervalSince1970: 1_369_353_600)

    @Test func timestampFormat() {
        #expect(SigV4Signer.timestamp(Self.suiteDate) == "20150830T123600Z")
        #expect(SigV4Signer.timestamp(Self.s3DocDate) == "20130524T000000Z")
    }

    /// Signature Version 4 test suite, "get-vanilla" (service "service", us-east-1).
    @Test func getVanilla() throws {
        let signer = SigV4Signer(credentials: Self.suiteCredentials, region: "us-east-1", service: "service")
        var request = HTTPClientRequest(method: "GET", url: URL(string: "https://example.amazonaws.com/")!)
        try signer.sign(&request, payloadHash: Digest.emptySHA256Hex, date: Self.suiteDate, contentSHA256Header: false)
        #expect(request.headers["Authorization"] == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        #expect(request.headers["Host"] == "example.amazonaws.com")
    }

    /// "get-vanilla-query-order-key-case": parameters are sorted before signing.
    @Test func getVanillaQueryOrder() throws {
        let signer = SigV4Signer(credentials: Self.suiteCredentials, region: "us-east-1", service: "service")
        var request = HTTPClientRequest(method: "GET", url: URL(string: "https://example.amazonaws.com/?Param2=value2&Param1=value1")!)
        try signer.sign(&request, payloadHash: Digest.emptySHA256Hex, date: Self.suiteDate, contentSHA256Header: false)
        #expect(request.headers["Authorization"]?.hasSuffix("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500") == true)
    }

    /// The S3 documentation's "GET Object" header-signing example (first 10 bytes of test.txt).
    @Test func s3GetObjectExample() throws {
        let signer = SigV4Signer(credentials: Self.s3DocCredentials, region: "us-east-1")
        var request = HTTPClientRequest(method: "GET", url: URL(string: "https://examplebucket.s3.amazonaws.com/test.txt")!,
                                        headers: ["Range": "bytes=0-9"])
        try signer.sign(&request, payloadHash: Digest.emptySHA256Hex, date: Self.s3DocDate)
        #expect(request.headers["Authorization"] == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(request.headers["X-Amz-Content-SHA256"] == Digest.emptySHA256Hex)
    }

    /// The S3 documentation's presigned-URL example (GET test.txt, 86 400 s).
    @Test func s3PresignedExample() throws {
        let signer = SigV4Signer(credentials: Self.s3DocCredentials, region: "us-east-1")
        let url = try signer.presignedURL(url: URL(string: "https://examplebucket.s3.amazonaws.com/test.txt")!, expires: 86_400, date: Self.s3DocDate)
        #expect(url.absoluteString == "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                + "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(throws: FetchError.self) { try signer.presignedURL(url: url, expires: 0) }
    }

    @Test func credentialsNeverPrintTheSecret() {
        let c = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "s3cr3t-value", sessionToken: "t0ken-value")
        for text in ["\(c)", String(describing: c), String(reflecting: c), { var s = ""; dump(c, to: &s); return s }()] {
            #expect(!text.contains("s3cr3t-value") && !text.contains("t0ken-value"), "\(text)")
            #expect(text.contains("AKIDEXAMPLE"))
        }
        #expect(AWSCredentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "a"]) == nil)
        #expect(AWSCredentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "c"])
                == AWSCredentials(accessKeyID: "a", secretAccessKey: "b", sessionToken: "c"))
    }

    @Test func uriEncoding() {
        #expect(SigV4Signer.uriEncode("a b/ü~*") == "a%20b%2F%C3%BC~%2A")
        #expect(SigV4Signer.uriEncode("dir/a b", keepSlash: true) == "dir/a%20b")
    }

    @Test func digests() throws {
        #expect(Digest.sha256Hex("") == Digest.emptySHA256Hex)
        #expect(Digest.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // RFC 4231 test case 2.
        #expect(Digest.hex(Digest.hmacSHA256(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}
