import Foundation
import Synchronization
import Testing
@testable import KeepalivedConfig
@testable import LVSHealth
import LVSTestSupport
import LVSModel

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }

private func config(_ text: String) throws -> KeepalivedConfig {
    try KeepalivedLoader.parse(text: text).0
}

/// Collects log records across isolation domains (each list behind its own mutex).
final class LogSink: Sendable {
    private let items = Mutex<[HealthLogRecord]>([])
    private let scriptItems = Mutex<[String]>([])
    var records: [HealthLogRecord] { items.withLock { $0 } }
    var scripts: [String] { scriptItems.withLock { $0 } }
    func add(_ r: HealthLogRecord) { items.withLock { $0.append(r) } }
    func script(_ s: String) { scriptItems.withLock { $0.append(s) } }
}

/// An environment whose checkers never run on their own: tests feed results with `handle`.
private func manual(_ sink: LogSink) -> HealthEnvironment {
    HealthEnvironment(probe: { _ in .success }, sleep: { _ in try await Task.sleep(for: .seconds(3600)) },
                      runScript: { sink.script($0) }, jitter: { _ in .zero })
}

private let vsKey = ServiceKey(proto: .tcp, address: IPAddress("10.0.0.1")!, port: 80)

private func dests(_ fake: FakeIPVS) -> [String: Int32] {
    var out: [String: Int32] = [:]
    for s in fake.table.services { for d in s.destinations { out["\(d.options.address)"] = d.options.weight } }
    return out
}

@Suite struct KeepalivedTranslationTests {
    @Test func initialRequests() throws {
        let c = try config("""
        global_defs { lvs_timeouts tcp 100 }
        virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_algo sh
            sh-fallback
            lb_kind DR
            persistence_timeout 30
            persistence_granularity 255.255.255.0
            real_server 10.0.0.2 8080 { weight 3
                uthreshold 50
                lthreshold 5
            }
            real_server 10.0.0.3 80 { alpha
                TCP_CHECK { } }
            real_server 10.0.0.4 80 { alpha
                inhibit_on_failure
                TCP_CHECK { } }
            real_server 10.0.0.5 80 { alpha }
        }
        virtual_server fwmark 9 {
            lb_kind DR
            ops
            real_server 10.0.0.2 80 { }
        }
        """)
        let r = c.initialRequests()
        #expect(r == [
            .setTimeouts(IPVSTimeouts(tcp: 100, tcpFin: 0, udp: 0)),
            .addService(vsKey, ServiceOptions(scheduler: "sh", flags: [.persistent, .fallback], timeout: 30, netmask: 0xFFFF_FF00)),
            .addService(ServiceKey(fwmark: 9, ipv6: false), ServiceOptions(scheduler: "wlc", flags: [.onePacket])),
            .addDestination(vsKey, DestinationOptions(address: ip("10.0.0.2"), port: 80, method: .directRoute, weight: 3, upperThreshold: 50, lowerThreshold: 5)),
            .addDestination(vsKey, DestinationOptions(address: ip("10.0.0.4"), port: 80, method: .directRoute, weight: 0)),
            .addDestination(vsKey, DestinationOptions(address: ip("10.0.0.5"), port: 80, method: .directRoute, weight: 1)),
            .addDestination(ServiceKey(fwmark: 9, ipv6: false), DestinationOptions(address: ip("10.0.0.2"), port: 0, method: .directRoute, weight: 1)),
        ])
    }

    @Test func quorumDownAtStartInstallsSorryServer() throws {
        let c = try config("""
        virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_kind DR
            alpha
            sorry_server 10.0.0.99 80
            real_server 10.0.0.2 80 { TCP_CHECK { } }
        }
        """)
        #expect(c.initialRequests() == [
            .addService(vsKey, ServiceOptions(scheduler: "wlc")),
            .addDestination(vsKey, DestinationOptions(address: ip("10.0.0.99"), port: 80, method: .directRoute, weight: 1)),
        ])
    }

    @Test func md5() {
        #expect(MD5.hex(Array("".utf8)) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(MD5.hex(Array("The quick brown fox jumps over the lazy dog".utf8)) == "9e107d9d372bb6826bd81d3542a419d6")
        #expect(MD5.hex([UInt8](repeating: 0x61, count: 1000)) == "cabe45dcc9ae5b66ba86600cca6b8ba8")
    }

    @Test func httpResponseEvaluation() {
        let url = KeepalivedURL(path: "/", digest: MD5.hex(Array("hello".utf8)))
        #expect(HealthProbes.evaluate(response: Array("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello!!".utf8), url: url) == .success)
        #expect(HealthProbes.evaluate(response: Array("HTTP/1.0 200 OK\r\n\r\nhellO".utf8), url: url) != .success)
        #expect(HealthProbes.evaluate(response: Array("HTTP/1.1 200\r\n\r\n".utf8), url: KeepalivedURL(path: "/")) == .failure("HTTP status 0"))
        #expect(HealthProbes.evaluate(response: Array("HTTP/1.0 200 OK\r\n".utf8), url: KeepalivedURL(path: "/")) == .failure("no data"))
        var t = ProbeTarget(kind: .http, address: ip("2001:db8::1"), port: 80)
        #expect(HealthProbes.request(t, path: "/x") == "GET /x HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [2001:db8::1]:80\r\n\r\n")
        t.httpProtocol = "1.1"
        t.virtualhost = "www"
        #expect(HealthProbes.request(t, path: "/") == "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www\r\n\r\n")
    }
}

@Suite struct KeepalivedCheckerMachineTests {
    func checker(_ kind: CheckerKind, retry: UInt32, alpha: Bool = false, urls: Int = 1) -> KeepalivedChecker {
        var c = KeepalivedChecker(kind: kind)
        c.timing.retry = retry
        c.timing.alpha = alpha
        c.urls = (0..<urls).map { KeepalivedURL(path: "/\($0)") }
        return c
    }

    @Test func firstFailureIsDecisiveThenRetries() {
        var m = CheckerMachine(checker: checker(.tcp, retry: 2))
        #expect(m.record(success: false) == (false, .delayLoop))
        #expect(m.record(success: false) == (nil, .delayLoop))
        #expect(m.record(success: true) == (true, .delayLoop))
        // Now up: retry + 1 failures, spaced by delay_before_retry.
        #expect(m.record(success: false) == (nil, .delayBeforeRetry))
        #expect(m.record(success: false) == (nil, .delayBeforeRetry))
        #expect(m.record(success: true) == (nil, .delayLoop))
        #expect(m.record(success: false) == (nil, .delayBeforeRetry))
        #expect(m.record(success: false) == (nil, .delayBeforeRetry))
        #expect(m.record(success: false) == (false, .delayLoop))
    }

    @Test func alphaStartsDown() {
        var m = CheckerMachine(checker: checker(.misc, retry: 0, alpha: true))
        #expect(!m.up)
        #expect(m.record(success: false) == (nil, .delayLoop))
        #expect(m.record(success: true) == (true, .delayLoop))
    }

    @Test func httpRecoveryNeedsOnePlusNSuccesses() {
        var m = CheckerMachine(checker: checker(.http, retry: 1, urls: 2))
        #expect(m.record(success: true) == (nil, .delayLoop)) // url 0
        #expect(m.urlIndex == 1)
        #expect(m.record(success: false) == (nil, .delayBeforeRetry)) // url 1 (k preset? no: reset by success)
        #expect(m.record(success: false) == (false, .longer))
        #expect(m.failedURL == 1 && m.urlIndex == 1)
        #expect(m.record(success: false) == (nil, .longer))
        #expect(m.record(success: true) == (nil, .delayLoop)) // failing url passes
        #expect(m.urlIndex == 0)
        #expect(m.record(success: true) == (nil, .delayLoop)) // url 0
        #expect(m.record(success: true) == (true, .delayLoop)) // url 1: up
    }
}

@Suite struct KeepalivedHealthMonitorTests {
    static let text = """
    virtual_server 10.0.0.1 80 {
        protocol TCP
        lb_kind DR
        delay_loop 10
        delay_before_retry 2
        retry 1
        quorum 2
        hysteresis 1
        sorry_server 10.0.0.99 80
        quorum_down /bin/qdown
        quorum_up /bin/qup
        real_server 10.0.0.2 80 { weight 2
            notify_down /bin/down2
            notify_up /bin/up2
            TCP_CHECK { } }
        real_server 10.0.0.3 80 { weight 1
            inhibit_on_failure
            TCP_CHECK { } }
        real_server 10.0.0.4 80 { weight 1
            alpha
            TCP_CHECK { } }
    }
    """

    func token(_ m: HealthMonitor, _ rs: String) async -> UInt64 {
        await m.checkers.first { $0.value.rs.address == ip(rs) }!.key
    }

    @Test func downUpInhibitQuorumAndSorry() async throws {
        let fake = FakeIPVS()
        let sink = LogSink()
        let m = HealthMonitor(config: try config(Self.text), backend: fake, log: { sink.add($0) }, environment: manual(sink))
        await m.start()
        // live = 2 + 1 >= quorum 2 + hysteresis 1: up; alpha .4 not added.
        #expect(dests(fake) == ["10.0.0.2": 2, "10.0.0.3": 1])
        let t2 = await token(m, "10.0.0.2"), t3 = await token(m, "10.0.0.3"), t4 = await token(m, "10.0.0.4")
        // First failure at start is decisive (k preset to retry): .3 inhibited to weight 0.
        #expect(await m.handle(token: t3, result: .failure("refused")) == .seconds(10))
        #expect(dests(fake) == ["10.0.0.2": 2, "10.0.0.3": 0])
        #expect(sink.records.last?.description == "real server down checker=TCP_CHECK inhibit=true reason=refused rs=10.0.0.3:80 state=down vs=10.0.0.1:80 weight=1")
        // live = 2, not < quorum - hysteresis = 1: quorum holds.
        #expect(await m.quorumUp(.address(ip("10.0.0.1"), port: 80), proto: .tcp) == true)
        // .2 goes down: live 0 -> quorum lost -> sorry server in, inhibited .3 stays at 0.
        #expect(await m.handle(token: t2, result: .failure("timeout")) == .seconds(10))
        #expect(dests(fake) == ["10.0.0.3": 0, "10.0.0.99": 1])
        #expect(sink.scripts == ["/bin/down2", "/bin/qdown"])
        #expect(sink.records.contains { $0.message == "quorum lost" })
        // alpha .4 passes: live 1 < quorum + hysteresis 3: still down, nothing written for .4.
        _ = await m.handle(token: t4, result: .success)
        #expect(dests(fake) == ["10.0.0.3": 0, "10.0.0.99": 1])
        // .2 back: live 3 -> quorum regained, sorry out, live servers in.
        _ = await m.handle(token: t2, result: .success)
        #expect(dests(fake) == ["10.0.0.2": 2, "10.0.0.3": 0, "10.0.0.4": 1])
        #expect(sink.scripts == ["/bin/down2", "/bin/qdown", "/bin/up2", "/bin/qup"])
        // .3 back: weight restored by an edit.
        _ = await m.handle(token: t3, result: .success)
        #expect(dests(fake) == ["10.0.0.2": 2, "10.0.0.3": 1, "10.0.0.4": 1])
        #expect(fake.requests.last == .editDestination(vsKey, DestinationOptions(address: ip("10.0.0.3"), port: 80, method: .directRoute, weight: 1)))
        // Once up, a failure is retried after delay_before_retry before going down.
        #expect(await m.handle(token: t4, result: .failure("x")) == .seconds(2))
        #expect(dests(fake)["10.0.0.4"] == 1)
        #expect(await m.handle(token: t4, result: .failure("x")) == .seconds(10))
        #expect(dests(fake)["10.0.0.4"] == nil)
        await m.stop()
        #expect(await m.handle(token: t4, result: .success) == nil)
    }

    @Test func miscDynamicWeight() async throws {
        let fake = FakeIPVS()
        let sink = LogSink()
        let c = try config("virtual_server 10.0.0.1 80 {\nprotocol TCP\nlb_kind DR\nreal_server 10.0.0.2 80 {\nweight 5\nMISC_CHECK { misc_path /x\nmisc_dynamic }\n}\n}\n")
        let m = HealthMonitor(config: c, backend: fake, log: { sink.add($0) }, environment: manual(sink))
        await m.start()
        let t = await token(m, "10.0.0.2")
        _ = await m.handle(token: t, result: .successWithWeight(7))
        #expect(dests(fake) == ["10.0.0.2": 7])
    }

    @Test func reloadTouchesOnlyDifferences() async throws {
        let fake = FakeIPVS()
        let sink = LogSink()
        let m = HealthMonitor(config: try config(Self.text), backend: fake, log: { sink.add($0) }, environment: manual(sink))
        await m.start()
        let t3 = await token(m, "10.0.0.3")
        _ = await m.handle(token: t3, result: .failure("down"))
        let before = fake.requests.count
        // Same config: nothing sent.
        await m.reload(try config(Self.text))
        #expect(fake.requests.count == before)
        // .3 stays down (inhibited, weight 0) with a new weight; .2 changes weight; .4 removed; .5 added.
        let changed = Self.text
            .replacingOccurrences(of: "real_server 10.0.0.2 80 { weight 2", with: "real_server 10.0.0.2 80 { weight 4")
            .replacingOccurrences(of: "real_server 10.0.0.4 80 { weight 1\n        alpha", with: "real_server 10.0.0.5 80 { weight 1\n")
            .replacingOccurrences(of: "real_server 10.0.0.3 80 { weight 1", with: "real_server 10.0.0.3 80 { weight 3")
            .replacingOccurrences(of: "lb_kind DR", with: "lb_kind DR\n    lb_algo rr")
        await m.reload(try config(changed))
        let sent = Array(fake.requests[before...])
        #expect(sent == [
            .editService(vsKey, ServiceOptions(scheduler: "rr")),
            .editDestination(vsKey, DestinationOptions(address: ip("10.0.0.2"), port: 80, method: .directRoute, weight: 4)),
            .addDestination(vsKey, DestinationOptions(address: ip("10.0.0.5"), port: 80, method: .directRoute, weight: 1)),
        ])
        #expect(dests(fake) == ["10.0.0.2": 4, "10.0.0.3": 0, "10.0.0.5": 1])
        #expect(await m.isAlive(.address(ip("10.0.0.1"), port: 80), proto: .tcp, realServer: ip("10.0.0.3"), port: 80) == false)
        // Removing the virtual server deletes its service.
        await m.reload(try config("virtual_server 10.0.0.1 81 {\nprotocol TCP\nlb_kind DR\nreal_server 10.0.0.2 81 { }\n}\n"))
        #expect(fake.table.services.map(\.key) == [ServiceKey(proto: .tcp, address: ip("10.0.0.1"), port: 81)])
    }

    @Test func tasksRunWithInjectedClockAndHungProbeDoesNotBlockOthers() async throws {
        let fake = FakeIPVS()
        let sink = LogSink()
        let c = try config("""
        virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_kind DR
            real_server 10.0.0.2 80 { TCP_CHECK { } }
            real_server 10.0.0.3 80 { TCP_CHECK { } }
        }
        """)
        let env = HealthEnvironment(
            probe: { t in
                if t.address == ip("10.0.0.2") { try? await Task.sleep(for: .seconds(3600)); return .success }
                return .failure("refused")
            },
            sleep: { _ in await Task.yield() },
            runScript: { sink.script($0) }, jitter: { _ in .zero })
        let m = HealthMonitor(config: c, backend: fake, log: { sink.add($0) }, environment: env)
        await m.start()
        for _ in 0..<200 where dests(fake)["10.0.0.3"] != nil { try await Task.sleep(for: .milliseconds(5)) }
        #expect(dests(fake) == ["10.0.0.2": 1])
        await m.stop()
    }
}

/// A loopback listener that answers one HTTP request per connection, then closes.
final class LoopbackListener: Sendable {
    let fd: Int32
    let port: UInt16
    init(response: String) throws {
        let lfd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        fd = lfd
        var one: Int32 = 1
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(lfd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(lfd, 8)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(lfd, $0, &len) } }
        port = UInt16(bigEndian: sa.sin_port)
        Thread.detachNewThread {
            while true {
                let c = accept(lfd, nil, nil)
                if c < 0 { return }
                var buf = [UInt8](repeating: 0, count: 4096)
                _ = recv(c, &buf, buf.count, 0)
                _ = response.withCString { send(c, $0, strlen($0), 0) }
                close(c)
            }
        }
    }
    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
}


@Suite struct KeepalivedRealProbeTests {
    @Test func tcpAndHTTPAgainstLoopback() async throws {
        let l = try LoopbackListener(response: "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello")
        defer { l.stop() }
        var t = ProbeTarget(kind: .tcp, address: ip("127.0.0.1"), port: l.port, connectTimeout: .seconds(2))
        #expect(await HealthProbes.run(t) == .success)
        t.kind = .http
        t.url = KeepalivedURL(path: "/", digest: MD5.hex(Array("hello".utf8)))
        #expect(await HealthProbes.run(t) == .success)
        t.url = KeepalivedURL(path: "/", digest: MD5.hex(Array("other".utf8)))
        if case .failure = await HealthProbes.run(t) {} else { Issue.record("digest mismatch not detected") }
        t.url = KeepalivedURL(path: "/", statusCodes: [500...599])
        #expect(await HealthProbes.run(t) == .failure("HTTP status 200"))
        // A closed port is refused.
        let closed = ProbeTarget(kind: .tcp, address: ip("127.0.0.1"), port: 1, connectTimeout: .seconds(2))
        if case .failure = await HealthProbes.run(closed) {} else { Issue.record("connect to port 1 succeeded") }
    }

    @Test func miscCheckExitCodes() async {
        var t = ProbeTarget(kind: .misc, address: ip("127.0.0.1"), port: 0)
        t.command = "exit 0"
        #expect(await HealthProbes.run(t) == .success)
        t.command = "exit 1"
        #expect(await HealthProbes.run(t) == .failure("exit status 1"))
        t.dynamic = true
        t.command = "exit 12"
        #expect(await HealthProbes.run(t) == .successWithWeight(10))
        t.command = "sleep 5"
        t.commandTimeout = .milliseconds(100)
        if case .failure = await HealthProbes.run(t) {} else { Issue.record("timeout not detected") }
    }
}

/// SSL_GET against a real TLS server on loopback (`openssl s_server -www`, a self-signed
/// certificate made by the test).
@Suite struct KeepalivedSSLProbeTests {
    func sh(_ command: String) async -> Int32 {
        guard case .exited(let code) = await ScriptRunner.run(command, as: nil, timeout: .seconds(60)) else { return -1 }
        return code
    }

    @Test func sslGetAgainstLoopbackTLSServer() async throws {
        guard await sh("command -v openssl >/dev/null") == 0 else {
            print("skipped: openssl not installed")
            return
        }
        let dir = "/tmp/lvs-ssl-\(getpid())"
        let port = 20_000 + Int(getpid() % 20_000)
        #expect(await sh("mkdir -p \(dir) && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=rs -days 1 -keyout \(dir)/k.pem -out \(dir)/c.pem >/dev/null 2>&1") == 0)
        // The server runs until its task is cancelled (its process group is stopped then).
        let server = Task { await ScriptRunner.run("exec openssl s_server -quiet -accept 127.0.0.1:\(port) -www -cert \(dir)/c.pem -key \(dir)/k.pem", as: nil, timeout: nil) }
        await probe(port: port)
        server.cancel()
        _ = await server.value
        _ = await sh("rm -rf \(dir)")
    }

    func probe(port: Int) async {
        var t = ProbeTarget(kind: .ssl, address: IPAddress("127.0.0.1")!, port: UInt16(port), connectTimeout: .seconds(3))
        t.url = KeepalivedURL(path: "/")
        t.serverName = "rs"
        // The server needs a moment to listen.
        var result = ProbeResult.failure("not run")
        for _ in 0..<50 {
            result = await HealthProbes.run(t)
            if result == .success { break }
            usleep(100_000)
        }
        #expect(result == .success)
        t.url = KeepalivedURL(path: "/", statusCodes: [404...404])
        #expect(await HealthProbes.run(t) == .failure("HTTP status 200"))
        // Plain HTTP to the TLS port fails; TLS to a closed port fails.
        var closed = t
        closed.port = 1
        if case .failure = await HealthProbes.run(closed) {} else { Issue.record("TLS to port 1 succeeded") }
    }
}
