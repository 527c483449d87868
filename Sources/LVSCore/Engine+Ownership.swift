import Glibc
import LVSModel

/// VIP ownership: the mechanism VRRP drives. Every VIP address is owned (answered for, announced,
/// scheduled and forwarded) unless it is *managed* (`setManagedAddresses`) and not taken with
/// `setOwned`. For a managed address this director does not own (a VRRP BACKUP):
/// - ARP requests and neighbour solicitations for it are not answered (they go to the kernel, as
///   for any stranger's address), and it is not announced;
/// - frames to its services are dropped and counted (`DropReason.notOwned`): no new connection is
///   scheduled, no synced connection is adopted, no existing one is forwarded;
/// - its connections are not deleted: they forward again as soon as the address is owned (and the
///   backup sync daemon keeps adding to them meanwhile).
extension Engine {
    // MARK: VIP ownership (VRRP)

    /// Puts `vips` under VRRP control, replacing the previous set. A newly managed address is not
    /// owned until `setOwned`; an address that stays managed keeps its ownership; one that leaves
    /// the set is owned again, as every unmanaged address is.
    public func setManagedAddresses(_ vips: Set<IPAddress>) {
        lock.withLock {
            managedAddresses = vips
            ownedAddresses.formIntersection(vips)
            refreshOwnership()
        }
    }

    /// Takes (`owned` true, VRRP MASTER) or gives up (false) the managed addresses among `vips`;
    /// unmanaged addresses are always owned and are ignored here. Taking an address does not
    /// announce it: `announcementFrames` builds the gratuitous ARP / unsolicited NA to send.
    public func setOwned(_ vips: [IPAddress], _ owned: Bool) {
        lock.withLock {
            for v in vips where managedAddresses.contains(v) {
                if owned { ownedAddresses.insert(v) } else { ownedAddresses.remove(v) }
            }
            refreshOwnership()
        }
    }

    /// The addresses under VRRP control.
    public var managedVIPs: Set<IPAddress> { lock.withLock { managedAddresses } }

    /// The managed addresses this director does not own.
    public var notOwnedVIPs: Set<IPAddress> { lock.withLock { notOwnedAddresses } }

    /// Whether this director owns `vip` (always, for an unmanaged address).
    public func owns(_ vip: IPAddress) -> Bool { lock.withLock { !notOwnedAddresses.contains(vip) } }

    /// One gratuitous ARP per IPv4 address, one unsolicited neighbour advertisement (override
    /// flag) per IPv6 address, on every interface (or only on `interface`), as keepalived sends
    /// them on becoming MASTER. Addresses this director does not own are left out (announcing
    /// them would draw their traffic). Built whatever `--no-arp` says: the caller decides.
    /// An NA on an interface named in `routerInterfaces` has the router flag.
    public func announcementFrames(_ vips: [IPAddress], interface: Int32? = nil,
                                   routerInterfaces: Set<String> = []) -> [OutgoingFrame] {
        lock.withLock {
            var out: [OutgoingFrame] = []
            for vip in vips where !notOwnedAddresses.contains(vip) {
                for ifc in interfaces where interface == nil || ifc.index == interface {
                    if let frame = Self.announcement(vip, ifc, router: routerInterfaces.contains(ifc.name)) { out.append(frame) }
                }
            }
            return out
        }
    }

    /// The filter bit of an address in `ownershipFilter` (0..<1024).
    @inlinable @inline(__always) static func ownershipBit(_ a: IPAddress) -> Int {
        Int((a.folded &* 0x9E37_79B1) >> 22)
    }

    /// Recomputes `notOwnedAddresses` and publishes its filter. Under the lock.
    ///
    /// The filter words are written before the count, and an address that stays not owned keeps
    /// its bit in every word written: a worker never sees it owned, whatever it reads meanwhile.
    func refreshOwnership() {
        notOwnedAddresses = managedAddresses.subtracting(ownedAddresses)
        var bits = [UInt64](repeating: 0, count: OwnershipWord.bitWords)
        for a in notOwnedAddresses {
            let b = Self.ownershipBit(a)
            bits[b >> 6] |= OwnershipWord.mask(ofBit: b)
        }
        for (i, w) in bits.enumerated() { ownershipFilter.store(OwnershipWord.firstBitWord + i, w) }
        ownershipFilter.store(OwnershipWord.count, UInt64(notOwnedAddresses.count))
    }
}

extension EngineShard {
    /// Whether `a` is a managed VIP address this director does not own, from the packet path
    /// (without the lock held). While every address is owned this is one relaxed load; else the
    /// filter decides, and an address whose bit is set is looked up exactly under the lock (the
    /// VIPs not owned, and the rare owned address sharing a bit with one of them).
    @inline(__always) func notOwned(_ a: IPAddress) -> Bool {
        guard ownership.load(OwnershipWord.count) != 0 else { return false }
        let b = Engine.ownershipBit(a)
        guard ownership.load(OwnershipWord.word(ofBit: b)) & OwnershipWord.mask(ofBit: b) != 0 else { return false }
        return notOwnedExactly(a)
    }

    @inline(never) func notOwnedExactly(_ a: IPAddress) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return engine.notOwnedAddresses.contains(a)
    }

    /// A frame to an address not owned: dropped, counted (`DropReason.notOwned`).
    @inline(never) func dropNotOwned() -> Verdict { drop(.notOwned) }
}
