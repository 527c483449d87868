import Glibc
import IPVSAdm
import LVSModel

/// `lvsadm daemon announcements [--exabgp [--interval SECONDS]]`: the VIPs lvsd announces
/// (`lvsd --announce-table`), one line each as `lvsadm daemon status` shows them; with
/// `--exabgp`, runs until its output is closed, printing ExaBGP `announce`/`withdraw` lines as
/// the state changes (asked of lvsd every SECONDS, 1 by default).
enum DaemonAnnouncements {
    static let usage = "usage: lvsadm daemon announcements [--exabgp [--interval SECONDS]]\n"

    static func run(_ args: [String]) -> Int32 {
        var exabgp = false
        var interval = 1.0
        var i = 0
        while i < args.count {
            switch args[i] {
            case "--exabgp": exabgp = true
            case "--interval":
                i += 1
                guard i < args.count, let v = Double(args[i]), v >= 0.1, v <= 3600 else {
                    fputs("lvsadm: --interval must be from 0.1 to 3600 seconds\n", standardError)
                    return 2
                }
                interval = v
            default:
                fputs(usage, standardError)
                return 2
            }
            i += 1
        }
        guard exabgp else {
            do {
                let states = try fetch()
                if states.isEmpty { fputs("lvsadm: lvsd announces nothing (start it with --announce-table)\n", standardError) }
                for s in states { fputs("\(s)\n", standardOutput) }
                return 0
            } catch {
                fputs("lvsadm: \(describe(error))\n", standardError)
                return 2
            }
        }
        var feed = ExaBGPFeed()
        var reachable = true
        while true {
            var states: [VIPAnnouncement]?
            do {
                states = try fetch()
                if !reachable { fputs("lvsadm: lvsd answers again\n", standardError) }
                reachable = true
            } catch {
                if reachable { fputs("lvsadm: lvsd does not answer (\(describe(error))): every VIP withdrawn\n", standardError) }
                reachable = false
            }
            for line in feed.update(states) {
                // ExaBGP gone (its end of the pipe closed): nothing left to tell.
                guard fputs(line + "\n", standardOutput) >= 0 else { return 0 }
            }
            guard fflush(standardOutput) == 0 else { return 0 }
            usleep(useconds_t(interval * 1_000_000))
        }
    }

    static func describe(_ error: any Error) -> String {
        (error as? ControlTransportError)?.message ?? "\(error)"
    }

    /// The announcement lines of lvsd's status.
    static func fetch() throws -> [VIPAnnouncement] {
        switch try SocketControlClient().execute(.status) {
        case let .text(t): return VIPAnnouncement.parseStatus(t)
        case let .failed(e): throw ControlTransportError(message: "lvsd refused: \(e.errnoName)")
        default: throw ControlTransportError(message: "unexpected answer from lvsd")
        }
    }
}
