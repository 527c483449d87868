import CLVSShim
import Glibc
import LVSModel

/// The real server → client direction of masquerading (the kernel's `ip_vs_out_hook`,
/// `handle_response`, `ip_vs_out_icmp`): replies of NAT connections found by the reply index,
/// their source rewritten back to VIP:vport, counted as OutPkts/OutBytes and sent to the client's
/// next hop. A reply that matches no connection is not touched (the kernel gets it).
extension EngineShard {
    /// The NAT connection whose replies carry this tuple, or nil. `bucket`: the tuple's bucket
    /// when known (a reply's is its frame's connection-table bucket number).
    @inline(__always) func replyLookup(proto: UInt8, server: IPAddress, serverPort: UInt16,
                                       client: IPAddress, clientPort: UInt16, bucket: UInt32? = nil) -> UInt32? {
        let replies = conns.replies
        let c = client.words
        var i = replies.head(bucket ?? conns.bucket(proto: proto, client: server, cport: serverPort, vlow: c.3, vport: clientPort))
        while i != 0 {
            let e = conns.entries + Int(i - 1)
            if e.pointee.cport == clientPort && e.pointee.proto == proto && e.pointee.c3 == c.3 && e.pointee.c2 == c.2
                && e.pointee.c1 == c.1 && e.pointee.c0 == c.0 && !e.pointee.isDead {
                let t = natTarget(e.pointee.dest)
                let port = t.port != 0 ? t.port : e.pointee.vport
                if port == serverPort && t.address == server { return i - 1 }
            }
            i = replies.links[Int(i - 1)].next
        }
        return nil
    }

    /// The NAT connection a reply (or an ICMP error from the servers' side, by its quote) belongs to in this shard.
    @inline(__always) func replyLookup(_ f: ParsedFrame, bucket: UInt32? = nil) -> UInt32? {
        guard conns.replies.count != 0 else { return nil }
        return f.isICMPError
            ? replyLookup(proto: f.innerProto, server: f.innerDestination, serverPort: f.innerDestinationPort,
                          client: f.innerSource, clientPort: f.innerSourcePort)
            : replyLookup(proto: f.proto, server: f.source, serverPort: f.sourcePort,
                          client: f.destination, clientPort: f.destinationPort, bucket: bucket)
    }

    /// Batch prefetch for replies (`prefetchEntries`): the announced frames' buckets in the
    /// reply index, then their first entries and links.
    @usableFromInline func prefetchReplyBuckets() {
        for k in 0..<prefetchCount { clvs_prefetch_write(conns.replies.buckets + Int(prefetchBuckets[k] & conns.replies.bucketMask)) }
    }

    @usableFromInline func prefetchReplyEntries() {
        for k in 0..<prefetchCount {
            let i = conns.replies.head(prefetchBuckets[k])
            guard i != 0 else { continue }
            clvs_prefetch_write(conns.entries + Int(i - 1))
            clvs_prefetch_write(conns.replies.links + Int(i - 1))
        }
    }

    /// A frame that matched no connection as a client's: the reply of a NAT connection is
    /// rewritten and forwarded; nil when it is none.
    @inline(never)
    func natReply(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, tick: UInt32, bucket: UInt32) -> Verdict? {
        guard let index = replyLookup(f, bucket: bucket) else { return natReplyElsewhere(frame, f) }
        let vip = conns[index].virtualAddress
        if notOwned(vip) { return dropNotOwned() }
        if f.proto == 6 {
            let state = conns[index].state
            let next: UInt8
            if let event = TCPStateTable.event(flags: f.tcpFlags) {
                next = transitions[TCPStateTable.natOutputBlock &+ TCPStateTable.index(event: event, state: state)]
            } else {
                next = TCPState.close.rawValue
            }
            if next != state { setState(index, TCPState(rawValue: next)!) }
            // The real server's FIN/RST (the fast path never forwards them): the fast path lets go.
            if offloadEnabled && state == TCPState.established.rawValue && f.tcpFlags & (TCPFlag.fin | TCPFlag.rst) != 0 {
                recordOffload(f, index: index, destSlot: conns[index].dest, remove: true, fromReply: true)
            }
            refreshTimer(index, timeoutIndex: Int(next), tick: tick)
        } else {
            refreshTimer(index, timeoutIndex: f.proto == 17 ? Engine.udpTimeoutIndex : Engine.sctpTimeoutIndex, tick: tick)
        }
        translateReply(frame, f, vip: vip, vport: conns[index].vport)
        return sendReply(frame, f, hop: conns.replies.links[Int(index)].hop, destSlot: conns[index].dest)
    }

    /// A reply (or an ICMP error from the servers' side) whose connection is in another
    /// worker's shard: the data plane spreads frames by a hash of their addresses and ports,
    /// which NAT changes, so a reply may reach another worker than its client's packets. Found
    /// under the engine lock (reply indexes change only under it), rewritten from the entry's
    /// key and next hop (which never change while it is hashed) and counted here; its TCP state
    /// and timer stay with the worker that owns the entry (they follow the client's packets).
    @inline(never)
    func natReplyElsewhere(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame) -> Verdict? {
        // Only when another shard holds NAT connections (never with one worker).
        guard engine.natConnections > UInt64(conns.replies.count) else { return nil }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        for shard in engine.shards where shard !== self {
            guard let index = shard.replyLookup(f) else { continue }
            let e = shard.conns[index]
            if engine.notOwnedAddresses.contains(e.virtualAddress) { return dropNotOwned() }
            translateReply(frame, f, vip: e.virtualAddress, vport: e.vport)
            return sendReply(frame, f, hop: shard.conns.replies.links[Int(index)].hop, destSlot: e.dest)
        }
        return nil
    }

    /// The source of a reply, or the quoted destination of an ICMP error from the servers'
    /// side, back to VIP:vport.
    @inline(__always) func translateReply(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, vip: IPAddress, vport: UInt16) {
        let ipv6 = f.kind == .ipv6
        if f.isICMPError {
            NATRewriter.translateICMP(frame, f, outerField: ipv6 ? NATLayout.ipv6Source : NATLayout.ipv4Source,
                                      innerField: ipv6 ? NATLayout.ipv6Destination : NATLayout.ipv4Destination,
                                      innerPortField: NATLayout.destinationPort, address: vip, port: vport)
        } else {
            NATRewriter.rewrite(frame, f, addressField: ipv6 ? NATLayout.ipv6Source : NATLayout.ipv4Source,
                                portField: NATLayout.sourcePort, address: vip, port: vport)
        }
    }

    /// An ICMP error from the real servers' side about a packet the director sent to a NAT real
    /// server: outer source, quoted destination and port become VIP:vport, and it goes to the
    /// client. nil when it is about no NAT connection.
    func natICMPFromServer(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame) -> Verdict? {
        guard engine.natConnections != 0 else { return nil }
        guard let index = replyLookup(f) else { return natReplyElsewhere(frame, f) }
        let vip = conns[index].virtualAddress
        if notOwned(vip) { return dropNotOwned() }
        translateReply(frame, f, vip: vip, vport: conns[index].vport)
        return sendReply(frame, f, hop: conns.replies.links[Int(index)].hop, destSlot: conns[index].dest)
    }

    @inline(__always) func refreshTimer(_ index: UInt32, timeoutIndex: Int, tick: UInt32) {
        let old = conns[index].expires
        conns[index].expires = tick &+ UInt32(truncatingIfNeeded: timeoutTicks.load(timeoutIndex))
        if Int32(bitPattern: conns[index].expires &- old) < 0 { conns.reschedule(index) }
    }

    /// Sends a rewritten reply to the client's next hop, counted as output (`ip_vs_out_stats`).
    @inline(__always) func sendReply(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, hop: UInt64, destSlot: UInt32) -> Verdict {
        send(frame, f, hop: hop, destSlot: destSlot, packets: .outPackets, bytes: .outBytes, remembersFragment: false)
    }
}
