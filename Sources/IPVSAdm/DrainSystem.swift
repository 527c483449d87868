import Glibc
import Synchronization

/// The signal that asked a running `lvsadm drain` to stop (0: none). Written by the handler:
/// a lock-free atomic store is safe there.
private let drainStopSignal = Atomic<Int32>(0)

extension DrainEnvironment {
    /// The real clock, `nanosleep`, and SIGINT/SIGTERM caught (they end a sleep at once: the
    /// runner then says what it leaves behind instead of dying with the weight at 0 unsaid).
    public static func system() -> DrainEnvironment {
        let handler: @convention(c) (Int32) -> Void = { drainStopSignal.store($0, ordering: .relaxed) }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        return DrainEnvironment(
            now: {
                var ts = timespec()
                clock_gettime(CLOCK_MONOTONIC, &ts)
                return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
            },
            sleep: { seconds in
                guard seconds > 0 else { return }
                let whole = seconds.rounded(.down)
                var ts = timespec(tv_sec: Int(whole), tv_nsec: Int((seconds - whole) * 1e9))
                _ = nanosleep(&ts, nil) // EINTR (a signal) ends the wait early, as meant
            },
            interruption: {
                let s = drainStopSignal.load(ordering: .relaxed)
                return s == 0 ? nil : s
            },
            isTerminal: isatty(STDOUT_FILENO) == 1)
    }
}
