import Foundation
import XCTest
import CLVSShim
import LVSCore
@testable import LVSDataPlane
import LVSModel

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Forwards IPv4 between two interfaces like a DR director: rewrites both MACs, decrements the TTL,
/// recomputes the header checksum. Everything else is passed to the kernel.
final class TestForwarder: FrameProcessor {
    struct Route { var egress: Int32; var source: MACAddress; var destination: MACAddress }
    let first: Int32, firstRoute: Route
    let second: Int32, secondRoute: Route
    var largest = 0
    var forwarded = 0
    var ticks = 0

    init(_ first: Int32, _ firstRoute: Route, _ second: Int32, _ secondRoute: Route) {
        self.first = first; self.firstRoute = firstRoute
        self.second = second; self.secondRoute = secondRoute
    }

    func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict {
        guard frame.count >= 34, frame[12] == 0x08, frame[13] == 0x00 else { return .pass }
        let route: Route
        if interface == first { route = firstRoute } else if interface == second { route = secondRoute } else { return .pass }
        let base = frame.baseAddress!
        let ihl = Int(frame[14] & 0x0F) * 4
        guard ihl >= 20, frame.count >= 14 + ihl else { return .drop(.malformed) }
        guard frame[22] > 1 else { return .drop(.ttlExceeded) }
        route.destination.store(to: base)
        route.source.store(to: base + 6)
        frame[22] -= 1
        frame[24] = 0; frame[25] = 0
        var sum: UInt32 = 0
        for i in stride(from: 14, to: 14 + ihl, by: 2) { sum += UInt32(frame[i]) << 8 | UInt32(frame[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        let checksum = ~UInt16(sum)
        frame[24] = UInt8(checksum >> 8); frame[25] = UInt8(checksum & 0xFF)
        largest = max(largest, frame.count)
        forwarded += 1
        return .forward(interface: route.egress)
    }

    func tick(now: UInt64) { ticks += 1 }
}

/// A result handed from a helper thread to the waiting test.
///
/// `@unchecked Sendable`: the helper thread writes `result` and then signals a semaphore; the test
/// thread reads it only after waiting on that semaphore, so the write happens before the read and
/// the two never overlap. (`T` may be a non-Sendable worker object, so a `Mutex` cannot hold it.)
final class ResultBox<T>: @unchecked Sendable { var result: Result<T, Error>? }

/// Runs `body` on a new thread that first enters network namespace `name`; sockets it creates stay
/// in that namespace whatever thread uses them later.
func inNamespace<T>(_ name: String, timeout: Double = 30, _ body: @escaping () throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    // Unsafe only in name: the calling thread blocks on `done` while the new thread runs `body`, so
    // `body` and what it captures are never used by two threads at once (after a timeout the test
    // fails and does not touch them again).
    nonisolated(unsafe) let body = body
    let thread = Thread {
        if clvs_setns_net("/run/netns/\(name)") != 0 {
            box.result = .failure(TestFailure("setns \(name): \(String(cString: strerror(errno)))"))
        } else {
            box.result = Result { try body() }
        }
        done.signal()
    }
    thread.start()
    guard done.wait(timeout: .now() + timeout) == .success else { throw TestFailure("timeout in namespace \(name)") }
    return try box.result!.get()
}

func shell(_ command: String) throws {
    try ExternalCommand.check(command.split(separator: " ").map(String.init))
}

func ipv4Address(_ text: String, port: UInt16) -> sockaddr_in {
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_port = port.bigEndian
    _ = inet_pton(AF_INET, text, &sa.sin_addr)
    return sa
}

func makeSocket(_ type: Int32, bindTo address: String?, port: UInt16, timeoutSeconds: Int = 10) throws -> Int32 {
    let fd = socket(AF_INET, type, 0)
    guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
    var buffer: Int32 = 4 << 20
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, socklen_t(4))
    var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    if let address {
        var sa = ipv4Address(address, port: port)
        let rc = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw TestFailure("bind \(address):\(port): \(String(cString: strerror(errno)))") }
    }
    return fd
}

func connectSocket(_ fd: Int32, to address: String, port: UInt16) throws {
    var sa = ipv4Address(address, port: port)
    let rc = withUnsafePointer(to: &sa) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { throw TestFailure("connect \(address):\(port): \(String(cString: strerror(errno)))") }
}

/// Sends all bytes or throws (the socket's SO_SNDTIMEO bounds every wait).
func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
        if n < 0 { if errno == EINTR { continue }; throw TestFailure("send: \(String(cString: strerror(errno)))") }
        offset += n
    }
}

/// Receives exactly `count` bytes or throws (SO_RCVTIMEO bounds every wait).
func receiveExactly(_ fd: Int32, _ count: Int) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var offset = 0
    while offset < count {
        let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
        if n < 0 { if errno == EINTR { continue }; throw TestFailure("recv after \(offset) bytes: \(String(cString: strerror(errno)))") }
        if n == 0 { throw TestFailure("connection closed after \(offset) of \(count) bytes") }
        offset += n
    }
    return out
}

func pattern(_ count: Int, seed: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed &+ $0 >> 11) }
}

/// `size` bytes each way over TCP between a client in namespace `clientNamespace` and a server
/// listening on `serverIP:port` in `serverNamespace` (every wait bounded). Returns the seconds the
/// exchange took; throws, naming the step, when anything times out or arrives corrupted.
func tcpExchange(clientNamespace: String, serverNamespace: String, serverIP: String, port: UInt16, size: Int) throws -> Double {
    let upload = pattern(size, seed: 1), reply = pattern(size, seed: 2)
    let listener = try inNamespace(serverNamespace) { () -> Int32 in
        let fd = try makeSocket(Int32(SOCK_STREAM.rawValue), bindTo: serverIP, port: port)
        guard listen(fd, 4) == 0 else { throw TestFailure("listen") }
        return fd
    }
    defer { close(listener) }
    let serverDone = DispatchSemaphore(value: 0)
    let serverResult = ResultBox<Int>()
    Thread {
        serverResult.result = Result {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 10_000) == 1 else { throw TestFailure("accept timed out") }
            let conn = accept(listener, nil, nil)
            guard conn >= 0 else { throw TestFailure("accept: \(String(cString: strerror(errno)))") }
            defer { close(conn) }
            var tv = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            guard try receiveExactly(conn, size) == upload else { throw TestFailure("server: upload corrupted") }
            try sendAll(conn, reply)
            return size
        }
        serverDone.signal()
    }.start()
    let client = try inNamespace(clientNamespace) { try makeSocket(Int32(SOCK_STREAM.rawValue), bindTo: nil, port: 0) }
    defer { close(client) }
    let started = DispatchTime.now().uptimeNanoseconds
    try connectSocket(client, to: serverIP, port: port)
    try sendAll(client, upload)
    guard try receiveExactly(client, size) == reply else { throw TestFailure("client: reply corrupted") }
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
    guard serverDone.wait(timeout: .now() + 15) == .success else { throw TestFailure("server did not finish") }
    guard try serverResult.result?.get() == size else { throw TestFailure("server exchanged the wrong size") }
    return elapsed
}
