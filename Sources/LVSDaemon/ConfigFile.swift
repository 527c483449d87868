import Foundation
import LVSControl
import LVSCore
import Logging
import LVSModel
import KeepalivedConfig
import LVSHealth

/// The two file formats `--config` accepts.
public enum ConfigFormat {
    /// keepalived.conf (virtual_server blocks, health checks).
    case keepalived
    /// ipvsadm-save / ipvsadm-restore rules, one ipvsadm command per line.
    case ipvsadmRules

    static let keepalivedKeywords: Set<String> = [
        "global_defs", "virtual_server", "virtual_server_group", "vrrp_instance", "vrrp_sync_group",
        "vrrp_script", "include", "static_ipaddress", "static_routes", "static_rules", "net_namespace",
    ]

    /// Decided by the first word of the first line that is not a comment.
    static func detect(path: String) throws -> ConfigFormat {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ServerError("cannot read config file \(path)")
        }
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "{" })
            // keepalived's conditional lines: `@ID keyword …`, `@^ID keyword …`.
            if words.first?.hasPrefix("@") == true { words.removeFirst() }
            let word = String(words.first ?? "")
            if word.hasPrefix("-") || word == "ipvsadm" { return .ipvsadmRules }
            if keepalivedKeywords.contains(word) { return .keepalived }
            throw ServerError("\(path): cannot tell the format: expected keepalived.conf blocks or ipvsadm-save lines, found `\(word)'")
        }
        return .ipvsadmRules
    }

    /// `lvsd --check-config FILE`: keepalived's config-test exit codes (0 valid, 5 errors, 2 fatal).
    public static func check(path: String) -> Int32 {
        do {
            switch try detect(path: path) {
            case .ipvsadmRules:
                let engine = Engine(configuration: { var c = EngineConfiguration(); c.connectionCapacity = 1024; return c }())
                try LVSD.load(rulesFile: path, into: engine, now: 0)
                print("\(path): ipvsadm rules, \(engine.snapshot().services.count) services: configuration is valid")
                return 0
            case .keepalived:
                let (config, diagnostics) = try KeepalivedLoader.load(path: path)
                for d in diagnostics { FileHandle.standardError.write(Data("\(d)\n".utf8)) }
                if diagnostics.contains(where: { $0.severity == .error }) { return 5 }
                let vrrp = config.vrrp.instances.isEmpty ? "" : ", \(config.vrrp.instances.count) VRRP instances"
                print("\(path): keepalived.conf, \(config.virtualServers.count) virtual servers\(vrrp): configuration is valid")
                return 0
            }
        } catch let e as KeepalivedLoadError {
            for d in e.diagnostics { FileHandle.standardError.write(Data("\(d)\n".utf8)) }
            FileHandle.standardError.write(Data("\(e.message)\n".utf8))
            return 2
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            return 2
        }
    }
}

extension Logger {
    /// Logs a health-check record with its metadata.
    func log(_ record: HealthLogRecord) {
        let level: Logger.Level = record.level == .error ? .error : (record.level == .warning ? .warning : .info)
        var meta: Logger.Metadata = [:]
        for (k, v) in record.metadata { meta[k] = "\(v)" }
        log(level: level, "\(record.message)", metadata: meta)
    }
}
