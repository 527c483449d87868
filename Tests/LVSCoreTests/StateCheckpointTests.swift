import Testing
@testable import LVSCore
import LVSModel

/// The periodic checkpoint (lvsd --checkpoint-interval): walked in slices while the table
/// changes, it holds what a stop's `exportState` holds, and it comes back whole in the next lvsd.
@Suite struct StateCheckpointTests {
    static func key(_ c: SyncConnection) -> String {
        "\(c.proto) \(c.client):\(c.clientPort) \(c.virtualAddress):\(c.virtualPort) \(c.destination):\(c.destinationPort) \(c.isTemplate) \(c.timeout)"
    }

    /// Slices of one entry: the shard's walk plus the shared tables are exactly `exportState`'s
    /// entries (connections and templates, the time each has left), one lock hold per slice.
    @Test func slicedWalkEqualsTheStopsExport() throws {
        let e = StateFileTests.busyEngine()
        let now = 2 * second
        var export = StateExport(sliceEntries: 1)
        var holds = 0
        while !e.primary.exportState(&export, now: now) { holds += 1 }
        #expect(export.lockHolds == holds + 1)
        let sliced = export.entries + e.exportSharedState(now: now, sliceEntries: 1)
        #expect(sliced.map(Self.key).sorted() == e.exportState(now: now).map(Self.key).sorted())
        #expect(sliced.count == 5)
        #expect(export.lockHolds >= 3, "a slice of one entry per lock hold")

        // And it is a state file the next lvsd restores whole.
        let restored = try StateFile.decode(StateFile.encode(sliced)).get()
        let next = seedEngine(persistent: 360)
        let r = next.restoreState(restored, now: 3 * second)
        #expect(r.connections == 3 && r.templates == 2 && r.dropped == 0)
        #expect(StateFileTests.summary(next, at: 3 * second) == StateFileTests.summary(e, at: 2 * second))
    }

    /// Entries added behind the walk's position are for the next checkpoint; the walk ends and
    /// lists every entry present from its first slice to its last once.
    @Test func aTableThatChangesDuringTheWalkIsWalkedOnce() {
        let e = StateFileTests.busyEngine()
        var export = StateExport(sliceEntries: 1)
        e.primary.exportState(&export, now: 2 * second)
        SyncFailoverTests.establish(e, 6003, from: "192.168.1.14", at: 2 * second)
        while !e.primary.exportState(&export, now: 2 * second) {}
        let keys = export.entries.map(Self.key)
        #expect(Set(keys).count == keys.count, "no entry twice")
        #expect(keys.count >= 3)
    }
}
