import Glibc
import LVSSystem
import Subprocess
import SystemPackage

extension ExternalCommand {
    /// Starts a command that outlives the call (and may outlive lvsd): in the calling thread's
    /// network namespace (through `nsenter`, as `run`), in a session of its own (a terminal's
    /// Ctrl-C does not reach it), with `input` as its standard input and `output` as its
    /// standard output, both closed here once it has started; standard error on /dev/null.
    /// Returns at once; `finished` gets its exit status (128 + signal) when it ends.
    public static func spawnDetached(_ arguments: [String], input: Int32, output: Int32,
                                     finished: @escaping @Sendable (Int32) -> Void) throws {
        precondition(!arguments.isEmpty)
        // Held open (close-on-exec) until the command ends: nsenter opens it by its /proc path.
        let namespace = try DataPlaneError.context(arguments[0]) {
            try syscall("open /proc/thread-self/ns/net") { open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC) }
        }
        let rest = ["--net=/proc/\(getpid())/fd/\(namespace)", "--"] + arguments
        var options = PlatformOptions()
        options.createSession = true
        Task.detached {
            defer { close(namespace) }
            do {
                let result = try await Subprocess.run(.name("nsenter"), arguments: Arguments(rest), platformOptions: options,
                                                      input: .fileDescriptor(FileDescriptor(rawValue: input), closeAfterSpawningProcess: true),
                                                      output: .fileDescriptor(FileDescriptor(rawValue: output), closeAfterSpawningProcess: true),
                                                      error: .discarded)
                switch result.terminationStatus {
                case .exited(let code): finished(code)
                case .signaled(let signal): finished(128 + signal)
                }
            } catch {
                finished(-1)
            }
        }
    }
}
