import Testing
@testable import LVSCore
import LVSModel

/// `-Lnc` on a big table: the listing is taken in slices, one engine-lock hold each.
@Suite struct ConnectionListingTests {
    /// SYNs from `count` client ports (spread over a few client addresses).
    func filled(_ count: Int, persistent: UInt32? = nil) -> Engine {
        let e = seedEngine(capacity: 4 * count, persistent: persistent)
        for i in 0..<count {
            let (v, _) = e.syn(UInt16(10000 + i / 4), from: "192.168.1.\(12 + i % 4)", at: second)
            #expect(v == .forward(interface: 2))
        }
        return e
    }

    func key(_ c: ConnectionSnapshot) -> String { "\(c.clientAddress):\(c.clientPort)" }

    @Test func aListingLargerThanOneSliceIsCompleteAndTakenInSeveralLockHolds() {
        let count = 5000
        let e = filled(count)
        var listing = ConnectionListing(sliceEntries: 256)
        var rounds = 0
        while !e.primary!.listConnections(&listing, now: 2 * second) { rounds += 1 }
        #expect(listing.isComplete)
        #expect(listing.entries.count == count)
        #expect(Set(listing.entries.map(key)).count == count, "every connection listed once")
        #expect(listing.lockHolds >= count / 256, "one lock hold per slice of 256 entries")
        #expect(listing.lockHolds == rounds + 1)
        // The same entries as the listing in one go.
        #expect(Set(e.connections(now: 2 * second).map(key)) == Set(listing.entries.map(key)))
        // A finished listing takes no further lock.
        #expect(e.primary!.listConnections(&listing, now: 2 * second))
        #expect(listing.lockHolds == rounds + 1)
    }

    @Test func aSliceIsBoundedByEntriesAndByBuckets() {
        let e = filled(1000)
        var byEntries = ConnectionListing(sliceEntries: 100)
        _ = e.primary!.listConnections(&byEntries, now: 2 * second)
        // Whole buckets: at least the limit, and at most the limit plus one chain.
        #expect(byEntries.entries.count >= 100 && byEntries.entries.count < 140)
        var byBuckets = ConnectionListing(sliceEntries: .max, sliceBuckets: 64)
        _ = e.primary!.listConnections(&byBuckets, now: 2 * second)
        #expect(byBuckets.nextBucket == 64)
        #expect(byBuckets.entries.count < 1000)
    }

    @Test func connectionsPresentThroughoutAreListedOnceWhileTheTableChangesBetweenSlices() {
        let count = 3000
        let e = filled(count)
        let before = Set(e.connections(now: 2 * second).map(key))
        var listing = ConnectionListing(sliceEntries: 128)
        var extra = 0
        while !e.primary!.listConnections(&listing, now: 2 * second) {
            // New connections arrive between two slices (the worker forwards between them).
            _ = e.syn(UInt16(30000 + extra), from: "192.168.1.50", at: 2 * second)
            extra += 1
        }
        let listed = listing.entries.map(key)
        #expect(extra > 10)
        #expect(Set(listed).count == listed.count, "no entry listed twice")
        #expect(before.isSubset(of: Set(listed)), "every connection present throughout is listed")
    }

    @Test func persistenceTemplatesAreListedInSlicesToo() {
        let clients = 2000
        let e = seedEngine(capacity: 4 * clients, persistent: 300)
        for i in 0..<clients {
            let (v, _) = e.syn(40000, from: "10.1.\(i / 250).\(1 + i % 250)", at: second)
            #expect(v == .forward(interface: 2))
        }
        var listing = ConnectionListing(sliceEntries: 64)
        while !e.listSharedConnections(e.templates, &listing, now: 2 * second) {}
        #expect(listing.entries.count == clients, "one template per client address")
        #expect(listing.entries.allSatisfy { $0.isTemplate })
        #expect(listing.lockHolds >= clients / 64)
        #expect(e.sharedConnections(now: 2 * second).count == clients)
        #expect(e.connections(now: 2 * second).count == 2 * clients)
    }
}
