import Glibc
import KeepalivedConfig
import Subprocess
import Synchronization

/// Runs keepalived's scripts (MISC_CHECK, notify and quorum scripts; VRRP's notify and track
/// scripts) with swift-subprocess: `/bin/sh -c COMMAND` in its own process group, in `/`, as the
/// script's user and group with that group its only one, with `ScriptSecurity.environment`
/// only, stdin, stdout and stderr on /dev/null, every signal at its default and unblocked, and no
/// descriptor of lvsd's beyond 0, 1 and 2 (swift-subprocess's child set-up does the last three).
/// The library reaps every script.
public enum ScriptRunner {
    /// How a script ended.
    public enum Outcome: Sendable, Equatable {
        /// It exited with this status.
        case exited(Int32)
        /// A signal ended it (one of a timeout's is reported as `timedOut`).
        case signalled(Int32)
        /// It ran past its timeout (or its task was cancelled before then); its process group
        /// was stopped.
        case timedOut
        /// It could not be started (the reason from swift-subprocess).
        case notStarted(String)
    }

    /// After a timeout: SIGTERM to the script's process group, this long for it to end, then
    /// SIGKILL to the group (keepalived's misc checker waits the same).
    public static let terminationGrace: Duration = .seconds(2)

    /// `environment` as swift-subprocess takes it.
    static let environment: Environment = {
        var variables: [Environment.Key: String] = [:]
        for entry in ScriptSecurity.environment {
            guard let equals = entry.firstIndex(of: "="),
                  let key = Environment.Key(rawValue: String(entry[..<equals])) else { continue }
            variables[key] = String(entry[entry.index(after: equals)...])
        }
        return .custom(variables)
    }()

    /// Drops to a script's user and groups before /bin/sh starts (util-linux, on every Debian).
    static let setpriv = "/usr/bin/setpriv"

    /// The process to start: `/bin/sh -c COMMAND`, or with `arguments`, `/bin/sh -c 'COMMAND "$@"'
    /// sh ARGUMENTS…` (each argument one word, whatever it contains). As another identity, the shell
    /// is started by `setpriv --regid=GID --groups=GID --reuid=UID`, which sets the groups, the
    /// group and the user in that order (keepalived's set_privileges) and then execs it.
    ///
    /// Why not swift-subprocess's userID/groupID/supplementaryGroups: they take its fork-and-exec
    /// path, whose child calls glibc's setgroups(), and glibc then waits in __nptl_setxid for the
    /// parent's other threads, which the child does not have: the child hangs before exec (seen in
    /// lvsd: a VRRP notify script never ran, and the spawning thread waited for it). With none of
    /// them set, the library spawns with posix_spawn, and setpriv changes the identity in a
    /// single-threaded process.
    static func configuration(_ command: String, arguments: [String], as identity: ScriptIdentity?) -> Configuration {
        var options = PlatformOptions()
        // setpgid(0, 0): the script leads a group of its own, which a timeout stops whole.
        options.processGroupID = 0
        // A cancelled run (timeout, or the checker stopped): SIGTERM to the group, then, if the
        // script is still there after the grace, SIGKILL to the group.
        options.teardownSequence = [.send(signal: .terminate, toProcessGroup: true, allowedDurationToNextStep: terminationGrace)]
        let words = arguments.isEmpty ? ["-c", command] : ["-c", command + " \"$@\"", "sh"] + arguments
        guard let identity else {
            return Configuration(executable: .path("/bin/sh"), arguments: Arguments(words), environment: environment,
                                 workingDirectory: "/", platformOptions: options)
        }
        let drop = ["--regid=\(identity.gid)", "--groups=\(identity.gid)", "--reuid=\(identity.uid)", "--", "/bin/sh"]
        return Configuration(executable: .path(.init(setpriv)), arguments: Arguments(drop + words), environment: environment,
                             workingDirectory: "/", platformOptions: options)
    }

    /// Runs `command` as `identity` (nil: lvsd's own user and groups) and returns how it ended.
    /// With a `timeout`, a script still running then is stopped with its whole process group
    /// (SIGTERM, SIGKILL after `terminationGrace`). Cancelling the calling task stops it the same way.
    public static func run(_ command: String, arguments: [String] = [], as identity: ScriptIdentity?,
                           timeout: Duration?) async -> Outcome {
        let configuration = configuration(command, arguments: arguments, as: identity)
        let leader = LeaderPID()
        guard let timeout else { return await execute(configuration, leader: leader) }
        return await withTaskGroup(of: Outcome?.self) { group in
            group.addTask { await execute(configuration, leader: leader) }
            // nil: the timeout (or a cancellation) came first.
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            if let first = await group.next(), let outcome = first {
                group.cancelAll()
                return outcome
            }
            // Cancelling the run tears the script down (teardownSequence) and reaps it.
            group.cancelAll()
            while await group.next() != nil {}
            leader.killGroup()
            return .timedOut
        }
    }

    /// Starts `command` and forgets it (notify and quorum scripts): no timeout; it is reaped when
    /// it ends.
    public static func runDetached(_ command: String, arguments: [String] = [], as identity: ScriptIdentity?) {
        Task.detached { _ = await run(command, arguments: arguments, as: identity, timeout: nil) }
    }

    static func execute(_ configuration: Configuration, leader: LeaderPID) async -> Outcome {
        do {
            let result = try await Subprocess.run(configuration, input: .none, output: .discarded, error: .discarded) { execution in
                leader.record(execution.processIdentifier.value)
            }
            switch result.terminationStatus {
            case .exited(let code): return .exited(code)
            case .signaled(let signal): return .signalled(signal)
            }
        } catch {
            return .notStarted("\(error)")
        }
    }
}

/// The script's pid once started, for the last SIGKILL after a timeout.
final class LeaderPID: Sendable {
    private let pid = Atomic<Int32>(0)

    func record(_ value: Int32) { pid.store(value, ordering: .releasing) }

    /// SIGKILL to the script's process group: whatever outlived its leader (a child that ignored
    /// SIGTERM, say). Sent after the leader was reaped: while any member lives, the kernel does not
    /// hand the group's id to a new process, and with none left the kill finds nothing (ESRCH).
    func killGroup() {
        let leader = pid.load(ordering: .acquiring)
        if leader > 0 { kill(-leader, SIGKILL) }
    }
}
