/// MISC_CHECK (keepalived check_misc.c): a script whose exit status says up, down or a weight.
extension HealthProbes {
    /// MISC_CHECK: `/bin/sh -c COMMAND` through `ScriptRunner` (its own process group, the
    /// checker's user); exit 0 is up; with misc_dynamic 2…255 is up with weight exit−2. On
    /// timeout: SIGTERM to the group, SIGKILL 2 s later.
    static func misc(_ t: ProbeTarget) async -> ProbeResult {
        guard let command = t.command else { return .failure("no misc_path") }
        switch await ScriptRunner.run(command, as: t.runAs, timeout: t.commandTimeout) {
        case .notStarted: return .failure("cannot run \(command)")
        case .timedOut: return .failure("timeout after \(t.commandTimeout)")
        case .signalled(let signal): return .failure("killed by signal \(signal)")
        case .exited(let code):
            if code == 0 { return .success }
            if t.dynamic && code >= 2 { return .successWithWeight(code - 2) }
            return .failure("exit status \(code)")
        }
    }
}
