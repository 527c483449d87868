/// The guard of a dead lvsd expires by itself (lvsd --orphan-timeout): every chain starts with
/// `iifname != @alive counter accept`, and `alive` holds each interface's name with a timeout that
/// lvsd refreshes (`refreshAlive`) every timeout/4. When lvsd stops refreshing (killed, hung, or
/// stopped with --restart-guard and no next lvsd), the elements time out, the chains accept every
/// frame (counted by that rule) and the kernel, or the VRRP peer, takes the VIPs back. A timeout of
/// 0 leaves all of this out: the guard drops for as long as its table exists.
extension NFTablesGuard {
    /// The set of interfaces whose guard is alive.
    static let aliveSetName = "alive"

    /// Refreshes the `alive` elements (one `nft -f -` transaction: flush the set and add them
    /// again, so there is no moment without them). Safe to call from another thread than
    /// `update`: it reads only constants. No-op with no orphan timeout.
    public func refreshAlive() throws {
        guard orphanTimeoutMs > 0, isInstalled else { return }
        try runner(Self.aliveElements(table: table, interfaces: interfaces, orphanTimeoutMs: orphanTimeoutMs, flush: true))
    }

    /// The set's declaration inside the table block ("" without a timeout).
    static func aliveSet(orphanTimeoutMs: Int) -> String {
        guard orphanTimeoutMs > 0 else { return "" }
        return "  set \(aliveSetName) { type ifname; flags timeout; }\n"
    }

    /// `ruleset` with the alive rule first in every chain (each chain header ends its line with
    /// `policy accept;`).
    static func withAliveRules(_ ruleset: String, orphanTimeoutMs: Int) -> String {
        guard orphanTimeoutMs > 0 else { return ruleset }
        return ruleset.replacingAll("policy accept;\n", with: "policy accept;\n    iifname != @\(aliveSetName) counter accept\n")
    }

    /// The alive rule added to `chain` after it was flushed ("" without a timeout).
    static func aliveRule(table: String, chain: String, orphanTimeoutMs: Int) -> String {
        guard orphanTimeoutMs > 0 else { return "" }
        return "add rule netdev \(table) \(chain) iifname != @\(aliveSetName) counter accept\n"
    }

    /// The `alive` elements, each interface's name with the timeout ("" without a timeout).
    static func aliveElements(table: String, interfaces: [String], orphanTimeoutMs: Int, flush: Bool) -> String {
        guard orphanTimeoutMs > 0 else { return "" }
        var s = flush ? "flush set netdev \(table) \(aliveSetName)\n" : ""
        let elements = interfaces.map { "\"\($0)\" timeout \(orphanTimeoutMs)ms" }.joined(separator: ", ")
        s += "add element netdev \(table) \(aliveSetName) { \(elements) }\n"
        return s
    }
}

extension String {
    /// Every occurrence of `target` replaced (without Foundation).
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
