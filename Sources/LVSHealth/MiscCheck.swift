import Glibc
import Dispatch

/// MISC_CHECK (keepalived check_misc.c): a script whose exit status says up, down or a weight.
extension HealthProbes {
    /// MISC_CHECK: `/bin/sh -c COMMAND` in its own process group; exit 0 is up; with
    /// misc_dynamic 2…255 is up with weight exit−2. On timeout: SIGTERM, SIGKILL 2 s later.
    static func misc(_ t: ProbeTarget) -> ProbeResult {
        guard let command = t.command else { return .failure("no misc_path") }
        guard let pid = ProcessSpawner.spawn(command, newGroup: true, as: t.runAs) else { return .failure("cannot run \(command)") }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(milliseconds(t.commandTimeout)) * 1_000_000
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { return .failure("waitpid: \(errorText(errno))") }
            if DispatchTime.now().uptimeNanoseconds >= deadline {
                kill(-pid, SIGTERM)
                var waited = 0
                while waitpid(pid, &status, WNOHANG) == 0 && waited < 200 { usleep(10_000); waited += 1 }
                if waited >= 200 { kill(-pid, SIGKILL); _ = waitpid(pid, &status, 0) }
                return .failure("timeout after \(t.commandTimeout)")
            }
            usleep(5_000)
        }
        // WIFEXITED / WEXITSTATUS
        guard status & 0x7F == 0 else { return .failure("killed by signal \(status & 0x7F)") }
        let code = (status >> 8) & 0xFF
        if code == 0 { return .success }
        if t.dynamic && code >= 2 { return .successWithWeight(Int32(code - 2)) }
        return .failure("exit status \(code)")
    }
}
