#if canImport(Glibc)
import Glibc
#endif

/// Runs a command (PATH lookup) from the calling thread, so it inherits that thread's network
/// namespace; feeds `input` to its stdin and returns exit status and combined stdout+stderr.
enum Subprocess {
    static func run(_ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
        precondition(!arguments.isEmpty)
        var inPipe: [Int32] = [0, 0]
        var outPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0 else { throw DataPlaneError.errno("pipe", arguments[0]) }
        guard pipe(&outPipe) == 0 else {
            close(inPipe[0]); close(inPipe[1])
            throw DataPlaneError.errno("pipe", arguments[0])
        }
        for fd in inPipe + outPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 2)

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0]!, &actions, nil, argv, environ)
        close(inPipe[0])
        close(outPipe[1])
        if rc != 0 {
            close(inPipe[1]); close(outPipe[0])
            throw DataPlaneError.system(call: "posix_spawnp", errno: rc, context: arguments[0])
        }
        // Write all input, then read all output (nft and ip read their whole input first).
        let bytes = Array(input.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(inPipe[1], $0.baseAddress! + written, bytes.count - written) }
            if n < 0 { if Glibc.errno == EINTR { continue }; break }
            written += n
        }
        close(inPipe[1])
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(outPipe[0], &chunk, chunk.count)
            if n < 0 { if Glibc.errno == EINTR { continue }; break }
            if n == 0 { break }
            output.append(contentsOf: chunk[0..<n])
        }
        close(outPipe[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && Glibc.errno == EINTR {}
        let exit: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exit, String(decoding: output, as: UTF8.self))
    }

    /// Runs and throws `.commandFailed` on a non-zero exit.
    @discardableResult
    static func check(_ arguments: [String], input: String = "") throws -> String {
        let (status, output) = try run(arguments, input: input)
        guard status == 0 else {
            throw DataPlaneError.commandFailed(command: arguments.joined(separator: " "), status: status, output: output)
        }
        return output
    }
}
