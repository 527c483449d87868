import CLVSShim
import Foundation
import Glibc
import LVSControl
import LVSCore
import LVSDataPlane
import LVSSystem
import Testing
@testable import LVSDaemon
import LVSModel

/// The test's end of NOTIFY_SOCKET: a Unix datagram socket bound in a temporary directory, read
/// without blocking (the daemon's tasks share the cooperative pool with the test's).
final class NotifySocket {
    let fd: Int32
    let path: String

    init(directory: String) throws {
        path = directory + "/notify.sock"
        fd = try SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_DGRAM.rawValue))
        try SocketSetup.bind(fd, to: #require(RawSocketAddress.unix(path: path)))
    }

    deinit { close(fd) }

    /// A datagram's text if one is queued, else nil at once.
    func poll() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n), as: UTF8.self)
    }

    /// The next datagram, or nil after `seconds` without one.
    func receive(seconds: Double = 1) async -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let message = poll() { return message }
            try? await Task.sleep(for: .milliseconds(10))
        } while Date() < deadline
        return nil
    }

    /// Datagrams until one has the line `line` (returned), or nil after `seconds`; `seen` gets each.
    /// What is queued is always read before giving up: a test task that the cooperative pool ran
    /// late (other suites' blocking work on a 2-core machine) still sees what arrived meanwhile.
    func receive(containing line: String, seconds: Double = 30, seen: (String) -> Void = { _ in }) async -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            while let message = poll() {
                seen(message)
                if message.split(separator: "\n").contains(Substring(line)) { return message }
            }
            if Date() >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// lvsd's side of systemd's notify protocol (the unit is Type=notify): READY=1 once the data
/// plane forwards and the control socket listens, RELOADING=1 and READY=1 around a reload,
/// STOPPING=1 at the stop, WATCHDOG=1 while WATCHDOG_USEC is set; nothing without NOTIFY_SOCKET.
@Suite struct SystemdNotifyTests {
    @Test func theEnvironmentIsReadAsSystemdWritesIt() {
        let pid: pid_t = 4242
        #expect(!SystemdNotifier(environment: [:], pid: pid).isEnabled)
        #expect(!SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/path"], pid: pid).isEnabled)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"], pid: pid).isEnabled)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "@/org/freedesktop/systemd1/notify/1"], pid: pid).isEnabled)
        let tooLong = "/" + String(repeating: "x", count: 200)
        #expect(!SystemdNotifier(environment: ["NOTIFY_SOCKET": tooLong], pid: pid).isEnabled)
        // WATCHDOG_USEC is for this process only when WATCHDOG_PID is unset or names it.
        #expect(SystemdNotifier.watchdogInterval(usec: "3000000", pidField: nil, pid: pid) == .seconds(3))
        #expect(SystemdNotifier.watchdogInterval(usec: "3000000", pidField: "4242", pid: pid) == .seconds(3))
        #expect(SystemdNotifier.watchdogInterval(usec: "3000000", pidField: "1", pid: pid) == nil)
        #expect(SystemdNotifier.watchdogInterval(usec: "0", pidField: nil, pid: pid) == nil)
        #expect(SystemdNotifier.watchdogInterval(usec: "soon", pidField: nil, pid: pid) == nil)
        #expect(SystemdNotifier.watchdogInterval(usec: nil, pidField: nil, pid: pid) == nil)
    }

    @Test func aPathAndAnAbstractNameHaveTheirExactLengths() {
        let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        // A path counts its NUL; an abstract name ('@' sent as a NUL byte) does not end with one.
        #expect(SystemdNotifier.address("/run/n").1 == socklen_t(offset + 7))
        let (abstract, length) = SystemdNotifier.address("@n1")
        #expect(length == socklen_t(offset + 3))
        let first = withUnsafeBytes(of: abstract!.sun_path) { $0[0] }
        #expect(first == 0)
    }

    @Test func anAbstractSocketReceivesTheMessage() throws {
        let name = "lvsd-test-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_DGRAM.rawValue))
        defer { close(fd) }
        try SocketSetup.setOption(fd, SOL_SOCKET, SO_RCVTIMEO, timeval(tv_sec: 5, tv_usec: 0), name: "SO_RCVTIMEO")
        var (address, length) = SystemdNotifier.address("@" + name)
        _ = try withUnsafePointer(to: &address!) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in try syscall("bind") { bind(fd, sa, length) } }
        }
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "@" + name], pid: getpid()).notify("READY=1"))
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        #expect(n > 0 && String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self) == "READY=1")
    }

    /// A receiver that does not read (its queue is full) loses messages; the sender never blocks
    /// (a blocked sender on the cooperative pool once stalled every task of the process).
    @Test(.timeLimit(.minutes(1))) func aFullQueueLosesMessagesWithoutBlocking() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let notify = try NotifySocket(directory: dir.path)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": notify.path], pid: getpid())
        var sent = 0, lost = 0
        for _ in 0..<200 { if notifier.notify("WATCHDOG=1") { sent += 1 } else { lost += 1 } }
        #expect(sent > 0 && lost > 0)
        var received = 0
        while notify.poll() != nil { received += 1 }
        #expect(received == sent)
    }

    @Test(.enabled(if: geteuid() == 0, "root: lvsd's start-up checks it"))
    func readyReloadingStoppingAndTheWatchdogReachTheSocket() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let notify = try NotifySocket(directory: dir.path)
        let controlPath = dir.path + "/lvsd.sock"
        let daemon = LVSD(options: DaemonStartupTests.options(socket: controlPath), logger: Lab.logger)
        daemon.notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "4000000",
                                                        "WATCHDOG_PID": "\(getpid())"], pid: getpid())
        daemon.dataPlaneFactory = { director in InMemoryDataPlane(processor: director.makeWorker(0), interfaces: [Lab.interface]) }
        let service = try await daemon.start()
        var stopped = false
        defer { if !stopped { Task { await service.shutdown() } } }

        // READY=1 comes once, when the control socket already answers.
        let ready = try #require(await notify.receive(containing: "READY=1"))
        #expect(ready.contains("STATUS="))
        let client = try #require(ControlClient(path: controlPath))
        #expect(client.request(.status) != nil)

        // The watchdog: WATCHDOG=1 again and again (every WATCHDOG_USEC/2), counted, not timed
        // (2 s apart: the socket's queue of 10 holds 20 s of them while the test task waits).
        var watchdogs = 0
        for _ in 0..<3 {
            if await notify.receive(containing: "WATCHDOG=1") != nil { watchdogs += 1 }
        }
        #expect(watchdogs == 3)

        // A reload (what SIGHUP and the control socket's reload call): RELOADING=1 with
        // MONOTONIC_USEC, then READY=1.
        _ = await service.reload()
        let reloading = try #require(await notify.receive(containing: "RELOADING=1"))
        let usec = reloading.split(separator: "\n").first { $0.hasPrefix("MONOTONIC_USEC=") }
        #expect(usec.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) }.map { $0 > 0 } == true)
        #expect(await notify.receive(containing: "READY=1") != nil)

        // The stop: STOPPING=1, and the watchdog ends with it.
        await service.shutdown()
        stopped = true
        #expect(await notify.receive(containing: "STOPPING=1") != nil)
        while await notify.receive() != nil {} // what was queued before the stop
        #expect(await notify.receive() == nil)
    }
}
