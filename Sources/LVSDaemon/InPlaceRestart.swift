import Foundation
import Glibc
import Logging
import Synchronization

/// `lvsadm daemon restart` (docs/restart.md): lvsd answers, stops as a restart does (the state
/// file written, the nftables guard and the BPF programs left in place, whatever
/// `--restart-guard` says), then re-executes itself: the same argv, the binary as it is on disk
/// now (an upgrade installs the new file, then restarts). The process keeps its PID, so systemd's
/// main PID, the nftables table `lvsd_PID` and pid files stay valid, and no supervisor is needed.
enum InPlaceRestart {
    /// The executable's path, read at start-up (after an upgrade replaced the file,
    /// /proc/self/exe names the old, deleted one).
    nonisolated(unsafe) private static var executable: String?
    private static let requested = Atomic<Bool>(false)
    /// How long lvsd waits after answering before it stops (the answer is written first).
    static let answerDelayMilliseconds = 50

    /// Called once at start-up, before anything could replace the binary.
    static func recordExecutable() {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 { executable = String(cString: buffer) }
    }

    /// Whether a restart in place was asked for (the stop then keeps what a restart keeps).
    static var isRequested: Bool { requested.load(ordering: .acquiring) }

    /// The control request: answers at once, then stops lvsd as SIGTERM does.
    static func request() -> String {
        guard let executable else { return "lvsd: cannot restart: its executable path is unknown\n" }
        requested.store(true, ordering: .releasing)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(answerDelayMilliseconds)) {
            _ = kill(getpid(), SIGTERM)
        }
        return "lvsd: restarting in place: stopping (state saved, guard and BPF programs kept), then executing \(executable)\n"
    }

    /// After the stop: replaces the process image. Returns only on failure (the exit status).
    static func execute(logger: Logger) -> Int32 {
        guard let executable else { return 1 }
        let argv = CommandLine.arguments
        logger.notice("restarting in place", metadata: ["executable": "\(executable)", "argv": "\(argv.joined(separator: " "))"])
        // The new image inherits this thread's signal mask: lvsd's handlers must see signals.
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cargs.append(nil)
        execv(executable, cargs)
        let e = errno
        logger.critical("restart in place failed: execv \(executable): \(String(cString: strerror(e)))")
        for p in cargs { free(p) }
        return 1
    }
}
