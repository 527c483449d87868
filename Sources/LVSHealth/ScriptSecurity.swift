import Glibc
import KeepalivedConfig

/// keepalived 2.2.7's script rules (lib/notify.c): which user runs a script, and, for a script run
/// by root, whether anybody else could change it. Messages are keepalived's.
public enum ScriptSecurity {
    /// The environment of every script: a fixed PATH and nothing of lvsd's own.
    public static let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    /// The PATH a bare script name is looked up in.
    public static let searchPath = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    /// keepalived's default script user, used when it exists and no `script_user` is given.
    public static let defaultUser = "keepalived_script"

    /// `USER [GROUP]` from the user database: the user's uid and primary gid, or GROUP's gid.
    public static func lookup(user: String, group: String?) -> Result<ScriptIdentity, ScriptLookupError> {
        guard let pw = getpwnam(user) else { return .failure(.noUser(user)) }
        var identity = ScriptIdentity(user: user, uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid)
        if let group {
            guard let gr = getgrnam(group) else { return .failure(.noGroup(group)) }
            identity.gid = gr.pointee.gr_gid
        }
        return .success(identity)
    }

    /// Why a script user cannot be used.
    public enum ScriptLookupError: Error, Equatable, CustomStringConvertible {
        case noUser(String), noGroup(String)
        public var description: String {
            switch self {
            case .noUser(let u): return "Script user '\(u)' does not exist"
            case .noGroup(let g): return "Script group '\(g)' does not exist"
            }
        }
    }

    /// What a security check found.
    public enum Verdict: Equatable, Sendable {
        /// Runnable; `insecure` when root runs it and others could change it (security off).
        case allowed(insecure: Bool)
        /// Not run (checker removed, notify dropped), with keepalived's message.
        case refused(String)
    }

    /// keepalived's check_script_secure for the command's first word (the script file).
    /// `lstat` is injected for tests; the default reads the file system.
    public static func check(command: String, runAs: ScriptIdentity, securityEnabled: Bool,
                             lstat statPath: (String) -> stat? = ScriptSecurity.lstatPath,
                             stat followPath: (String) -> stat? = ScriptSecurity.statPath,
                             realpath resolve: (String) -> String? = ScriptSecurity.realPath) -> (Verdict, [String]) {
        var log: [String] = []
        guard var script = KeepalivedLexer.shellWords(command).first, !script.isEmpty else {
            return (.refused("Unable to parse script '\(command)' - ignoring"), log)
        }
        if !script.contains("/") {
            guard let found = searchPath.map({ "\($0)/\(script)" }).first(where: { followPath($0) != nil }) else {
                return (.refused("Cannot find script \(script) in path - disabling"), log)
            }
            script = found
        }
        guard let real = resolve(script) else {
            return (.refused("Script \(script) cannot be accessed - \(String(cString: strerror(errno)))"), log)
        }
        guard let file = followPath(real) else {
            return (.refused("Unable to access script `\(script)` - disabling"), log)
        }
        guard isExecutable(file, uid: runAs.uid, gid: runAs.gid) else {
            return (.refused("WARNING - script '\(script)' is not executable for uid:gid \(runAs.uid):\(runAs.gid) - disabling."), log)
        }
        let setuidRoot = (file.st_uid == 0 && file.st_mode & S_IXUSR != 0 && file.st_mode & S_ISUID != 0)
            || (file.st_gid == 0 && file.st_mode & S_IXGRP != 0 && file.st_mode & S_ISGID != 0)
        guard runAs.uid == 0 || runAs.gid == 0 || setuidRoot else { return (.allowed(insecure: false), log) }
        var insecure = false
        // As keepalived: the resolved path (symbolic links, `..`) is the one checked and named.
        for path in [real] {
            switch pathSecurity(path, lstat: statPath) {
            case .ok: continue
            case .missing:
                return (.refused("check_script_secure could not find script '\(path)' - disabling"), log)
            case .wrongType:
                return (.refused("Wrong file type found in script path '\(path)'."), log)
            case .writableByOthers:
                insecure = true
                if securityEnabled { return (.refused("Unsafe permissions found for script '\(path)' - disabling."), log) }
                log.append("Unsafe permissions found for script '\(path)'.")
            }
        }
        return (.allowed(insecure: insecure), log)
    }

    enum PathSecurity { case ok, missing, wrongType, writableByOthers }

    /// Every prefix of `path` ("/", "/a", "/a/b", …): directories but the last, the last a
    /// file or link; none owned by a non-root user, none group-writable with a non-root group
    /// or world-writable (directories with the sticky bit, like /tmp, excepted).
    static func pathSecurity(_ path: String, lstat statPath: (String) -> stat?) -> PathSecurity {
        let parts = path.split(separator: "/").map(String.init)
        var prefixes = ["/"]
        var current = ""
        for p in parts {
            current += "/" + p
            prefixes.append(current)
        }
        if !path.hasPrefix("/") { prefixes.removeFirst() }
        for (n, p) in prefixes.enumerated() {
            guard let st = statPath(p) else { return .missing }
            let mode = st.st_mode & S_IFMT
            let last = n == prefixes.count - 1
            if !last && mode != S_IFDIR { return .wrongType }
            if last && mode != S_IFREG && mode != S_IFLNK { return .wrongType }
            let checkWrite = (mode == S_IFDIR && st.st_mode & S_ISVTX == 0) || mode == S_IFREG
            if st.st_uid != 0 || (checkWrite && ((st.st_gid != 0 && st.st_mode & S_IWGRP != 0) || st.st_mode & S_IWOTH != 0)) {
                return .writableByOthers
            }
        }
        return .ok
    }

    static func isExecutable(_ st: stat, uid: UInt32, gid: UInt32) -> Bool {
        (uid == 0 && st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH) != 0)
            || (uid == st.st_uid && st.st_mode & S_IXUSR != 0)
            || (uid != st.st_uid && ((gid == st.st_gid && st.st_mode & S_IXGRP != 0) || (gid != st.st_gid && st.st_mode & S_IXOTH != 0)))
    }

    public static func lstatPath(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    public static func statPath(_ path: String) -> stat? {
        var st = stat()
        return stat(path, &st) == 0 ? st : nil
    }

    public static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Applies keepalived's rules to a configuration before its checkers start (and at each
    /// reload): resolves who runs the scripts (`script_user`, else `keepalived_script` if it
    /// exists, else lvsd's own user), removes MISC_CHECKs and drops notify/quorum scripts that
    /// may not run, and says why in keepalived's words.
    public static func prepare(_ config: KeepalivedConfig, lookup: (String, String?) -> Result<ScriptIdentity, ScriptLookupError> = ScriptSecurity.lookup,
                               own: ScriptIdentity = ScriptIdentity(user: "root", uid: getuid(), gid: getgid()),
                               check: (String, ScriptIdentity, Bool) -> (Verdict, [String]) = { ScriptSecurity.check(command: $0, runAs: $1, securityEnabled: $2) })
        -> (KeepalivedConfig, [HealthLogRecord]) {
        var out = config
        var log: [HealthLogRecord] = []
        let security = config.globals.enableScriptSecurity
        // The default user (lib/notify.c get_default_script_user / set_default_script_user).
        var defaultIdentity: ScriptIdentity?
        if let words = config.globals.scriptUser, let user = words.first {
            switch lookup(user, words.count > 1 ? words[1] : nil) {
            case .success(let id): defaultIdentity = id
            case .failure(let e):
                log.append(.init(.error, "\(e)"))
                log.append(.init(.error, "Error setting global script uid/gid"))
            }
        } else {
            switch lookup(defaultUser, nil) {
            case .success(let id): defaultIdentity = id
            case .failure:
                if security {
                    log.append(.init(.error, "Unable to set default user \(defaultUser) for script"))
                } else {
                    defaultIdentity = own
                }
            }
        }
        out.globals.scriptRunAs = defaultIdentity
        var anyScript = false, anyInsecure = false
        /// nil: the script does not run.
        func vet(_ command: String?, runAs: ScriptIdentity?, what: String) -> String? {
            guard let command else { return nil }
            anyScript = true
            guard let runAs else {
                log.append(.init(.error, "Unable to set default user for \(what) \(command) - removing"))
                return nil
            }
            let (verdict, notes) = check(command, runAs, security)
            for n in notes { log.append(.init(.warning, n, ["script": command])) }
            switch verdict {
            case .allowed(let insecure):
                anyInsecure = anyInsecure || insecure
                return command
            case .refused(let message):
                log.append(.init(.error, message, ["script": command]))
                anyInsecure = anyInsecure || message.hasPrefix("Unsafe permissions")
                return nil
            }
        }
        for v in out.virtualServers.indices {
            out.virtualServers[v].quorumUp = vet(out.virtualServers[v].quorumUp, runAs: defaultIdentity, what: "quorum_up script")
            out.virtualServers[v].quorumDown = vet(out.virtualServers[v].quorumDown, runAs: defaultIdentity, what: "quorum_down script")
            for r in out.virtualServers[v].realServers.indices {
                var rs = out.virtualServers[v].realServers[r]
                rs.notifyUp = vet(rs.notifyUp, runAs: defaultIdentity, what: "notify_up script")
                rs.notifyDown = vet(rs.notifyDown, runAs: defaultIdentity, what: "notify_down script")
                rs.checkers = rs.checkers.compactMap { c in
                    guard c.kind == .misc, let path = c.miscPath else { return c }
                    var c = c
                    var runAs = defaultIdentity
                    if let words = c.user, let user = words.first {
                        switch lookup(user, words.count > 1 ? words[1] : nil) {
                        case .success(let id): runAs = id
                        case .failure(let e):
                            log.append(.init(.error, "\(e)"))
                            log.append(.init(.error, "Failed to set uid/gid for misc checker script \(path) - removing"))
                            return nil
                        }
                    }
                    guard vet(path, runAs: runAs, what: "misc script") != nil else {
                        log.append(.init(.error, "Disabling misc script \(path) due to insecure"))
                        return nil
                    }
                    c.runAs = runAs
                    return c
                }
                out.virtualServers[v].realServers[r] = rs
            }
        }
        if !security && anyScript {
            log.append(.init(.warning, "SECURITY VIOLATION - check scripts are being executed but script_security not enabled.\(anyInsecure ? " There are insecure scripts." : "")"))
        }
        return (out, log)
    }
}
