import IPVSAdm
import LVSModel
import Synchronization
import Testing

/// `lvsadm daemon ...` (DaemonCommand) against a scripted lvsd: what it asks, prints and exits with.
struct DaemonCommandTests {
    /// Answers each request from `answer`, recording it; throws the transport error it returns.
    final class ScriptedLVSD: ControlBackend, @unchecked Sendable { // used from one test's thread only
        var requests: [ControlRequest] = []
        let answer: (ControlRequest, Int) -> Result<ControlResponse, ControlTransportError>
        init(_ answer: @escaping (ControlRequest, Int) -> Result<ControlResponse, ControlTransportError>) { self.answer = answer }
        func execute(_ request: ControlRequest) throws -> ControlResponse {
            requests.append(request)
            return try answer(request, requests.count - 1).get()
        }
    }

    struct Run {
        var code: Int32
        var out = ""
        var err = ""
        var feed: [String] = []
        var pauses = 0
    }

    /// Runs `daemon ARGS`; the feed's output is closed after `feedLines` lines.
    static func run(_ args: [String], _ lvsd: ScriptedLVSD, feedLines: Int = .max) -> Run {
        var r = Run(code: -1)
        let out = Mutex(""), err = Mutex(""), feed = Mutex<[String]>([]), pauses = Mutex(0)
        let io = IPVSAdmIO(writeOut: { s in out.withLock { $0 += s } }, writeErr: { s in err.withLock { $0 += s } }, readLine: { nil })
        let command = DaemonCommand(backend: lvsd, io: io, feedLine: { line in
            feed.withLock { f in
                guard f.count < feedLines else { return false }
                f.append(line)
                return true
            }
        }, pause: { _ in pauses.withLock { $0 += 1 } })
        r.code = command.run(args)
        r.out = out.withLock { $0 }
        r.err = err.withLock { $0 }
        r.feed = feed.withLock { $0 }
        r.pauses = pauses.withLock { $0 }
        return r
    }

    @Test func statusReloadAndRestartPrintLVSDsText() {
        let lvsd = ScriptedLVSD { request, _ in
            switch request {
            case .status: return .success(.text("data plane: afpacket\n"))
            case .reload: return .success(.text("lvsd: reload failed, running configuration kept: x\n"))
            default: return .success(.text("lvsd: restarting\n"))
            }
        }
        let status = Self.run(["status"], lvsd)
        #expect(status.code == 0 && status.out == "data plane: afpacket\n" && status.err.isEmpty)
        // A failed reload says so in its text, and the exit status says it too.
        #expect(Self.run(["reload"], lvsd).code == 1)
        #expect(Self.run(["restart"], lvsd).out == "lvsd: restarting\n")
        #expect(lvsd.requests == [.status, .reload, .restart])
    }

    @Test func refusalsUnreachableLVSDAndUsage() {
        let refusing = ScriptedLVSD { _, _ in .success(.failed(.invalid)) }
        let refused = Self.run(["status"], refusing)
        #expect(refused.code == 1 && refused.err.hasPrefix("lvsadm: lvsd refused: "))
        let gone = ScriptedLVSD { _, _ in .failure(ControlTransportError(message: "cannot connect to /run/lvsd.sock")) }
        let unreachable = Self.run(["reload"], gone)
        #expect(unreachable.code == 2 && unreachable.err == "lvsadm: cannot connect to /run/lvsd.sock\n")
        for args in [[], ["bogus"], ["status", "extra"]] {
            let r = Self.run(args, gone)
            #expect(r.code == 2 && r.err == DaemonCommand.usage, "\(args)")
        }
        #expect(gone.requests == [.reload], "usage errors ask nothing")
    }

    @Test func sysctlShowsSetsAndRefusesBadInputWithoutAsking() {
        var values = SysctlValues()
        values[.sloppyTCP] = 1
        let lvsd = ScriptedLVSD { _, _ in .success(.sysctls(values)) }
        let all = Self.run(["sysctl"], lvsd)
        #expect(all.code == 0 && all.out.split(separator: "\n").count == Sysctl.allCases.count)
        let set = Self.run(["sysctl", "sloppy_tcp=1", "drop_entry"], lvsd)
        #expect(set.code == 0 && set.out == "sloppy_tcp = 1\ndrop_entry = \(values[.dropEntry])\n")
        #expect(lvsd.requests == [.sysctl([]), .sysctl([SysctlAssignment(.sloppyTCP, 1)])])
        // Named on stderr, exit 1, and lvsd is not asked.
        let unknown = Self.run(["sysctl", "no_such_setting"], lvsd)
        #expect(unknown.code == 1 && unknown.err.contains("no_such_setting"))
        let fixed = Self.run(["sysctl", "amemthresh=20"], lvsd)
        #expect(fixed.code == 1 && fixed.err == "lvsadm: amemthresh: fixed at start (lvsd --set-sysctl or --settings)\n")
        #expect(lvsd.requests.count == 2)
    }

    @Test func announcementsListAndTheExaBGPFeedFollowsLVSD() {
        let one = "announce 10.0.0.1/32: announced\n", two = "announce 10.0.0.2/32: announced\n"
        let none = Self.run(["announcements"], ScriptedLVSD { _, _ in .success(.text("data plane: afpacket\n")) })
        #expect(none.code == 0 && none.err.contains("announces nothing"))
        let listed = Self.run(["announcements"], ScriptedLVSD { _, _ in .success(.text(one + two)) })
        #expect(listed.out == "announce 10.0.0.1/32: announced\nannounce 10.0.0.2/32: announced\n")
        #expect(Self.run(["announcements", "--interval", "0"], ScriptedLVSD { _, _ in .success(.text(one)) }).code == 2)
        #expect(Self.run(["announcements", "--bogus"], ScriptedLVSD { _, _ in .success(.text(one)) }).err == DaemonCommand.announcementsUsage)

        // The feed: one VIP, then two, then lvsd unreachable (everything withdrawn, said once),
        // then back with one, then two again: the feed's reader has left after the fifth line,
        // so the sixth is refused and the command ends.
        let lvsd = ScriptedLVSD { _, i in
            switch i {
            case 0, 4: return .success(.text(one))
            case 2, 3: return .failure(ControlTransportError(message: "cannot connect"))
            default: return .success(.text(one + two))
            }
        }
        let feed = Self.run(["announcements", "--exabgp", "--interval", "0.1"], lvsd, feedLines: 5)
        #expect(feed.code == 0)
        #expect(feed.feed == [
            "announce route 10.0.0.1/32 next-hop self",
            "announce route 10.0.0.2/32 next-hop self",
            "withdraw route 10.0.0.1/32 next-hop self",
            "withdraw route 10.0.0.2/32 next-hop self",
            "announce route 10.0.0.1/32 next-hop self",
        ])
        #expect(feed.err == "lvsadm: lvsd does not answer (cannot connect): every VIP withdrawn\nlvsadm: lvsd answers again\n")
        #expect(feed.pauses == 5 && lvsd.requests.count == 6, "one pause after each poll but the last")
    }
}
