import LVSModel

/// Offload hooks: the connections the packet path hands to a fast path outside lvsd (XDP), and
/// that fast path's traffic brought back into IPVS statistics and timers.
extension EngineShard {
    /// Connection `index` (its client's packet `f`, or for `fromReply` a reply) is offered to the
    /// fast path, or must leave it (`remove`).
    @inline(__always) func recordOffload(_ f: ParsedFrame, index: UInt32, destSlot: UInt32, remove: Bool, fromReply: Bool = false) {
        guard offloadCount < Self.offloadRingCapacity else { return }
        // NAT connections stay in lvsd unless the fast path does both directions (tc).
        guard remove || offloadsNAT || !isNATConnection(index) else { return }
        let key = fromReply
            ? ConnectionKey(proto: conns[index].proto, client: conns[index].client, clientPort: conns[index].cport,
                            virtualAddress: conns[index].virtualAddress, virtualPort: conns[index].vport)
            : ConnectionKey(proto: f.proto, client: f.source, clientPort: f.sourcePort,
                            virtualAddress: f.destination, virtualPort: f.destinationPort)
        offloadRing[offloadCount] = OffloadRecord(key: key, destSlot: destSlot, method: conns[index].method, remove: remove)
        offloadCount += 1
    }

    // MARK: Connections forwarded outside lvsd (XDP fast path)

    /// Hands the recorded offload candidates/removals to `body` and empties the ring.
    public func drainOffloads(_ body: (OffloadRecord) -> Void) {
        for i in 0..<offloadCount { body(offloadRing[i]) }
        offloadCount = 0
    }

    /// Changes whenever a destination's forwarding or weight changes (re-check offloads then).
    public var offloadGeneration: UInt64 { engine.offloadGeneration.load(0) }

    /// Where packets of destination `destSlot` go: the real server's MAC, the director's MAC and
    /// the interface; nil when the destination is unavailable, quiesced (weight 0) or unresolved.
    public func offloadTarget(destSlot: UInt32) -> (word: UInt64, destinationMAC: MACAddress, sourceMAC: MACAddress, interface: Int32)? {
        let word = forwarding.load(Int(destSlot))
        guard word & Engine.flagAvailable != 0, word & Engine.flagMACKnown != 0 else { return nil }
        guard engine.lock.withLock({ engine.dests[Int(destSlot)].weight > 0 }) else { return nil }
        let ifslot = Engine.interfaceSlot(ofForwarding: word)
        return (word, MACAddress(value: word), MACAddress(value: interfaceTable.load(InterfaceWord.index(ifslot, .mac))),
                Int32(bitPattern: UInt32(truncatingIfNeeded: interfaceTable.load(InterfaceWord.index(ifslot, .ifindex)))))
    }

    /// The key of a connection the fast path may hold (ESTABLISHED TCP or UDP, not a template).
    @inline(__always) func offloadableKey(_ index: UInt32) -> ConnectionKey? {
        let e = table[index]
        guard e.stateFlags & ConnectionEntry.flagTemplate == 0 else { return nil }
        guard e.proto == 17 || (e.proto == 6 && e.state == TCPState.established.rawValue) else { return nil }
        return ConnectionKey(proto: e.proto, client: e.client, clientPort: e.cport, virtualAddress: e.virtualAddress, virtualPort: e.vport)
    }

    /// Packets and IP bytes the fast path forwarded to destination `destSlot` (InPkts,
    /// InBytes) or, with `replies`, from it (NAT replies: OutPkts, OutBytes), added to the destination's
    /// and its service's statistics, as lvsd counts what it forwards itself.
    public func addOffloadedStatistics(destSlot: UInt32, packets: UInt64, bytes: UInt64, replies: Bool = false) {
        guard packets > 0 || bytes > 0 else { return }
        let packetsWord: StatsWord = replies ? .outPackets : .inPackets, bytesWord: StatsWord = replies ? .outBytes : .inBytes
        destCounters.bump(StatsWord.index(Int(destSlot), packetsWord), by: packets)
        destCounters.bump(StatsWord.index(Int(destSlot), bytesWord), by: bytes)
        let svc = destService.load(Int(destSlot))
        if svc != Engine.noService {
            serviceCounters.bump(StatsWord.index(Int(svc), packetsWord), by: packets)
            serviceCounters.bump(StatsWord.index(Int(svc), bytesWord), by: bytes)
        }
    }

    /// Traffic of an offloaded connection forwarded outside lvsd: `packets`/`bytes` (new since the
    /// last call) are added to the destination's and service's statistics, and the connection's
    /// idle timer restarts from `lastSeen` (CLOCK_MONOTONIC ns, 0 = none), so IPVS timeouts still
    /// rule. Returns the destination's forwarding word while the connection may stay offloaded
    /// (it exists, still goes to `destSlot`, is ESTABLISHED or UDP), else nil.
    public func offloadedTraffic(_ key: ConnectionKey, destSlot: UInt32, packets: UInt64, bytes: UInt64, lastSeen: UInt64) -> UInt64? {
        addOffloadedStatistics(destSlot: destSlot, packets: packets, bytes: bytes)
        guard let index = conns.lookup(key, template: false), conns[index].dest == destSlot, !conns[index].isDead else { return nil }
        let timeout: UInt64
        if key.proto == 6 {
            guard conns[index].state == TCPState.established.rawValue else { return nil }
            timeout = timeoutTicks.load(Int(TCPState.established.rawValue))
        } else if key.proto == 17 {
            timeout = timeoutTicks.load(Engine.udpTimeoutIndex)
        } else {
            return nil
        }
        if lastSeen != 0 {
            let expires = Engine.tick(lastSeen) &+ UInt32(truncatingIfNeeded: timeout)
            // Only later: the wheel re-slots entries whose deadline moved on lazily.
            if Int32(bitPattern: expires &- conns[index].expires) > 0 { conns[index].expires = expires }
        }
        return forwarding.load(Int(destSlot))
    }
}
