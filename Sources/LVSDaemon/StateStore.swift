import Foundation
import Glibc
import LVSCore
import LVSSystem
import Logging

/// The restart state on disk (`--state-file`, docs/restart.md): written by a stopping lvsd once
/// its data plane no longer forwards, read by the next one before its data plane forwards. The
/// format is `StateFile` (LVSCore); here only the file's I/O and the log lines.
public enum StateStore {
    /// The default path, beside the control socket.
    public static let defaultPath = "/run/lvsd/state"
    /// Where a loaded file goes (kept for a look, replaced at the next load).
    public static let loadedSuffix = ".loaded"
    /// Where a refused file goes, so that the next start does not read it again.
    public static let refusedSuffix = ".refused"

    /// Writes the engine's connections and templates to `path` (a temporary file renamed over it,
    /// so a reader never sees half a file). Returns the number of entries written.
    @discardableResult
    public static func save(_ engine: Engine, to path: String, now: UInt64, logger: Logger,
                            checkers: [CarriedCheckerState] = []) -> Int? {
        let entries = engine.exportState(now: now)
        let counters = engine.exportCounters()
        let bytes = StateFile.encode(StateFileContents(entries: entries, counters: counters, checkers: checkers))
        do {
            try replace(path, with: bytes, temporary: path + ".tmp")
        } catch {
            logger.error("restart state not saved: \(error)", metadata: ["file": "\(path)"])
            return nil
        }
        logger.notice("restart state saved", metadata: ["file": "\(path)", "entries": "\(entries.count)", "counters": "\(counters.count)",
                                                        "checkers": "\(checkers.count)", "bytes": "\(bytes.count)"])
        return entries.count
    }

    /// Writes `bytes` to `temporary` (its directory made if need be), then renames it over `path`:
    /// a reader sees the old file or the new one, never half of one. On failure the temporary
    /// file is removed and `path` is as it was.
    static func replace(_ path: String, with bytes: [UInt8], temporary: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: temporary))
            _ = try syscall("rename(\(temporary), \(path))") { rename(temporary, path) }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// What a start found at `path`.
    public enum LoadResult: Equatable, Sendable {
        /// No file: a first start, or the last stop saved nothing.
        case none
        case restored(RestoreCounters)
        /// Unreadable: lvsd starts empty; the file was renamed to `path + refusedSuffix`.
        case refused(String)
    }

    /// Reads `path` into the engine, whole or not at all, and moves the file aside (loaded or
    /// refused) so that a later start never applies it twice. Never throws: lvsd starts anyway.
    @discardableResult
    public static func load(_ engine: Engine, from path: String, now: UInt64, logger: Logger) -> LoadResult {
        guard FileManager.default.fileExists(atPath: path) else { return .none }
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            return refuse(path, "cannot read it: \(error)", logger: logger)
        }
        switch StateFile.decodeContents(bytes) {
        case .failure(let why):
            return refuse(path, why.description, logger: logger)
        case .success(let contents):
            let counts = engine.restoreState(contents.entries, now: now)
            let counters = engine.restoreCounters(contents.counters)
            rename(path, path + loadedSuffix)
            logger.notice("restart state restored", metadata: [
                "file": "\(path)", "entries": "\(counts.entries)", "connections": "\(counts.connections)",
                "templates": "\(counts.templates)", "dropped_no_service_or_server": "\(counts.dropped)", "table_full": "\(counts.tableFull)",
                "counters": "\(counters)/\(contents.counters.count)"])
            return .restored(counts)
        }
    }

    /// The health checkers' states in the file at `path` (label: up), read without applying or
    /// moving it (the health monitor starts before the connections are restored); empty when
    /// there is no file or it would be refused.
    public static func checkerStates(at path: String) -> [String: Bool] {
        guard let data = FileManager.default.contents(atPath: path),
              case .success(let contents) = StateFile.decodeContents([UInt8](data)) else { return [:] }
        var out: [String: Bool] = [:]
        for c in contents.checkers { out[c.label] = c.up }
        return out
    }

    static func refuse(_ path: String, _ why: String, logger: Logger) -> LoadResult {
        rename(path, path + refusedSuffix)
        logger.error("restart state refused, starting with an empty connection table: \(why)",
                     metadata: ["file": "\(path)", "moved_to": "\(path + refusedSuffix)"])
        return .refused(why)
    }
}
