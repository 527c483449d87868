import Foundation
import Testing
import KeepalivedConfig
@testable import LVSHealth

/// `ScriptRunner` (swift-subprocess) keeps what the C spawner it replaced guaranteed (issue 14):
/// each test fails if one of those behaviours goes.
@Suite(.serialized) struct ScriptRunnerTests {
    /// A fresh directory under /tmp that any user may write (scripts run as nobody write there).
    static func scratch() throws -> String {
        var template = Array("/tmp/lvs-runner-XXXXXX".utf8CString)
        guard let d = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        let dir = String(cString: d)
        chmod(dir, 0o1777)
        return dir
    }

    /// Signals 1…31 in a /proc/PID/status signal mask.
    static let standardSignals: UInt64 = (1 << 31) - 1

    static func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Waits (at most `seconds`) until `condition` holds; returns whether it did.
    static func wait(seconds: Double, until condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    /// The pid a script wrote to `path` (written to a temporary name and renamed: complete or absent).
    static func pid(in path: String, seconds: Double = 10) async -> Int32? {
        guard await wait(seconds: seconds, until: { !read(path).isEmpty }) else { return nil }
        return Int32(read(path).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Whether `pid` is a running process: present in /proc and not a zombie.
    static func running(_ pid: Int32) -> Bool {
        let stat = read("/proc/\(pid)/stat")
        // "PID (COMM) STATE …": the state is the first field after the last ')'.
        guard let close = stat.lastIndex(of: ")"),
              let state = stat[stat.index(after: close)...].split(separator: " ").first else { return false }
        return state != "Z" && state != "X"
    }

    @Test func exitStatusSignalAndArguments() async throws {
        #expect(await ScriptRunner.run("exit 0", as: nil, timeout: .seconds(30)) == .exited(0))
        #expect(await ScriptRunner.run("exit 7", as: nil, timeout: nil) == .exited(7))
        #expect(await ScriptRunner.run("kill -KILL $$", as: nil, timeout: .seconds(30)) == .signalled(SIGKILL))
        // Extra arguments (VRRP notify's) reach the command as one word each, unexpanded.
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(await ScriptRunner.run("printf '%s|' >\(dir)/args", arguments: ["a b", "$HOME", "c"], as: nil, timeout: .seconds(30)) == .exited(0))
        #expect(Self.read("\(dir)/args") == "a b|$HOME|c|")
    }

    /// A grandchild that ignores SIGTERM outlives the shell's SIGTERM; the group's SIGKILL ends it.
    @Test func aTimeoutStopsTheWholeProcessGroupGrandchildrenToo() async throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = "(trap '' TERM; exec sleep 60) & echo $! >\(dir)/g.tmp && mv \(dir)/g.tmp \(dir)/grandchild; wait"
        #expect(await ScriptRunner.run(script, as: nil, timeout: .milliseconds(500)) == .timedOut)
        let grandchild = try #require(await Self.pid(in: "\(dir)/grandchild"))
        #expect(await Self.wait(seconds: 10) { !Self.running(grandchild) }, "the grandchild \(grandchild) still runs")
        // Cancelling the caller stops a script the same way.
        let task = Task { await ScriptRunner.run("sleep 60", as: nil, timeout: nil) }
        task.cancel()
        #expect(await task.value != .exited(0))
    }

    /// The script leads its own process group, starts in /, and gets no signal disposition or
    /// mask of lvsd's (lvsd ignores SIGPIPE; the fork path blocks signals around fork).
    @Test func ownProcessGroupRootDirectoryAndDefaultSignals() async throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        // As root, run as nobody too: the fork/exec path that sets the ids.
        for identity in [nil] + (geteuid() == 0 ? [ScriptIdentity(user: "nobody", uid: 65534, gid: 65534)] : []) {
            let out = "\(dir)/\(identity?.uid ?? getuid())"
            let script = "{ echo $$; cut -d' ' -f5 /proc/$$/stat; pwd; } >\(out).group"
            #expect(await ScriptRunner.run(script, as: identity, timeout: .seconds(30)) == .exited(0))
            let lines = Self.read(out + ".group").split(separator: "\n").map(String.init)
            try #require(lines.count == 3, "\(lines)")
            #expect(lines[1] == lines[0], "process group \(lines[1]) of script \(lines[0])")
            #expect(lines[2] == "/")
            // grep exec'd in the shell's place, before the shell waited for anything (dash blocks
            // every signal around its waits), reads the mask and dispositions the shell was given.
            let signals = "exec grep -E '^Sig(Blk|Ign)' /proc/self/status >\(out).signals"
            #expect(await ScriptRunner.run(signals, as: identity, timeout: .seconds(30)) == .exited(0))
            let masks = Self.read(out + ".signals").split(separator: "\n").map(String.init)
            try #require(masks.count == 2, "\(masks)")
            #expect(masks[0] == "SigBlk:\t0000000000000000", "\(identity?.user ?? "own user")")
            // Signals 1…31 (bit n−1 for signal n) at their defaults; 32 and 33 are glibc's own
            // (sigaction refuses them, so no spawner can reset them, and glibc programs set them).
            let ignored = UInt64(masks[1].split(separator: "\t").last ?? "", radix: 16)
            #expect(ignored.map { $0 & Self.standardSignals } == 0, "\(masks[1])")
        }
    }

    /// Read from outside, in /proc/PID/fd: the script holds 0, 1 and 2, all /dev/null, although
    /// this process has a socket and a pipe open without close-on-exec.
    @Test func noDescriptorLeaksAndOutputIsDiscarded() async throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let leaked = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(leaked); close(ends[0]); close(ends[1]) }
        // The pid is written last: then the shell only loops (a builtin's redirection would show a
        // saved descriptor for a moment).
        let script = "echo noise; echo noise >&2; echo $$ >\(dir)/p.tmp && mv \(dir)/p.tmp \(dir)/pid; i=0; while [ ! -e \(dir)/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done"
        async let outcome = ScriptRunner.run(script, as: nil, timeout: .seconds(60))
        let pid = await Self.pid(in: "\(dir)/pid")
        var descriptors: [String: String] = [:]
        if let pid {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
                descriptors[name] = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(name)")
            }
        }
        _ = FileManager.default.createFile(atPath: "\(dir)/go", contents: nil)
        #expect(await outcome == .exited(0))
        #expect(pid != nil)
        #expect(descriptors == ["0": "/dev/null", "1": "/dev/null", "2": "/dev/null"])
    }

    /// PATH only (and the PWD dash sets); none of lvsd's variables.
    @Test func theEnvironmentIsMinimal() async throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        setenv("LVS_RUNNER_SECRET", "x", 1)
        defer { unsetenv("LVS_RUNNER_SECRET") }
        #expect(await ScriptRunner.run("env >\(dir)/env", as: nil, timeout: .seconds(30)) == .exited(0))
        #expect(Self.read("\(dir)/env").split(separator: "\n").sorted() == ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "PWD=/"])
    }

    /// As root: uid and gid are the identity's, and its gid is the only group, whatever groups
    /// lvsd has (this process gets a supplementary group for the test).
    @Test func theIdentitysUserAndGroupOnly() async throws {
        guard geteuid() == 0 else { return } // changing users needs root
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var saved = [gid_t](repeating: 0, count: Int(NGROUPS_MAX))
        let count = getgroups(Int32(saved.count), &saved)
        try #require(count >= 0)
        var extra: [gid_t] = [4242]
        try #require(setgroups(extra.count, &extra) == 0)
        defer { setgroups(Int(count), &saved) }
        // A gid that is not the user's primary group: the group comes from the identity.
        let identity = ScriptIdentity(user: "nobody", uid: 65534, gid: 100)
        #expect(await ScriptRunner.run("{ id -u; id -g; id -G; } >\(dir)/id", as: identity, timeout: .seconds(30)) == .exited(0))
        #expect(Self.read("\(dir)/id") == "65534\n100\n100\n")
        // lvsd's own identity (nil) keeps its groups.
        #expect(await ScriptRunner.run("id -G >\(dir)/own", as: nil, timeout: .seconds(30)) == .exited(0))
        #expect(Self.read("\(dir)/own").split(whereSeparator: \.isWhitespace).contains("4242"))
    }

    /// A notify script started and forgotten is reaped: its /proc entry goes (a zombie keeps it).
    @Test func detachedScriptsAreReaped() async throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        ScriptRunner.runDetached("echo $$ >\(dir)/p.tmp && mv \(dir)/p.tmp \(dir)/pid", as: nil)
        let pid = try #require(await Self.pid(in: "\(dir)/pid"))
        #expect(await Self.wait(seconds: 10) { access("/proc/\(pid)", F_OK) != 0 }, "script \(pid) not reaped")
    }

    /// Scripts with an identity, many at once, from a process with busy threads: each one starts.
    /// (swift-subprocess's own uid/gid options fork and call setgroups() in the child, where glibc
    /// waits for threads that only the parent has: the script never started, its spawner waited
    /// for ever. Now setpriv changes the identity after a posix_spawn.)
    @Test(.timeLimit(.minutes(1))) func scriptsWithAnIdentityStartWhileOtherThreadsRun() async {
        let me = ScriptIdentity(user: "root", uid: getuid(), gid: getgid())
        let stop = ManagedAtomicFlag()
        let busy = (0..<2).map { _ in
            // Threads come and go meanwhile: glibc's setxid waits for any thread caught being created.
            let t = Thread { while !stop.isSet { Thread { }.start(); usleep(500) } }
            t.start()
            return t
        }
        defer { stop.set(); _ = busy }
        let outcomes = await withTaskGroup(of: ScriptRunner.Outcome.self) { group -> [ScriptRunner.Outcome] in
            for n in 0..<60 {
                group.addTask { await ScriptRunner.run("exit 0", as: me, timeout: .seconds(20)) == .exited(0) ? .exited(0) : .exited(Int32(n + 1)) }
            }
            var all: [ScriptRunner.Outcome] = []
            for await o in group { all.append(o) }
            return all
        }
        #expect(outcomes.count == 60)
        #expect(outcomes.allSatisfy { $0 == .exited(0) }, "\(outcomes.filter { $0 != .exited(0) })")
    }
}

/// A flag threads poll (the test's busy threads stop on it).
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
