import Logging
import LVSHealth
import LVSVRRP
import KeepalivedConfig

/// VRRP's scripts, run as keepalived runs them: notify scripts in the background, `vrrp_script`
/// checks with their timeout (a check that does not exit 0 in time failed).
enum VRRPScripts {
    /// The command line with keepalived's arguments appended, each quoted for /bin/sh.
    static func commandLine(_ command: VRRPScriptCommand, arguments: [String]) -> String {
        ([command.command] + arguments.map(shellQuoted)).joined(separator: " ")
    }

    static func shellQuoted(_ s: String) -> String {
        var out = "'"
        for c in s { if c == "'" { out += "'\\''" } else { out.append(c) } }
        return out + "'"
    }

    static func notify(_ command: VRRPScriptCommand, arguments: [String], defaultIdentity: ScriptIdentity?, logger: Logger) {
        // MERGE: over LVSHealth's script runner (branch spawner).
        logger.info("VRRP notify: \(commandLine(command, arguments: arguments))")
    }

    static func check(_ script: VRRPScriptSettings, defaultIdentity: ScriptIdentity?) async -> Bool {
        // MERGE: over LVSHealth's script runner (branch spawner).
        true
    }
}
