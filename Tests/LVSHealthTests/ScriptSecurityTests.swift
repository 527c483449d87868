import Foundation
import Testing
@testable import KeepalivedConfig
@testable import LVSHealth

/// keepalived's script rules (issue 13 item 9): who runs a script, which scripts root may run,
/// and what a script inherits from lvsd (environment, descriptors).
@Suite struct ScriptSecurityTests {
    static let root = ScriptIdentity(user: "root", uid: 0, gid: 0)
    static let nobody = ScriptIdentity(user: "nobody", uid: 65534, gid: 65534)

    /// A root-owned 0700 directory under /tmp holding `name` with `mode`.
    static func script(_ name: String, mode: mode_t, body: String = "#!/bin/sh\nexit 0\n") throws -> (dir: String, path: String) {
        var template = Array("/tmp/lvs-script-XXXXXX".utf8CString)
        guard let d = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        let dir = String(cString: d)
        let path = dir + "/" + name
        try body.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, mode)
        return (dir, path)
    }

    @Test func worldWritableScriptRunByRootIsRefusedWithTheFileNamed() throws {
        let (dir, path) = try Self.script("check.sh", mode: 0o777)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (refused, _) = ScriptSecurity.check(command: "\(path) arg", runAs: Self.root, securityEnabled: true)
        #expect(refused == .refused("Unsafe permissions found for script '\(path)' - disabling."))
        // Without enable_script_security it runs, noted as insecure (keepalived's wording).
        let (allowed, notes) = ScriptSecurity.check(command: path, runAs: Self.root, securityEnabled: false)
        #expect(allowed == .allowed(insecure: true))
        #expect(notes == ["Unsafe permissions found for script '\(path)'."])
        // Run by an unprivileged user, nothing needs protecting (keepalived checks root's scripts only).
        chmod(dir, 0o755)
        #expect(ScriptSecurity.check(command: path, runAs: Self.nobody, securityEnabled: true).0 == .allowed(insecure: false))
    }

    @Test func aWritableDirectoryInThePathIsRefusedToo() throws {
        let (dir, path) = try Self.script("check.sh", mode: 0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(ScriptSecurity.check(command: path, runAs: Self.root, securityEnabled: true).0 == .allowed(insecure: false))
        chmod(dir, 0o777) // no sticky bit: anybody can replace the script
        #expect(ScriptSecurity.check(command: path, runAs: Self.root, securityEnabled: true).0
            == .refused("Unsafe permissions found for script '\(path)' - disabling."))
        chmod(dir, 0o1777) // sticky, like /tmp: fine
        #expect(ScriptSecurity.check(command: path, runAs: Self.root, securityEnabled: true).0 == .allowed(insecure: false))
    }

    @Test func missingAndNotExecutableScripts() throws {
        let (dir, path) = try Self.script("check.sh", mode: 0o644)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(ScriptSecurity.check(command: path, runAs: Self.root, securityEnabled: true).0
            == .refused("WARNING - script '\(path)' is not executable for uid:gid 0:0 - disabling."))
        #expect(ScriptSecurity.check(command: "no-such-script-xyz", runAs: Self.root, securityEnabled: false).0
            == .refused("Cannot find script no-such-script-xyz in path - disabling"))
        // A bare name is found on the scripts' PATH.
        #expect(ScriptSecurity.check(command: "true", runAs: Self.root, securityEnabled: true).0 == .allowed(insecure: false))
    }

    static func config(_ text: String) throws -> KeepalivedConfig {
        try KeepalivedLoader.parse(text: text).0
    }

    @Test func prepareResolvesScriptUserAndRemovesRefusedMiscChecks() throws {
        let (dir, path) = try Self.script("check.sh", mode: 0o777)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = """
        global_defs {
            enable_script_security
            script_user root
        }
        virtual_server 10.0.0.1 80 {
            protocol TCP
            real_server 10.0.0.2 80 {
                notify_up "\(path) up"
                MISC_CHECK { misc_path "\(path) rs" }
                TCP_CHECK { connect_timeout 1 }
            }
        }
        """
        let (prepared, log) = ScriptSecurity.prepare(try Self.config(text))
        let rs = prepared.virtualServers[0].realServers[0]
        #expect(rs.checkers.map(\.kind) == [.tcp])
        #expect(rs.notifyUp == nil)
        let messages = log.map(\.message)
        #expect(messages.contains("Unsafe permissions found for script '\(path)' - disabling."))
        #expect(messages.contains("Disabling misc script \(path) rs due to insecure"))
        #expect(prepared.globals.scriptRunAs == Self.root)

        // script_user nobody: scripts run as 65534, and the world-writable one is not root's.
        let (asNobody, _) = ScriptSecurity.prepare(try Self.config(text.replacingOccurrences(of: "script_user root", with: "script_user nobody")))
        #expect(asNobody.globals.scriptRunAs?.uid == 65534)
        #expect(asNobody.virtualServers[0].realServers[0].checkers.first?.runAs?.uid == 65534)
    }

    @Test func defaultUserIsKeepalivedScriptElseOwnUnlessSecurityIsOn() throws {
        let text = "virtual_server 10.0.0.1 80 {\nprotocol TCP\nreal_server 10.0.0.2 80 { notify_up /bin/true }\n}\n"
        let missing: (String, String?) -> Result<ScriptIdentity, ScriptSecurity.ScriptLookupError> = { user, _ in
            user == "keepalived_script" ? .failure(.noUser(user)) : ScriptSecurity.lookup(user: user, group: nil)
        }
        let (plain, plainLog) = ScriptSecurity.prepare(try Self.config(text), lookup: missing, own: Self.root)
        #expect(plain.globals.scriptRunAs == Self.root)
        #expect(plain.virtualServers[0].realServers[0].notifyUp == "/bin/true")
        #expect(plainLog.map(\.message).contains("SECURITY VIOLATION - check scripts are being executed but script_security not enabled."))
        let (secure, secureLog) = ScriptSecurity.prepare(try Self.config("global_defs { enable_script_security }\n" + text), lookup: missing, own: Self.root)
        #expect(secure.globals.scriptRunAs == nil)
        #expect(secure.virtualServers[0].realServers[0].notifyUp == nil)
        #expect(secureLog.map(\.message).contains("Unable to set default user keepalived_script for script"))
        let present: (String, String?) -> Result<ScriptIdentity, ScriptSecurity.ScriptLookupError> = { user, _ in
            .success(ScriptIdentity(user: user, uid: 999, gid: 998))
        }
        #expect(ScriptSecurity.prepare(try Self.config(text), lookup: present, own: Self.root).0.globals.scriptRunAs?.uid == 999)
    }

    /// Runs `command` through `ScriptRunner` as `identity`, waits, returns what it wrote to `out`.
    static func run(_ command: String, as identity: ScriptIdentity?, out: String) async throws -> String {
        guard case .exited = await ScriptRunner.run(command, as: identity, timeout: .seconds(30)) else { throw CocoaError(.executableLoad) }
        return (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    }

    @Test func scriptsRunAsTheirUserWithAMinimalEnvironmentAndNoInheritedDescriptors() async throws {
        guard geteuid() == 0 else { return } // changing the user needs root
        var template = Array("/tmp/lvs-script-out-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        chmod(dir, 0o777)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try await Self.run("id -u > \(dir)/uid; id -g >> \(dir)/uid; id -G >> \(dir)/uid", as: Self.nobody, out: "\(dir)/uid")
            == "65534\n65534\n65534\n")
        // Descriptors lvsd holds without close-on-exec, and a variable of its environment, stay behind.
        let leaked = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(leaked) }
        setenv("LVS_TEST_SECRET", "x", 1)
        defer { unsetenv("LVS_TEST_SECRET") }
        // `exec`: ls itself, with the shell's redirection only; its own directory handle is left out.
        let listing = try await Self.run("exec ls -l /proc/self/fd > \(dir)/fds", as: nil, out: "\(dir)/fds")
        let fds = listing.split(separator: "\n").filter { $0.contains(" -> ") && !$0.hasSuffix("/fd") }
            .compactMap { $0.split(separator: " ").dropLast(2).last.map(String.init) }
        #expect(fds.sorted() == ["0", "1", "2"], "descriptors the script had: \(listing)")
        let env = try await Self.run("env > \(dir)/env", as: Self.nobody, out: "\(dir)/env")
        #expect(env.contains("PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"))
        #expect(!env.contains("LVS_TEST_SECRET"))
        #expect(!env.contains("HOME="))
    }
}
