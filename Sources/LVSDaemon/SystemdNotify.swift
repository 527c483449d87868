import CLVSShim
import Foundation
import Glibc
import LVSSystem
import Synchronization

/// systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram per message to the
/// Unix socket named by `NOTIFY_SOCKET` (a path, or an abstract name written with a leading '@').
/// Without `NOTIFY_SOCKET` every call does nothing. With `WATCHDOG_USEC` (and `WATCHDOG_PID`
/// naming this process, or unset) `startWatchdog` sends WATCHDOG=1 every half interval.
///
/// `@unchecked Sendable`: `socketAddress`, `addressLength` and `watchdogInterval` are constants;
/// the watchdog thread's stop signal is behind `watchdog`'s Mutex; the socket descriptor is opened
/// per message.
public final class SystemdNotifier: @unchecked Sendable {
    /// Where the messages go (nil: notification is off).
    private let socketAddress: sockaddr_un?
    private let addressLength: socklen_t
    /// systemd's WatchdogSec for this process, nil when it is off or meant for another PID.
    public let watchdogInterval: Duration?
    /// Signalled to end the watchdog thread (nil while none runs).
    private let watchdog = Mutex<DispatchSemaphore?>(nil)

    /// The notifier of this process's environment.
    public static func fromEnvironment() -> SystemdNotifier {
        SystemdNotifier(environment: ProcessInfo.processInfo.environment, pid: getpid())
    }

    /// `environment`'s NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, for the process `pid`.
    public init(environment: [String: String], pid: pid_t) {
        (socketAddress, addressLength) = Self.address(environment["NOTIFY_SOCKET"])
        watchdogInterval = Self.watchdogInterval(usec: environment["WATCHDOG_USEC"], pidField: environment["WATCHDOG_PID"], pid: pid)
    }

    /// True when NOTIFY_SOCKET names a usable socket.
    public var isEnabled: Bool { socketAddress != nil }

    /// WATCHDOG_USEC as a duration, if it is a positive number and WATCHDOG_PID is unset or `pid`.
    static func watchdogInterval(usec: String?, pidField: String?, pid: pid_t) -> Duration? {
        guard let usec, let value = UInt64(usec), value > 0 else { return nil }
        if let pidField {
            guard let owner = pid_t(pidField), owner == pid else { return nil }
        }
        return .microseconds(Int64(clamping: value))
    }

    /// sockaddr_un for NOTIFY_SOCKET and its length: a path ends at its NUL; an abstract name
    /// ('@' replaced by a NUL byte) is exactly as long as its bytes, so the length counts them.
    static func address(_ name: String?) -> (sockaddr_un?, socklen_t) {
        guard let name, let first = name.utf8.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "@") else { return (nil, 0) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        let abstract = first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A path needs room for its NUL; an abstract name has none.
        guard bytes.count + (abstract ? 0 : 1) <= capacity else { return (nil, 0) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return (address, socklen_t(pathOffset + bytes.count + (abstract ? 0 : 1)))
    }

    /// Sends `state` (lines of KEY=VALUE) as one datagram; false if notification is off or the
    /// send failed (lvsd goes on either way: systemd's absence is not an error). Never blocks:
    /// a receiver whose queue is full (a Unix datagram socket queues 10 by default) loses the
    /// message rather than stalling the thread that sends it.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard var address = socketAddress else { return false }
        guard let fd = try? SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_DGRAM.rawValue)) else { return false }
        defer { close(fd) }
        let bytes = Array(state.utf8)
        let length = addressLength
        let sent = try? withUnsafePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try syscall("sendto") { bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), sa, length) } }
            }
        }
        return sent == bytes.count
    }

    /// READY=1, with a STATUS line.
    public func ready(status: String) { notify("READY=1\nSTATUS=\(status)") }

    /// RELOADING=1 with MONOTONIC_USEC (systemd matches it against the reload it asked for).
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        notify("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    /// STOPPING=1: lvsd has begun to stop.
    public func stopping() { notify("STOPPING=1") }

    /// Sends WATCHDOG=1 every half `watchdogInterval` until `stopWatchdog` (nothing if off).
    /// A thread of its own, not a task: a cooperative pool kept busy by blocking work (a health
    /// check, a test suite) must not starve the messages until systemd kills a working lvsd.
    public func startWatchdog() {
        guard isEnabled, let interval = watchdogInterval else { return }
        let half = interval / 2
        let halfNanoseconds = Int(half.components.seconds) * 1_000_000_000 + Int(half.components.attoseconds / 1_000_000_000)
        watchdog.withLock { stop in
            guard stop == nil else { return }
            let signal = DispatchSemaphore(value: 0)
            stop = signal
            let thread = Thread { [self] in
                repeat {
                    notify("WATCHDOG=1")
                } while signal.wait(timeout: .now() + .nanoseconds(halfNanoseconds)) == .timedOut
            }
            thread.name = "lvsd-watchdog"
            thread.start()
        }
    }

    /// Ends the WATCHDOG=1 messages.
    public func stopWatchdog() {
        watchdog.withLock { stop in
            stop?.signal()
            stop = nil
        }
    }
}
