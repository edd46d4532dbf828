import Foundation
import Testing
import SpectralXHTTP

/// An EmbeddedChannel-style harness: feeds events to the state machine and records its actions as
/// short strings, answering `validateHead` through `validate` (nil = proceed). No sockets, no clock.
struct EmbeddedConnection {
    var machine: HTTPConnectionStateMachine
    var validate: (HTTPRequestHead) -> HTTPResponse? = { _ in nil }
    /// The driver's answer to `.requestSlot`.
    var grantSlot = false
    let t0: ContinuousClock.Instant
    var log: [String] = []

    init(_ config: HTTPServerConfiguration = EmbeddedConnection.config(), mode: HTTPConnectionStateMachine.Mode = .normal) {
        t0 = ContinuousClock.now
        machine = HTTPConnectionStateMachine(configuration: config, mode: mode, now: t0)
    }

    static func config(_ tweak: (inout HTTPServerConfiguration) -> Void = { _ in }) -> HTTPServerConfiguration {
        var c = HTTPServerConfiguration()
        c.headerReadTimeout = .seconds(10)
        c.bodyReadTimeout = .seconds(30)
        c.keepAliveIdleTimeout = .seconds(15)
        c.lingerTimeout = .seconds(2)
        c.minBodyRate = 1000
        c.bodyRateWindow = .seconds(20)
        tweak(&c)
        return c
    }

    func at(_ s: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int64(s * 1000)) }

    /// Runs actions, answering validateHead like the driver does; returns their descriptions.
    mutating func run(_ actions: [HTTPConnectionStateMachine.Action], now: ContinuousClock.Instant) -> [String] {
        var out: [String] = []
        var queue = actions[...]
        while let a = queue.popFirst() {
            switch a {
            case .validateHead(let head, _):
                out.append("validate \(head.method) \(head.target.rawPath)")
                queue = machine.headValidated(validate(head), now: now)[...] + queue
            case .requestSlot:
                out.append("request-slot")
                queue = machine.slotDecided(grantSlot, now: now)[...] + queue
            case .sendContinue: out.append("100-continue")
            case .startBody(let n): out.append("startBody \(n.map(String.init) ?? "chunked")")
            case .bodyPart(let d): out.append("body \(String(decoding: d, as: UTF8.self))")
            case .dispatch(let head, _, _, let priority, let forceClose):
                out.append("dispatch \(head.method) \(head.target.rawPath)" + (priority ? " priority" : "") + (forceClose ? " close" : ""))
            case .respond(let r, _, _, let close):
                let code = HTTPServerErrorCode(r)
                out.append("respond \(r.status.code)\(code.map { " " + $0 } ?? "")" + (close ? " close" : " keep-alive"))
            case .abortRequest: out.append("abort")
            case .clientGone: out.append("client-gone")
            case .linger(let until): out.append("linger \(Double((until - t0).components.seconds))")
            case .close: out.append("close")
            }
        }
        log += out
        return out
    }

    mutating func send(_ text: String, at s: Double = 0) -> [String] {
        run(machine.received(Array(text.utf8), now: at(s)), now: at(s))
    }
    mutating func written(ok: Bool = true, closed: Bool = false, at s: Double = 0) -> [String] {
        run(machine.responseWritten(ok: ok, closed: closed, now: at(s)), now: at(s))
    }
    mutating func tick(_ s: Double) -> [String] { run(machine.tick(now: at(s)), now: at(s)) }
    mutating func peerClosed(at s: Double = 0) -> [String] { run(machine.peerClosed(now: at(s)), now: at(s)) }
    mutating func shutdown(at s: Double = 0) -> [String] { run(machine.shutdown(now: at(s)), now: at(s)) }
    func deadline() -> Double? { machine.deadline.map { ($0 - t0).seconds } }
}

/// The `code` of a JSON error body, if it is one.
func HTTPServerErrorCode(_ r: HTTPResponse) -> String? {
    guard case .data(let d) = r.body,
          let obj = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
          let e = obj["error"] as? [String: Any] else { return nil }
    return e["code"] as? String
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

@Suite struct HTTPConnectionStateMachineTests {
    let get = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"

    @Test func keepAliveServesRequestsOneAfterTheOther() {
        var c = EmbeddedConnection()
        #expect(c.send(get) == ["validate GET /a", "dispatch GET /a"])
        #expect(!c.machine.wantsInput && c.machine.deadline == nil)  // handler running: no reads, no deadline
        #expect(c.written(at: 1) == [])
        #expect(c.deadline() == 16)  // idle keep-alive deadline
        #expect(c.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n", at: 2) == ["validate GET /b", "dispatch GET /b"])
    }

    @Test func pipelinedRequestsWithAnEarly404InTheMiddleStayInOrderOnOneConnection() {
        var c = EmbeddedConnection()
        c.validate = { $0.target.path == "/missing" ? .error(.notFound, code: "not_found", message: "no route") : nil }
        let three = get + "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n" + "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
        // Only the first is parsed while its handler runs; the rest stays buffered.
        #expect(c.send(three) == ["validate GET /a", "dispatch GET /a"])
        #expect(c.written() == ["validate GET /missing", "respond 404 not_found keep-alive", "validate GET /c", "dispatch GET /c"])
        #expect(c.written() == [])
        #expect(!c.machine.isClosed)
    }

    @Test func earlyAnswerWithAnUnreadBodyCloses() {
        var c = EmbeddedConnection()
        c.validate = { _ in .error(.notFound, code: "not_found", message: "no route") }
        #expect(c.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n") == ["validate POST /x", "respond 404 not_found close", "linger 2.0"])
        #expect(c.send("hello") == [])  // discarded while lingering
        #expect(c.tick(2) == ["close"])
    }

    @Test func earlyAnswerOnABodilessRequestKeepsAlive() {
        var c = EmbeddedConnection()
        c.validate = { _ in .error(.unauthorized, code: "unauthorized", message: "token") }
        #expect(c.send("DELETE /d HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") == ["validate DELETE /d", "respond 401 unauthorized keep-alive"])
        #expect(c.send("GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == ["validate GET /d", "respond 401 unauthorized close", "linger 2.0"])
    }

    @Test func expectContinueIsSentOnlyWhenTheBodyIsNotAlreadyThere() {
        var c = EmbeddedConnection()
        #expect(c.send("POST /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
                == ["validate POST /u", "startBody 5", "100-continue"])
        #expect(c.send("hel") == ["body hel"])
        #expect(c.send("lo") == ["body lo", "dispatch POST /u"])
        var d = EmbeddedConnection()
        #expect(d.send("POST /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok")
                == ["validate POST /u", "startBody 2", "body ok", "dispatch POST /u"])
        var e = EmbeddedConnection()
        #expect(e.send("POST /u HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n")
                == ["respond 417 expectation_failed close", "linger 2.0"])
    }

    @Test func missingLengthIs411AndKeepsAlive() {
        var c = EmbeddedConnection()
        #expect(c.send("POST /u HTTP/1.1\r\nHost: x\r\n\r\n" + get) == ["respond 411 length_required keep-alive", "validate GET /a", "dispatch GET /a"])
    }

    @Test func headRequestIsDispatchedLikeGet() {
        var c = EmbeddedConnection()
        #expect(c.send("HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n") == ["validate HEAD /a", "dispatch HEAD /a"])
    }

    @Test func headerDeadlineCountsFromAcceptThenFromTheFirstByte() {
        var c = EmbeddedConnection()
        #expect(c.deadline() == 10)
        #expect(c.send("GET /a HT", at: 9) == [])
        #expect(c.tick(9.9) == [])
        #expect(c.tick(10).first == "respond 408 request_timeout close")
        // On a kept-alive connection the head deadline starts with the head's first byte.
        var k = EmbeddedConnection()
        _ = k.send(get)
        _ = k.written(at: 1)
        #expect(k.send("GET /b", at: 5) == [])
        #expect(k.deadline() == 15)
        #expect(k.tick(15) == ["respond 408 request_timeout close", "linger 17.0"])
    }

    @Test func idleKeepAliveExpiryClosesSilently() {
        var c = EmbeddedConnection()
        _ = c.send(get)
        _ = c.written(at: 1)
        #expect(c.tick(15.9) == [])
        #expect(c.tick(16) == ["close"])
    }

    @Test func pauseInsideABodyIs408() {
        var c = EmbeddedConnection(EmbeddedConnection.config { $0.minBodyRate = 0 })
        _ = c.send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        #expect(c.deadline() == 30)
        #expect(c.send("d", at: 20) == ["body d"])
        #expect(c.tick(49) == [])
        #expect(c.tick(50) == ["abort", "respond 408 request_timeout close", "linger 52.0"])
    }

    @Test func bodySlowerThanTheMinimumRateIs408BodyTooSlow() {
        // 1 byte every 3 s (the trickle attack) against 1000 B/s over 20 s windows.
        var c = EmbeddedConnection()
        _ = c.send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        var t = 0.0
        var last: [String] = []
        while t < 19.5 { t += 3; last = c.send("x", at: t) }
        #expect(last == ["body x"])
        #expect(c.deadline() == 20)
        #expect(c.tick(20) == ["abort", "respond 408 body_too_slow close", "linger 22.0"])
    }

    @Test func bodyAtTheMinimumRatePassesEachWindow() {
        var c = EmbeddedConnection()
        _ = c.send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n")
        let chunk = String(repeating: "y", count: 1000)
        for s in 1...40 { _ = c.send(chunk, at: Double(s)) }
        #expect(c.log.filter { $0.hasPrefix("respond") }.isEmpty)
        #expect(c.tick(40) == [])  // window 20–40 held 20000 bytes: fine; next check at 60
        #expect(c.deadline() == 60)
    }

    @Test func peerClosingMidBodyAbortsAndDuringHandlingSignalsClientGone() {
        var c = EmbeddedConnection()
        _ = c.send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        #expect(c.peerClosed() == ["abort", "close"])
        var h = EmbeddedConnection()
        _ = h.send(get)
        #expect(h.peerClosed() == ["client-gone"])
        #expect(h.machine.peerGone)
        #expect(h.written() == ["close"])  // no keep-alive for a gone peer
    }

    @Test func lingeringDiscardsUntilEOFOrDeadline() {
        var c = EmbeddedConnection()
        #expect(c.send("GET / HTTP/1.1\nHost: x\r\n\r\n") == ["respond 400 bad_request close", "linger 2.0"])
        #expect(c.send("more garbage") == [])
        #expect(c.peerClosed() == ["close"])
        var d = EmbeddedConnection()
        _ = d.send(get)
        #expect(d.written(closed: true, at: 3) == ["linger 5.0"])
        #expect(d.tick(5) == ["close"])
    }

    @Test func drainClosesIdleConnectionsAndFinishesInFlightOnes() {
        var idle = EmbeddedConnection()
        #expect(idle.shutdown() == ["close"])
        var busy = EmbeddedConnection()
        _ = busy.send(get)
        #expect(busy.shutdown() == [])
        #expect(busy.written() == ["close"])
        // An early answer while draining closes even when keep-alive would be possible.
        var early = EmbeddedConnection()
        early.validate = { _ in .error(.notFound, code: "not_found", message: "no") }
        _ = early.shutdown(at: 0)
        #expect(early.machine.isClosed)
        var reading = EmbeddedConnection()
        _ = reading.send("GET /x HTTP/1.1\r\n")
        #expect(reading.shutdown() == [])
        reading.validate = { _ in .error(.notFound, code: "not_found", message: "no") }
        #expect(reading.send("Host: x\r\n\r\n") == ["validate GET /x", "respond 404 not_found close", "linger 2.0"])
    }

    @Test func reservedConnectionServesOnlyProbes() {
        let config = EmbeddedConnection.config()
        var probe = EmbeddedConnection(config, mode: .reserved)
        #expect(probe.deadline() == 1)  // reservedHeaderTimeout
        #expect(probe.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == ["validate GET /healthz", "dispatch GET /healthz priority close"])
        var other = EmbeddedConnection(config, mode: .reserved)
        #expect(other.send("POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
                == ["request-slot", "respond 503 too_many_connections close", "linger 2.0"])
        var granted = EmbeddedConnection(config, mode: .reserved)
        granted.grantSlot = true
        #expect(granted.send("POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
                == ["request-slot", "validate POST /v1/x", "startBody 3"])
        // A probe with a body is not a probe.
        var withBody = EmbeddedConnection(config, mode: .reserved)
        #expect(withBody.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n") == ["request-slot", "respond 503 too_many_connections close", "linger 2.0"])
        var silent = EmbeddedConnection(config, mode: .reserved)
        #expect(silent.tick(1) == ["respond 503 too_many_connections close", "linger 2.0"])  // linger ≤ 1 s when reserved
        var promoted = EmbeddedConnection(config, mode: .reserved)
        promoted.machine.promote()
        #expect(promoted.deadline() == 10)
        #expect(promoted.send(get) == ["validate GET /a", "dispatch GET /a"])
    }

    @Test func aRequestWaitingForASlotGets503AtItsDeadline() {
        var c = EmbeddedConnection(EmbeddedConnection.config(), mode: .reserved)
        let actions = c.machine.received(Array("POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n".utf8), now: c.at(0.5))
        #expect(c.run(actions, now: c.at(0.5)) == ["request-slot", "respond 503 too_many_connections close", "linger 2.0"])
        var w = EmbeddedConnection(EmbeddedConnection.config(), mode: .reserved)
        _ = w.machine.received(Array("POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n".utf8), now: w.at(0.5))
        #expect(w.machine.isAwaitingSlot)  // the driver did not answer yet: it waits in line
        #expect(w.deadline() == 1.5)
        #expect(w.tick(1.4) == [])
        #expect(w.tick(1.5) == ["respond 503 too_many_connections close", "linger 3.0"])
        var g = EmbeddedConnection(EmbeddedConnection.config(), mode: .reserved)
        _ = g.machine.received(Array("POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".utf8), now: g.at(0))
        #expect(g.run(g.machine.slotDecided(true, now: g.at(0.2)), now: g.at(0.2)) == ["validate POST /v1/x", "startBody 3", "body abc", "dispatch POST /v1/x"])
    }

    @Test func slotsAreReclaimedOnlyFromConnectionsThatMakeNoProgress() {
        var silent = EmbeddedConnection()
        #expect(silent.machine.reclaimRank(now: silent.at(0.5)) == nil)  // too new to judge
        #expect(silent.machine.reclaimRank(now: silent.at(1)) == 1)
        #expect(silent.run(silent.machine.reclaim(now: silent.at(1)), now: silent.at(1)) == ["respond 503 too_many_connections close", "linger 3.0"])
        var keptAlive = EmbeddedConnection()
        _ = keptAlive.send(get)
        #expect(keptAlive.machine.reclaimRank(now: keptAlive.at(0)) == nil)  // handling
        _ = keptAlive.written()
        #expect(keptAlive.machine.reclaimRank(now: keptAlive.at(0)) == 0)
        #expect(keptAlive.run(keptAlive.machine.reclaim(now: keptAlive.at(0)), now: keptAlive.at(0)) == ["close"])
        var trickle = EmbeddedConnection()
        _ = trickle.send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        #expect(trickle.machine.reclaimRank(now: trickle.at(0.4)) == nil)  // too new to judge
        // Nothing (under an eighth of the rate) after half a second: hopeless, sooner than a request
        // waits for a slot (reservedHeaderTimeout, 1 s), so waves of reclaimed slots never starve it.
        #expect(trickle.machine.reclaimRank(now: trickle.at(0.5)) == 2)
        _ = trickle.send("x", at: 1.5)
        #expect(trickle.machine.reclaimRank(now: trickle.at(3)) == 2)
        var slow = EmbeddedConnection()  // below the rate but not hopeless: judged after 2 s
        _ = slow.send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        _ = slow.send(String(repeating: "z", count: 300), at: 0.3)
        #expect(slow.machine.reclaimRank(now: slow.at(1.9)) == nil)
        #expect(slow.machine.reclaimRank(now: slow.at(2)) == 2)
        #expect(trickle.run(trickle.machine.reclaim(now: trickle.at(3)), now: trickle.at(3)) == ["abort", "respond 408 body_too_slow close", "linger 5.0"])
        var fast = EmbeddedConnection()
        _ = fast.send("POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        _ = fast.send(String(repeating: "y", count: 5000), at: 2)
        #expect(fast.machine.reclaimRank(now: fast.at(3)) == nil)  // 1667 B/s ≥ 1000 B/s
    }

    @Test func probesOnNormalConnectionsAreMarkedPriority() {
        var c = EmbeddedConnection()
        #expect(c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == ["validate GET /metrics", "dispatch GET /metrics priority"])
    }

    @Test func parserErrorsAnswerAndClose() {
        var c = EmbeddedConnection()
        #expect(c.send("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                == ["respond 400 invalid_content_length close", "linger 2.0"])
        var h = EmbeddedConnection(EmbeddedConnection.config { $0.limits.maxHeaderBytes = 64 })
        #expect(h.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 100)).first
                == "respond 431 header_fields_too_large close")
    }
}

@Suite struct HTTPErrorCodeTests {
    @Test func codesAreUniqueAndCarryTheirStatus() {
        let codes = HTTPErrorCode.allCases.map(\.rawValue)
        #expect(Set(codes).count == codes.count)
        for needed in ["too_many_connections", "invalid_content_length", "header_fields_too_large", "body_too_slow", "request_timeout"] {
            #expect(codes.contains(needed))
        }
        #expect(HTTPErrorCode.bodyTooSlow.status == .requestTimeout)
        #expect(HTTPErrorCode.tooManyConnections.status == .serviceUnavailable)
    }

    @Test func messagesAreBounded() {
        let long = String(repeating: "é", count: 2000)
        let e = HTTPServerError(status: .badRequest, code: "x", message: long)
        #expect(e.message.utf8.count <= HTTPServerError.maxMessageBytes)
        #expect(e.message.hasSuffix("…"))
        #expect(HTTPServerError(status: .badRequest, code: "x", message: "short").message == "short")
    }
}
