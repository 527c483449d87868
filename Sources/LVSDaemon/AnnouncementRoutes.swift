import CLVSShim
import Glibc
import LVSDataPlane
import LVSModel
import LVSSystem
import Synchronization

/// Where lvsd puts the routes of the VIPs it announces; a routing daemon reads them from there.
protocol AnnouncementRoutes: AnyObject, Sendable {
    /// Adds (`add`) and removes (`remove`) routes; the prefixes whose change failed, with why.
    func apply(add: [AnnouncedPrefix], remove: [AnnouncedPrefix]) -> [(prefix: AnnouncedPrefix, error: String)]
    /// Where the routes go, for the status line ("table 100 via lvsann0").
    var summary: String { get }
    /// Removes every route that is left (as at lvsd's death) and lets the device go.
    func close()
}

/// The kernel routing table `--announce-table T`: `VIP/32` (or `/128`) `proto static` through a
/// TUN device that lvsd holds open (`lvsann0`, or the next free number when another lvsd has that
/// one). Table T is in no `ip rule`: the director's own forwarding never uses it.
///
/// lvsd's death, `kill -9` included, withdraws every route, in two ways:
/// - the watcher, a `sh` in a session of its own that lvsd starts, reads a pipe whose only writer
///   is lvsd: at lvsd's end it reads end-of-file and deletes the routes (`ip route flush table T
///   dev DEV`); a deletion is what FRR's zebra hears (it does not notice IPv4 routes that the
///   kernel drops with their device, measured with FRR 8.4). The watcher holds the device open
///   until it has deleted them, then ends;
/// - the device is not persistent: when its last holder ends the kernel deletes it and every
///   route through it (BIRD notices that too), so a watcher killed with lvsd leaves nothing.
///
final class KernelAnnouncementRoutes: AnnouncementRoutes {
    /// The device name the kernel numbers (`%d`).
    static let devicePattern = "lvsann%d"
    let table: UInt32
    let device: String
    private let fd: Int32
    /// The write end of the watcher's pipe: closing it (or lvsd's death) makes the watcher withdraw.
    private let lifeline: Int32
    private let closed = Mutex(false)
    private let lifelineClosed = Mutex(false)

    /// Opens the device, turns off its IPv6 link-local address (nothing is ever sent through it),
    /// brings it up (a route needs a device that is up) and starts the watcher; `watcherEnded`
    /// hears its exit status if it ends.
    init(table: UInt32, watcherEnded: @escaping @Sendable (Int32) -> Void = { _ in }) throws {
        self.table = table
        var name = [CChar](repeating: 0, count: Int(clvs_ifnamsiz))
        fd = try syscall("open /dev/net/tun") { clvs_tun_open(Self.devicePattern, &name) }
        device = String(cString: name)
        do {
            try ExternalCommand.check(["ip", "link", "set", "dev", device, "addrgenmode", "none"])
            try ExternalCommand.check(["ip", "link", "set", "dev", device, "up"])
        } catch {
            Glibc.close(fd)
            throw ServerError("--announce-table: cannot bring up \(device): \(error)")
        }
        var ends: [Int32] = [-1, -1]
        let copy = Glibc.dup(fd)
        guard copy >= 0, pipe(&ends) == 0 else {
            let e = errno
            if copy >= 0 { Glibc.close(copy) }
            Glibc.close(fd)
            throw ServerError("--announce-table: cannot start the watcher: \(String(cString: strerror(e)))")
        }
        lifeline = ends[1]
        do {
            try ExternalCommand.spawnDetached(["sh", "-c", Self.watcherScript(table: table, device: device)],
                                              input: ends[0], output: copy, finished: watcherEnded)
        } catch {
            for f in [ends[0], ends[1], copy, fd] { Glibc.close(f) }
            throw ServerError("--announce-table: cannot start the watcher: \(error)")
        }
    }

    /// The watcher: ignores SIGTERM, SIGINT and SIGHUP (a service manager that stops what lvsd
    /// left, as systemd does after lvsd's death, must not stop it before it has deleted the
    /// routes; it ends by itself right after), moves the device to descriptor 3 (held until the
    /// end), waits for end-of-file on its standard input and deletes the routes that remain.
    static func watcherScript(table: UInt32, device: String) -> String {
        "trap '' TERM INT HUP; exec 3>&1 >/dev/null 2>&1; cat; ip route flush table \(table) dev \(device); ip -6 route flush table \(table) dev \(device)"
    }

    var summary: String { "table \(table) via \(device)" }

    func apply(add: [AnnouncedPrefix], remove: [AnnouncedPrefix]) -> [(prefix: AnnouncedPrefix, error: String)] {
        guard !add.isEmpty || !remove.isEmpty else { return [] }
        // One `ip` for the whole change; each line on its own so that a failing one says which.
        var failed: [(AnnouncedPrefix, String)] = []
        let lines = add.map { ($0, ["route", "replace", "\($0)", "dev", device, "table", "\(table)", "proto", "static"]) }
            + remove.map { ($0, ["route", "del", "\($0)", "dev", device, "table", "\(table)"]) }
        let input = lines.map { $0.1.joined(separator: " ") + "\n" }.joined()
        do {
            let (status, output) = try ExternalCommand.run(["ip", "-force", "-batch", "-"], input: input)
            guard status != 0 else { return [] }
            let failing = Self.failedLines(output)
            if failing.isEmpty { return lines.map { ($0.0, output.trimmingCharacters(in: .whitespacesAndNewlines)) } }
            for (number, message) in failing.sorted(by: { $0.key < $1.key }) where (1...lines.count).contains(number) {
                // Removing a route that is already gone is done.
                if number > add.count && message.contains("No such process") { continue }
                failed.append((lines[number - 1].0, message))
            }
        } catch {
            failed = lines.map { ($0.0, "\(error)") }
        }
        return failed
    }

    /// `ip -batch`'s failures: each failing line's message (the lines before its
    /// "Command failed -:N"), by line number N.
    static func failedLines(_ output: String) -> [Int: String] {
        var out: [Int: String] = [:]
        var message: [Substring] = []
        for line in output.split(separator: "\n") {
            if let range = line.range(of: "Command failed -:"), let n = Int(line[range.upperBound...].prefix(while: \.isNumber)) {
                out[n] = message.joined(separator: "; ")
                message = []
            } else {
                message.append(line)
            }
        }
        return out
    }

    /// What lvsd's death does to the watcher: it deletes the routes left (the device stays while
    /// lvsd holds it).
    func endLifeline() {
        if Self.once(lifelineClosed) { Glibc.close(lifeline) }
    }

    func close() {
        endLifeline()
        if Self.once(closed) { Glibc.close(fd) }
    }

    /// True the first time only.
    private static func once(_ flag: borrowing Mutex<Bool>) -> Bool {
        flag.withLock { done in
            defer { done = true }
            return !done
        }
    }

    deinit { close() }
}

