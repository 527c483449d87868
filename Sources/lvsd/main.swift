import ArgumentParser
import LVSDaemon

// Top-level code: parse, then the command's asynchronous `run()` (a `let`, so that the
// synchronous, mutating `run()` of ParsableCommand, which prints the help, is not the one picked).
do {
    let command = try LVSD.parse()
    try await command.run()
} catch {
    LVSD.exit(withError: error)
}
