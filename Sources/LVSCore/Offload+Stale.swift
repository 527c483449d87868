/// Fast-path entries a restarted lvsd adopted but does not know (docs/restart.md, "stale
/// entries"): while some remain, a new connection (or a FIN/RST lvsd sees for an unknown
/// connection) on one of their 4-tuples asks the worker to drop the stale entry before the
/// handshake's next packet. One plain load on the new-connection path, none on existing ones.
extension EngineShard {
    /// The packet path saw a new connection, or a FIN/RST of no connection, on `key`: a removal
    /// record, which the worker's fast-path bookkeeping turns into the deletion of a stale entry
    /// of that 4-tuple (a key it does not have offloaded costs a set lookup there, nothing here).
    @inline(__always) func recordStaleCandidate(_ key: ConnectionKey) {
        guard offloadStaleKeys, offloadCount < Self.offloadRingCapacity else { return }
        offloadRing[offloadCount] = OffloadRecord(key: key, destSlot: UInt32.max, method: .directRoute, remove: true) // no connection: no method
        offloadCount += 1
    }

    /// How long an entry of protocol `proto` may sit idle in the fast path before it is stale:
    /// the TCP ESTABLISHED timeout, or the UDP timeout (`lvsadm --set`), in nanoseconds.
    public func fastPathIdleTimeout(proto: UInt8) -> UInt64 {
        let ticks = proto == 17 ? timeoutTicks.load(Engine.udpTimeoutIndex)
                                : timeoutTicks.load(Int(TCPState.established.rawValue))
        return ticks &* Engine.nanosecondsPerTick
    }
}
