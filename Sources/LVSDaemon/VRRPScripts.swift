import KeepalivedConfig
import Logging
import LVSHealth
import LVSVRRP

/// VRRP's scripts, run as keepalived runs them (through LVSHealth's `ScriptRunner`): notify
/// scripts in the background with keepalived's arguments, `vrrp_script` checks with their timeout
/// (a check that does not exit 0 in time failed). Each runs as its own `user [group]`, else as
/// keepalived.conf's script user.
enum VRRPScripts {
    /// The identity a script runs as: its own user/group, else `defaultIdentity` (nil: lvsd's own).
    static func identity(_ command: VRRPScriptCommand, defaultIdentity: ScriptIdentity?) -> ScriptIdentity? {
        guard let user = command.user else { return defaultIdentity }
        if case let .success(id) = ScriptSecurity.lookup(user: user, group: command.group) { return id }
        return nil
    }

    /// Applies keepalived's script rules at start: a notify script that may not run is dropped, a
    /// `vrrp_script` that may not run is no longer tracked; each with keepalived's message.
    static func prepare(_ vrrp: VRRPConfiguration, defaultIdentity: ScriptIdentity?, securityEnabled: Bool,
                        check: (String, ScriptIdentity, Bool) -> (ScriptSecurity.Verdict, [String]) = {
                            ScriptSecurity.check(command: $0, runAs: $1, securityEnabled: $2)
                        }) -> (VRRPConfiguration, [String]) {
        var out = vrrp
        var log: [String] = []
        func allowed(_ c: VRRPScriptCommand?, what: String) -> VRRPScriptCommand? {
            guard let c else { return nil }
            guard let runAs = identity(c, defaultIdentity: defaultIdentity) else {
                log.append("Unable to set uid/gid for \(what) \(c.command) - removing")
                return nil
            }
            let (verdict, notes) = check(c.command, runAs, securityEnabled)
            log += notes
            if case let .refused(message) = verdict {
                log.append(message)
                return nil
            }
            return c
        }
        func vet(_ n: VRRPNotify) -> VRRPNotify {
            var n = n
            n.master = allowed(n.master, what: "notify_master script")
            n.backup = allowed(n.backup, what: "notify_backup script")
            n.fault = allowed(n.fault, what: "notify_fault script")
            n.stop = allowed(n.stop, what: "notify_stop script")
            n.deleted = allowed(n.deleted, what: "notify_deleted script")
            n.any = allowed(n.any, what: "notify script")
            return n
        }
        for i in out.instances.indices { out.instances[i].notify = vet(out.instances[i].notify) }
        for g in out.syncGroups.indices { out.syncGroups[g].notify = vet(out.syncGroups[g].notify) }
        var refused: Set<String> = []
        out.scripts = out.scripts.filter { s in
            guard allowed(s.script, what: "track script") != nil else {
                log.append("Disabling track script \(s.name) due to insecure")
                refused.insert(s.name)
                return false
            }
            return true
        }
        for i in out.instances.indices { out.instances[i].trackScripts.removeAll { refused.contains($0.name) } }
        for g in out.syncGroups.indices { out.syncGroups[g].trackScripts.removeAll { refused.contains($0.name) } }
        return (out, log)
    }

    static func notify(_ command: VRRPScriptCommand, arguments: [String], defaultIdentity: ScriptIdentity?, logger: Logger) {
        logger.debug("VRRP notify", metadata: ["script": "\(command.command)", "arguments": "\(arguments.joined(separator: " "))"])
        ScriptRunner.runDetached(command.command, arguments: arguments, as: identity(command, defaultIdentity: defaultIdentity))
    }

    static func check(_ script: VRRPScriptSettings, defaultIdentity: ScriptIdentity?) async -> Bool {
        let timeout = script.timeout ?? script.interval
        let outcome = await ScriptRunner.run(script.script.command, as: identity(script.script, defaultIdentity: defaultIdentity),
                                             timeout: .nanoseconds(Int64(clamping: timeout)))
        return outcome == .exited(0)
    }
}
