import Glibc
import Dispatch
// FoundationEssentials, not Foundation: file access without ICU in lvsadm.
import FoundationEssentials
import Synchronization
import LVSModel
import Subprocess
import SystemPackage

/// `lvsadm realserver up|down|status --vip ADDR [--dev IFACE]`: prepares a Direct-Routing real server
/// (VIP on `lo`, arp_ignore=1 / arp_announce=2 on all, lo and the outgoing interface).
public struct RealServerSetup {
    public enum Action: String, Sendable { case up, down, status }

    public struct Arguments: Equatable, Sendable {
        public var action: Action
        public var vip: IPAddress
        public var device: String?
    }

    /// A failure with its message (without program prefix) and exit code.
    public struct Failure: Error, Equatable {
        public var message: String
        public var exitCode: Int32
    }

    /// Root of the per-interface IPv4 sysctls (`/proc/sys/net/ipv4/conf`).
    public var sysctlRoot: String
    /// Where the saved previous values live.
    public var stateDirectory: String
    /// The kernel routing table text (`/proc/net/route`) used to find the default-route interface.
    public var routeTablePath: String
    /// Runs `ip` with the given arguments: exit status and combined output.
    public var runIP: ([String]) -> (status: Int32, output: String)

    /// `/run/lvsd/realserver/<network namespace>`: the saved values belong to one network
    /// namespace (its sysctls and `lo`), while `/run` is shared by all namespaces of the host.
    public static func defaultStateDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        let n = readlink("/proc/self/ns/net", &buffer, buffer.count - 1)
        let id = n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "net-unknown"
        let safe = id.map { $0.isLetter || $0.isNumber ? $0 : "-" }
        return "/run/lvsd/realserver/" + String(safe)
    }

    public init(sysctlRoot: String = "/proc/sys/net/ipv4/conf", stateDirectory: String = RealServerSetup.defaultStateDirectory(),
                routeTablePath: String = "/proc/net/route",
                runIP: @escaping ([String]) -> (status: Int32, output: String) = RealServerSetup.systemIP) {
        self.sysctlRoot = sysctlRoot
        self.stateDirectory = stateDirectory
        self.routeTablePath = routeTablePath
        self.runIP = runIP
    }

    static let wanted: [(key: String, value: String)] = [("arp_ignore", "1"), ("arp_announce", "2")]

    // MARK: Arguments

    static let usage = "usage: lvsadm realserver up|down|status --vip ADDR [--dev IFACE]"

    /// Parses the words after `realserver`.
    public static func parseArguments(_ words: [String]) throws(Failure) -> Arguments {
        guard let first = words.first else { throw Failure(message: "missing action\n\(usage)", exitCode: 2) }
        guard let action = Action(rawValue: first) else {
            throw Failure(message: "unknown action '\(first)' (expected up, down or status)\n\(usage)", exitCode: 2)
        }
        var vipText: String?
        var device: String?
        var i = 1
        while i < words.count {
            let w = words[i]
            var name = w
            var value: String?
            if let eq = w.firstIndex(of: "="), w.hasPrefix("--") {
                name = String(w[..<eq])
                value = String(w[w.index(after: eq)...])
            }
            guard name == "--vip" || name == "--dev" else {
                throw Failure(message: "unknown argument '\(w)'\n\(usage)", exitCode: 2)
            }
            if value == nil {
                i += 1
                guard i < words.count else { throw Failure(message: "option '\(name)' needs a value", exitCode: 2) }
                value = words[i]
            }
            if name == "--vip" { vipText = value } else { device = value }
            i += 1
        }
        guard let vipText else { throw Failure(message: "missing --vip ADDR\n\(usage)", exitCode: 2) }
        guard let vip = IPAddress(vipText) else {
            throw Failure(message: "invalid --vip address '\(vipText)' (expected a numeric IPv4 or IPv6 address)", exitCode: 2)
        }
        if let d = device {
            let valid = !d.isEmpty && d.utf8.count <= 15 && !d.contains("/") && d != "." && d != ".."
                && !d.contains(where: { $0 == " " || $0 == "\t" })
            guard valid else { throw Failure(message: "invalid --dev interface name '\(d)'", exitCode: 2) }
        }
        return Arguments(action: action, vip: vip, device: device)
    }

    // MARK: Helpers

    static func readFile(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func writeFile(_ path: String, _ text: String) throws(Failure) {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(message: "cannot write \(path): \(String(cString: strerror(errno)))", exitCode: 1) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else {
            throw Failure(message: "cannot write \(path): \(String(cString: strerror(errno)))", exitCode: 1)
        }
    }

    func sysctlPath(_ conf: String, _ key: String) -> String { "\(sysctlRoot)/\(conf)/\(key)" }

    func readSysctl(_ conf: String, _ key: String) -> String? {
        Self.readFile(sysctlPath(conf, key))?.trimmedWhitespace
    }

    /// The interface of the default route, else the only interface other than lo.
    func defaultInterface() -> String? {
        if let table = Self.readFile(routeTablePath) {
            for line in table.split(separator: "\n").dropFirst() {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if f.count >= 8 && f[1] == "00000000" && f[7] == "00000000" { return String(f[0]) }
            }
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: sysctlRoot)) ?? []
        let candidates = entries.filter { $0 != "all" && $0 != "default" && $0 != "lo" }
        return candidates.count == 1 ? candidates[0] : nil
    }

    func resolveDevice(_ args: Arguments) throws(Failure) -> String {
        let dev: String
        if let d = args.device {
            dev = d
        } else if let d = defaultInterface() {
            dev = d
        } else {
            throw Failure(message: "cannot determine the outgoing interface (no default route and not exactly one non-lo interface); use --dev IFACE", exitCode: 2)
        }
        guard Self.isDirectory("\(sysctlRoot)/\(dev)") else {
            throw Failure(message: "interface '\(dev)' not found (no \(sysctlRoot)/\(dev))", exitCode: 2)
        }
        return dev
    }

    func confs(_ dev: String) -> [String] {
        var list = ["all", "lo"]
        if !list.contains(dev) { list.append(dev) }
        return list
    }

    static func prefixLength(_ vip: IPAddress) -> Int { vip.isIPv4 ? 32 : 128 }

    /// Whether `vip` is configured on lo (from `ip -o addr show dev lo`).
    func addressPresent(_ vip: IPAddress) throws(Failure) -> Bool {
        let r = runIP(["-o", "addr", "show", "dev", "lo"])
        guard r.status == 0 else {
            throw Failure(message: "ip -o addr show dev lo failed: \(r.output.trimmedWhitespace)", exitCode: 1)
        }
        for line in r.output.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            for (i, w) in words.enumerated() where (w == "inet" || w == "inet6") && i + 1 < words.count {
                let addr = words[i + 1].split(separator: "/").first.map(String.init) ?? ""
                if IPAddress(addr) == vip { return true }
            }
        }
        return false
    }

    func statePath(_ vip: IPAddress) -> String { "\(stateDirectory)/realserver-\(vip.description).state" }

    /// The other live state files of this network namespace: those whose VIP is still on lo.
    /// (A namespace id can be reused after a namespace is deleted; files of VIPs that are not
    /// here are left-overs of another namespace and are ignored.)
    func otherStateFiles(excluding state: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? []).filter { name in
            guard name.hasPrefix("realserver-"), name.hasSuffix(".state"), "\(stateDirectory)/\(name)" != state,
                  let vip = IPAddress(String(name.dropFirst("realserver-".count).dropLast(".state".count))) else { return false }
            return (try? addressPresent(vip)) == true
        }.sorted()
    }

    /// A saved state that belongs to no set-up of this namespace: its VIP is not on lo and the
    /// ARP settings are not ours (a deleted namespace whose id was reused, or a manual undo).
    func isStale(_ state: String, vip: IPAddress, dev: String, present: Bool) -> Bool {
        guard FileManager.default.fileExists(atPath: state), !present else { return false }
        return confs(dev).contains { conf in Self.wanted.contains { readSysctl(conf, $0.key) != $0.value } }
    }

    /// Saved `conf.key=value` originals from the other state files.
    func originalValues(excluding state: String) -> [String: String] {
        var values: [String: String] = [:]
        for name in otherStateFiles(excluding: state) {
            guard let text = Self.readFile("\(stateDirectory)/\(name)") else { continue }
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "="), line[..<eq].contains(".") else { continue }
                let k = String(line[..<eq])
                if values[k] == nil { values[k] = String(line[line.index(after: eq)...]) }
            }
        }
        return values
    }

    // MARK: Actions

    /// Runs an action; returns the exit code, writing progress to `out` and errors to `err`.
    public func run(_ words: [String], out: (String) -> Void, err: (String) -> Void) -> Int32 {
        do {
            let args = try Self.parseArguments(words)
            switch args.action {
            case .up: try up(args, out: out)
            case .down: try down(args, out: out)
            case .status: return try status(args, out: out)
            }
            return 0
        } catch {
            err("lvsadm realserver: \(error.message)\n")
            return error.exitCode
        }
    }

    func up(_ args: Arguments, out: (String) -> Void) throws(Failure) {
        let dev = try resolveDevice(args)
        let vip = args.vip
        let present = try addressPresent(vip)
        let state = statePath(vip)
        if isStale(state, vip: vip, dev: dev, present: present) { try? FileManager.default.removeItem(atPath: state) }
        if !FileManager.default.fileExists(atPath: state) {
            // With other VIPs already set up, the current values are ours: keep their saved originals.
            let original = originalValues(excluding: state)
            var text = "device=\(dev)\naddress_present=\(present ? 1 : 0)\n"
            for conf in confs(dev) {
                for (key, _) in Self.wanted {
                    guard let v = readSysctl(conf, key) else {
                        throw Failure(message: "cannot read \(sysctlPath(conf, key))", exitCode: 1)
                    }
                    text += "\(conf).\(key)=\(original["\(conf).\(key)"] ?? v)\n"
                }
            }
            do {
                try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
                try text.write(toFile: state, atomically: true, encoding: .utf8)
            } catch {
                throw Failure(message: "cannot save state to \(state): \(error)", exitCode: 1)
            }
        }
        for conf in confs(dev) {
            for (key, value) in Self.wanted where readSysctl(conf, key) != value {
                try Self.writeFile(sysctlPath(conf, key), value + "\n")
            }
        }
        let cidr = "\(vip.description)/\(Self.prefixLength(vip))"
        if !present {
            let r = runIP(["addr", "add", cidr, "dev", "lo"])
            guard r.status == 0 else {
                throw Failure(message: "ip addr add \(cidr) dev lo failed: \(r.output.trimmedWhitespace)", exitCode: 1)
            }
        }
        out("realserver up: \(cidr) on lo; arp_ignore=1 arp_announce=2 on \(confs(dev).joined(separator: ", "))\n")
    }

    func down(_ args: Arguments, out: (String) -> Void) throws(Failure) {
        let vip = args.vip
        let cidr = "\(vip.description)/\(Self.prefixLength(vip))"
        if try addressPresent(vip) {
            let r = runIP(["addr", "del", cidr, "dev", "lo"])
            guard r.status == 0 else {
                throw Failure(message: "ip addr del \(cidr) dev lo failed: \(r.output.trimmedWhitespace)", exitCode: 1)
            }
        }
        let state = statePath(vip)
        guard let text = Self.readFile(state) else {
            out("realserver down: \(cidr) removed from lo; no saved state in \(state), sysctls left unchanged\n")
            return
        }
        // Other VIPs still set up on this host need the ARP settings: restore only for the last one.
        let others = otherStateFiles(excluding: state)
        if others.isEmpty {
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                let name = line[..<eq], value = line[line.index(after: eq)...]
                guard let dot = name.firstIndex(of: "."), name != "address_present" else { continue }
                let conf = String(name[..<dot]), key = String(name[name.index(after: dot)...])
                guard Self.wanted.contains(where: { $0.key == key }) else { continue }
                if readSysctl(conf, key) != nil && readSysctl(conf, key) != String(value) {
                    try Self.writeFile(sysctlPath(conf, key), value + "\n")
                }
            }
        }
        do {
            try FileManager.default.removeItem(atPath: state)
        } catch {
            throw Failure(message: "cannot remove \(state): \(error)", exitCode: 1)
        }
        if others.isEmpty, let left = try? FileManager.default.contentsOfDirectory(atPath: stateDirectory),
           !left.contains(where: { $0.hasSuffix(".state") }) {
            try? FileManager.default.removeItem(atPath: stateDirectory)
        }
        out(others.isEmpty ? "realserver down: \(cidr) removed from lo; ARP sysctls restored\n"
            : "realserver down: \(cidr) removed from lo; ARP sysctls kept (other VIPs still set up)\n")
    }

    func status(_ args: Arguments, out: (String) -> Void) throws(Failure) -> Int32 {
        let dev = try resolveDevice(args)
        let vip = args.vip
        var allOK = true
        let present = try addressPresent(vip)
        allOK = allOK && present
        out("address \(vip.description)/\(Self.prefixLength(vip)) on lo: \(present ? "ok" : "missing")\n")
        for conf in confs(dev) {
            for (key, value) in Self.wanted {
                let current = readSysctl(conf, key)
                let ok = current == value
                allOK = allOK && ok
                out("\(conf).\(key)=\(value): \(ok ? "ok" : "missing (is \(current ?? "unreadable"))")\n")
            }
        }
        return allOK ? 0 : 1
    }

    // MARK: System `ip`

    /// Whether `path` is a directory (a network interface's sysctl directory).
    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Bytes of `ip` output kept (its listings of lo are a few lines).
    static let ipOutputLimit = 1 << 20

    /// Runs the system `ip` binary (its output and errors together), with swift-subprocess.
    /// lvsadm is a command-line tool: the calling thread waits for `ip` to end.
    public static func systemIP(_ arguments: [String]) -> (status: Int32, output: String) {
        let candidates = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        guard let exe = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return (127, "ip command not found (install iproute2)")
        }
        let outcome = WaitBox()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                let result = try await Subprocess.run(.path(FilePath(exe)), arguments: Subprocess.Arguments(arguments),
                                           output: .string(limit: ipOutputLimit), error: .combinedWithOutput)
                let status: Int32
                switch result.terminationStatus {
                case .exited(let code): status = code
                case .signaled(let signal): status = 128 + signal
                }
                outcome.value = (status, result.standardOutput ?? "")
            } catch {
                outcome.value = (127, "cannot run \(exe): \(error)")
            }
            done.signal()
        }
        done.wait()
        return outcome.value
    }
}

/// The result of `ip`, handed from the task that ran it to the waiting thread (written before the
/// semaphore's signal, read after its wait; the mutex makes that hand-over visible to the checker).
private final class WaitBox: Sendable {
    private let state = Mutex<(status: Int32, output: String)>((127, ""))
    var value: (status: Int32, output: String) {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

extension String {
    /// Without leading and trailing white space and newlines (sysctl values and `ip` output).
    var trimmedWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0.isNewline }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
