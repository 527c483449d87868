import Foundation
import LVSCore
import LVSModel

extension DaemonOptions {
    /// The run-time settings given at start, in the order they apply: the settings file's lines,
    /// then each `--set-sysctl` (a later value wins). An error names the file:line or the option.
    public func sysctlAssignments() throws -> [SysctlAssignment] {
        var list: [SysctlAssignment] = []
        if let path = settingsFile {
            let contents: String
            do {
                contents = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ServerError("--settings \(path): cannot read the file (\(error.localizedDescription))")
            }
            do { list += try SysctlSyntax.file(contents, path: path) } catch { throw ServerError("--settings \(error.description)") }
        }
        for text in setSysctl {
            do { list.append(try SysctlSyntax.assignment(text)) } catch {
                throw ServerError("--set-sysctl \(text): \(error.description)")
            }
        }
        return list
    }
}
