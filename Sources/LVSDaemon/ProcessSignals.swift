import CLVSShim
import Foundation
import LVSSystem
import Synchronization

/// lvsd's signal dispositions, all in one place and installed before anything is attached:
/// SIGHUP asks for a reload, SIGTERM and SIGINT ask lvsd to stop, SIGPIPE is ignored. The
/// handlers only record (`CLVSShim`); start-up polls `stopSignal` between its steps, and the
/// running daemon waits on `events()`.
enum ProcessSignals {
    /// Thrown by a start-up step when SIGTERM or SIGINT came during start-up.
    struct StopDuringStartup: Error, CustomStringConvertible {
        var signal: Int32
        var description: String { "\(ProcessSignals.name(signal)) during start-up" }
    }

    /// The self-pipe's read end (-1 until `install`) and the consumer of `events()`.
    private struct State {
        var readEnd: Int32 = -1
        var continuation: AsyncStream<Void>.Continuation?
    }
    private static let state = Mutex(State())

    /// Installs the dispositions (idempotent). Throws with errno's text if the kernel refuses.
    static func install() throws {
        try state.withLock { state in
            guard state.readEnd < 0 else { return }
            do {
                state.readEnd = try syscall("sigaction") { clvs_signals_install() }
            } catch {
                throw ServerError("cannot install signal handlers: \(error)")
            }
        }
    }

    /// SIGTERM or SIGINT, if one has come.
    static var stopSignal: Int32? {
        let s = clvs_signals_stop_signal()
        return s == 0 ? nil : s
    }

    /// How many SIGTERMs and SIGINTs came so far.
    static var stopCount: Int { Int(clvs_signals_stop_count()) }

    /// True (once) if SIGHUP came since the last call; several count as one reload.
    static func takeReload() -> Bool { clvs_signals_take_hup() > 0 }

    /// A start-up checkpoint: throws `StopDuringStartup` if lvsd was asked to stop.
    static func checkpoint() throws {
        if let s = stopSignal { throw StopDuringStartup(signal: s) }
    }

    /// One element per signal received (also those received before the call); one consumer.
    static func events() -> AsyncStream<Void> {
        let (stream, cont) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let (fd, first) = state.withLock { state in
            let first = state.continuation == nil
            state.continuation = cont
            return (state.readEnd, first)
        }
        guard fd >= 0, first else { return stream }
        let reader = Thread {
            var byte: UInt8 = 0
            while true {
                guard let n = try? syscall("read", { read(fd, &byte, 1) }), n > 0 else { return }
                state.withLock { $0.continuation }?.yield(())
            }
        }
        reader.name = "lvsd-signals"
        reader.start()
        return stream
    }

    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGHUP: return "SIGHUP"
        default: return "signal \(signal)"
        }
    }
}
