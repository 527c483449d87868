import CLVSShim
import Foundation
import Glibc
import LVSSystem

extension ExternalCommand {
    /// Starts a command that outlives the call (and may outlive lvsd), from the calling thread
    /// (so in its network namespace) with posix_spawn: in a process group of its own (a
    /// terminal's Ctrl-C does not reach it), `input` as its standard input and `output` as its
    /// standard output (both closed here once it has started), standard error on /dev/null, no
    /// other descriptor. Returns at once; a thread of its own reaps it and gives `finished` its
    /// exit status (128 + signal).
    ///
    /// Not swift-subprocess, unlike `run`: a child that lives as long as lvsd, waited for through
    /// swift-subprocess's shared I/O thread, stalled other tasks' commands in the test process and
    /// once resumed a continuation on a freed executor (seen in the unit tests' full run).
    public static func spawnDetached(_ arguments: [String], input: Int32, output: Int32,
                                     finished: @escaping @Sendable (Int32) -> Void) throws {
        precondition(!arguments.isEmpty)
        var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in pointers { free(p) } }
        let pid = try DataPlaneError.context(arguments[0]) {
            try syscall("posix_spawn \(arguments[0])") { pointers.withUnsafeMutableBufferPointer { clvs_spawn_detached($0.baseAddress, input, output) } }
        }
        close(input)
        close(output)
        let reaper = Thread {
            var status: Int32 = 0
            let rc = waitpid(pid, &status, 0)
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift cannot import (macros).
            let signal = status & 0x7F
            finished(rc != pid ? -1 : signal == 0 ? (status >> 8) & 0xFF : 128 + signal)
        }
        reaper.name = "lvsd-reap-\(arguments[0])"
        reaper.start()
    }
}
