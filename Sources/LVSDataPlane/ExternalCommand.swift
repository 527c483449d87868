import Glibc
import LVSSystem
import Dispatch
import Subprocess
import Synchronization

/// Runs a command (PATH lookup) with swift-subprocess, synchronously, in the calling thread's
/// network namespace (`nft` acts there; a test's thread may have entered another one); feeds
/// `input` to its stdin and returns the exit status and the combined stdout+stderr.
///
/// swift-subprocess starts every process from a worker thread of its own, whose namespace is not
/// the caller's: the command is run through `nsenter --net=` the caller's namespace (util-linux).
public enum ExternalCommand {
    /// Output kept (nft's and ip's answers are a few KB; a listing of many sets fits).
    static let outputLimit = 16 << 20

    public static func run(_ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
        precondition(!arguments.isEmpty)
        // The calling thread's namespace, held open (close-on-exec) until the command has run;
        // nsenter enters it by its /proc path.
        let namespace = try DataPlaneError.context(arguments[0]) {
            try syscall("open /proc/thread-self/ns/net") { open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC) }
        }
        defer { close(namespace) }
        let name = "nsenter"
        let rest = ["--net=/proc/\(getpid())/fd/\(namespace)", "--"] + arguments
        return try CallingThreadExecutor.run {
            let result = try await Subprocess.run(.name(name), arguments: Arguments(rest), input: .string(input),
                                                  output: .string(limit: outputLimit), error: .combinedWithOutput)
            let status: Int32
            switch result.terminationStatus {
            case .exited(let code): status = code
            case .signaled(let signal): status = 128 + signal
            }
            return (status, result.standardOutput ?? "")
        }
    }

    /// Runs and throws `.commandFailed` on a non-zero exit.
    @discardableResult
    public static func check(_ arguments: [String], input: String = "") throws -> String {
        let (status, output) = try run(arguments, input: input)
        guard status == 0 else {
            throw DataPlaneError.commandFailed(command: arguments.joined(separator: " "), status: status, output: output)
        }
        return output
    }
}

/// Runs one task's jobs on the thread that waits for it. swift-subprocess starts the process from
/// the thread that runs its task: with this executor that is the caller's, so the child is in the
/// caller's network namespace (a thread of the cooperative pool would be in the process's), and
/// the wait needs no thread of the pool (a caller on that pool cannot starve it).
final class CallingThreadExecutor: TaskExecutor, @unchecked Sendable {
    // Safe: `jobs` and `finished` are only touched under `state`'s lock; `wake` is thread-safe.
    private let state = Mutex<(jobs: [UnownedJob], finished: Bool)>(([], false))
    private let wake = DispatchSemaphore(value: 0)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        state.withLock { $0.jobs.append(job) }
        wake.signal()
    }

    private func finish() {
        state.withLock { $0.finished = true }
        wake.signal()
    }

    /// Runs `body` in a task whose jobs run on this thread; returns once it is done.
    static func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let executor = CallingThreadExecutor()
        let result = Mutex<Result<T, any Error>?>(nil)
        Task(executorPreference: executor) {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            executor.finish()
        }
        // Waits only when there is nothing to run and the task has not finished (a signal left
        // over from jobs taken together costs one empty turn).
        while true {
            let (jobs, finished) = executor.state.withLock { s -> ([UnownedJob], Bool) in
                let taken = s.jobs
                s.jobs.removeAll()
                return (taken, s.finished)
            }
            if jobs.isEmpty {
                if finished { break }
                executor.wake.wait()
                continue
            }
            for job in jobs { job.runSynchronously(on: executor.asUnownedTaskExecutor()) }
        }
        return try result.withLock { $0! }.get()
    }
}
