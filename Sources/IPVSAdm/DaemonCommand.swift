import LVSModel

/// `lvsadm daemon VERB ...`: lvsd's own verbs, which ipvsadm does not have.
///
/// - `status`, `reload`, `restart`: one request; the answer's text is printed. A reload that
///   failed says so in its text and exits 1.
/// - `sysctl [NAME[=VALUE]]...`: no argument lists every run-time setting with its value; NAME
///   shows one; NAME=VALUE sets it (all assignments as one change, or none). A bad name or value
///   is named on stderr, nothing is changed, and the exit status is 1.
/// - `announcements [--exabgp [--interval SECONDS]]`: the VIPs lvsd announces
///   (`lvsd --announce-table`), one line each as `daemon status` shows them; with `--exabgp`, runs
///   until its output is closed, printing ExaBGP `announce`/`withdraw` lines as the state changes
///   (asked of lvsd every SECONDS, 1 by default).
///
/// Exit statuses: 0 done, 1 lvsd refused or a bad setting, 2 usage or lvsd unreachable.
public struct DaemonCommand {
    public static let usage = "usage: lvsadm daemon status|reload|restart|sysctl [NAME[=VALUE]]...|announcements [--exabgp]\n"
    public static let announcementsUsage = "usage: lvsadm daemon announcements [--exabgp [--interval SECONDS]]\n"

    let backend: any ControlBackend
    let io: IPVSAdmIO
    /// Writes one ExaBGP line and flushes it; false once the reader is gone (ends the feed).
    let feedLine: (String) -> Bool
    /// Waits between two polls of the feed (seconds).
    let pause: (Double) -> Void

    public init(backend: any ControlBackend, io: IPVSAdmIO, feedLine: @escaping (String) -> Bool,
                pause: @escaping (Double) -> Void) {
        self.backend = backend
        self.io = io
        self.feedLine = feedLine
        self.pause = pause
    }

    /// Runs the words after `daemon`; the exit status.
    public func run(_ args: [String]) -> Int32 {
        switch args.first {
        case "sysctl": return sysctl(Array(args.dropFirst()))
        case "announcements": return announcements(Array(args.dropFirst()))
        case "status" where args.count == 1: return simple(.status)
        case "reload" where args.count == 1: return simple(.reload)
        case "restart" where args.count == 1: return simple(.restart)
        default:
            io.writeErr(Self.usage)
            return 2
        }
    }

    /// The exit status when lvsd cannot be reached (or the transport fails).
    static let unreachable: Int32 = 2

    /// Sends `request`; nil (said on stderr) when lvsd cannot be reached.
    private func ask(_ request: ControlRequest) -> ControlResponse? {
        do {
            return try backend.execute(request)
        } catch let e as ControlTransportError {
            io.writeErr("lvsadm: \(e.message)\n")
        } catch {
            io.writeErr("lvsadm: \(error)\n")
        }
        return nil
    }

    private func simple(_ request: ControlRequest) -> Int32 {
        switch ask(request) {
        case nil: return Self.unreachable
        case let .text(t):
            io.writeOut(t)
            return request == .reload && t.contains("failed") ? 1 : 0
        case let .failed(e):
            io.writeErr("lvsadm: lvsd refused: \(e.errnoName)\n")
            return 1
        default:
            return 0
        }
    }

    private func sysctl(_ args: [String]) -> Int32 {
        var show: [Sysctl] = []
        var set: [SysctlAssignment] = []
        do {
            for arg in args {
                if arg.contains("=") {
                    let a = try SysctlSyntax.assignment(arg)
                    guard a.setting.settableAtRunTime else {
                        throw SysctlError("\(a.setting.name): fixed at start (lvsd --set-sysctl or --settings)")
                    }
                    set.append(a)
                    show.append(a.setting)
                } else {
                    show.append(try SysctlSyntax.setting(arg))
                }
            }
        } catch {
            io.writeErr("lvsadm: \(error)\n")
            return 1
        }
        switch ask(.sysctl(set)) {
        case nil: return Self.unreachable
        case let .sysctls(values):
            for s in show.isEmpty ? Sysctl.allCases : show { io.writeOut("\(s.name) = \(values[s])\n") }
            return 0
        case let .failed(e):
            io.writeErr("lvsadm: lvsd refused the settings: \(e.errnoName)\n")
            return 1
        default:
            io.writeErr("lvsadm: unexpected answer from lvsd\n")
            return 1
        }
    }

    private func announcements(_ args: [String]) -> Int32 {
        var exabgp = false
        var interval = 1.0
        var i = 0
        while i < args.count {
            switch args[i] {
            case "--exabgp": exabgp = true
            case "--interval":
                i += 1
                guard i < args.count, let v = Double(args[i]), v >= 0.1, v <= 3600 else {
                    io.writeErr("lvsadm: --interval must be from 0.1 to 3600 seconds\n")
                    return 2
                }
                interval = v
            default:
                io.writeErr(Self.announcementsUsage)
                return 2
            }
            i += 1
        }
        guard exabgp else {
            do {
                let states = try fetchAnnouncements()
                if states.isEmpty { io.writeErr("lvsadm: lvsd announces nothing (start it with --announce-table)\n") }
                for s in states { io.writeOut("\(s)\n") }
                return 0
            } catch {
                io.writeErr("lvsadm: \(Self.describe(error))\n")
                return 2
            }
        }
        var feed = ExaBGPFeed()
        var reachable = true
        while true {
            var states: [VIPAnnouncement]?
            do {
                states = try fetchAnnouncements()
                if !reachable { io.writeErr("lvsadm: lvsd answers again\n") }
                reachable = true
            } catch {
                if reachable { io.writeErr("lvsadm: lvsd does not answer (\(Self.describe(error))): every VIP withdrawn\n") }
                reachable = false
            }
            // ExaBGP gone (its end of the pipe closed): nothing left to tell.
            for line in feed.update(states) where !feedLine(line) { return 0 }
            pause(interval)
        }
    }

    static func describe(_ error: any Error) -> String {
        (error as? ControlTransportError)?.message ?? "\(error)"
    }

    /// The announcement lines of lvsd's status.
    func fetchAnnouncements() throws -> [VIPAnnouncement] {
        switch try backend.execute(.status) {
        case let .text(t): return VIPAnnouncement.parseStatus(t)
        case let .failed(e): throw ControlTransportError(message: "lvsd refused: \(e.errnoName)")
        default: throw ControlTransportError(message: "unexpected answer from lvsd")
        }
    }
}
