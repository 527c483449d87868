import Glibc
import CLVSXDP
import LVSCore
import LVSModel
import LVSSystem

/// Frames lvsd's BPF programs handled, by what they did (their `stats` map, summed over the CPUs).
public struct XDPFrameCounters: Sendable, Equatable {
    /// To lvsd: a service's or an fwmark rule's frame.
    public var service: UInt64
    /// To lvsd: a fragment or ICMP error to a VIP address or an fwmark prefix.
    public var address: UInt64
    /// To lvsd: an ARP request or neighbour solicitation for a VIP.
    public var neighbour: UInt64
    /// To the kernel (counted by the XDP program only).
    public var passed: UInt64
    /// Forwarded by the fast path (to real servers).
    public var fast: UInt64
    /// NAT replies forwarded by the tc fast path (to clients).
    public var natReply: UInt64 = 0

    /// Every frame handed to lvsd.
    public var toLVSD: UInt64 { service + address + neighbour }
}

/// One entry of the programs' fwmark trie (`mark_prefixes`): a prefix and the protocol/port ranges
/// that send a frame to an address under it to lvsd.
public struct XDPMarkEntry: Hashable, Sendable, CustomStringConvertible {
    /// A range of destination ports of one protocol (`proto` 0: TCP, UDP and SCTP).
    public struct Range: Hashable, Sendable, Comparable {
        public var proto: UInt8
        public var low: UInt16
        public var high: UInt16
        public init(proto: UInt8, low: UInt16, high: UInt16) {
            self.proto = proto
            self.low = low
            self.high = high
        }
        public static func < (a: Range, b: Range) -> Bool { (a.proto, a.low, a.high) < (b.proto, b.low, b.high) }
    }

    /// The prefix's address, host bits cleared.
    public var address: IPAddress
    public var prefixLength: Int
    /// Sorted; overlapping and adjacent ranges of a protocol merged.
    public var ranges: [Range]

    public var description: String { "\(address)/\(prefixLength)" }
}

/// Why the fwmark rules do not fit the BPF programs' trie.
public enum XDPMarkMapError: Error, CustomStringConvertible {
    /// More distinct protocol/port ranges cover one prefix than an entry holds.
    case tooManyRanges(prefix: String, count: Int)
    /// More distinct prefixes than the trie holds.
    case tooManyPrefixes(count: Int)

    public var description: String {
        switch self {
        case let .tooManyRanges(prefix, count):
            return "fwmark rules: \(count) protocol/port ranges apply to \(prefix), the BPF programs hold at most \(XDPMarkMap.maxRanges) per prefix (merge port ranges, or use --dataplane afpacket)"
        case let .tooManyPrefixes(count):
            return "fwmark rules: \(count) distinct prefixes, the BPF programs hold at most \(XDPMarkMap.maxPrefixes) (use --dataplane afpacket)"
        }
    }
}

/// The fwmark rules as the XDP and tc programs see them: an LPM trie keyed by (family, prefix),
/// whose value lists the protocol/port ranges of every rule covering that prefix, so the longest
/// match alone says whether a frame is lvsd's. Updated in place (no reload).
public final class XDPMarkMap {
    /// Ranges per entry (CLVS_MARK_MAX_RANGES) and prefixes (CLVS_MARK_MAX_PREFIXES).
    public static let maxRanges = Int(CLVS_MARK_MAX_RANGES)
    public static let maxPrefixes = Int(CLVS_MARK_MAX_PREFIXES)

    let fd: Int32
    public private(set) var entries: [XDPMarkEntry] = []
    /// Keeps the programs (and so the map) alive.
    let owner: AnyObject

    public init(program: XDPProgram) {
        fd = program.marksMap
        owner = program
    }

    /// The trie's entries for `rules` (the rules whose mark has a service; their order does not
    /// matter here: lvsd decides the mark, the programs only whether lvsd sees the frame).
    /// Throws when they do not fit.
    public static func entries(for rules: [MarkRule]) throws -> [XDPMarkEntry] {
        struct Prefix: Hashable { var address: IPAddress; var length: Int }
        var prefixes = Set<Prefix>()
        for r in rules { prefixes.insert(Prefix(address: r.destination.masked(prefix: r.prefixLength), length: r.prefixLength)) }
        guard prefixes.count <= maxPrefixes else { throw XDPMarkMapError.tooManyPrefixes(count: prefixes.count) }
        var out: [XDPMarkEntry] = []
        for p in prefixes.sorted(by: { ($0.address, $0.length) < ($1.address, $1.length) }) {
            // Every rule whose prefix holds this one: the longest match must answer for them too.
            let covering = rules.filter {
                $0.destination.isIPv4 == p.address.isIPv4 && $0.prefixLength <= p.length
                    && $0.destination.masked(prefix: $0.prefixLength) == p.address.masked(prefix: $0.prefixLength)
            }
            let ranges = merge(covering.map { r in
                guard let proto = r.proto else { return XDPMarkEntry.Range(proto: 0, low: 0, high: 65535) }
                return XDPMarkEntry.Range(proto: proto.rawValue, low: r.portLow, high: r.portHigh)
            })
            let entry = XDPMarkEntry(address: p.address, prefixLength: p.length, ranges: ranges)
            guard ranges.count <= maxRanges else { throw XDPMarkMapError.tooManyRanges(prefix: entry.description, count: ranges.count) }
            out.append(entry)
        }
        return out
    }

    /// Sorted ranges, those of one protocol merged where they overlap or touch; one range of every
    /// protocol and port covers everything.
    static func merge(_ ranges: [XDPMarkEntry.Range]) -> [XDPMarkEntry.Range] {
        if ranges.contains(where: { $0.proto == 0 }) { return [XDPMarkEntry.Range(proto: 0, low: 0, high: 65535)] }
        var out: [XDPMarkEntry.Range] = []
        for r in ranges.sorted() {
            if let last = out.last, last.proto == r.proto, UInt32(r.low) <= UInt32(last.high) + 1 {
                out[out.count - 1].high = max(last.high, r.high)
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// Makes the trie hold exactly the entries for `rules`: writes new and changed entries first,
    /// then deletes the others, so a kept rule never disappears.
    public func update(rules: [MarkRule]) throws {
        let wanted = try Self.entries(for: rules)
        let old = Dictionary(entries.map { (Key($0), $0) }, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(wanted.map { (Key($0), $0) }, uniquingKeysWith: { a, _ in a })
        for e in wanted where old[Key(e)] != e { try set(e, present: true) }
        for e in entries where new[Key(e)] == nil { try set(e, present: false) }
        entries = wanted
    }

    struct Key: Hashable {
        var address: IPAddress
        var length: Int
        init(_ e: XDPMarkEntry) {
            address = e.address
            length = e.prefixLength
        }
    }

    func set(_ e: XDPMarkEntry, present: Bool) throws {
        var key = clvs_mark_key()
        key.prefixlen = UInt32(CLVS_MARK_FAMILY_BITS) + UInt32(e.prefixLength)
        key.family = e.address.isIPv4 ? 4 : 6
        withUnsafeMutableBytes(of: &key.addr) { e.address.store(to: $0.baseAddress!) }
        var value = clvs_mark_value()
        if present {
            value.count = UInt32(e.ranges.count)
            withUnsafeMutableBytes(of: &value.ranges) { raw in
                let slots = raw.bindMemory(to: clvs_mark_range.self)
                for (i, r) in e.ranges.enumerated() {
                    slots[i] = clvs_mark_range(proto: r.proto, pad: 0, lo: r.low, hi: r.high)
                }
            }
        }
        try DataPlaneError.context("fwmark prefix \(e)") {
            try syscallNegatedErrno(present ? "bpf_map_update_elem(mark_prefixes)" : "bpf_map_delete_elem(mark_prefixes)") {
                present ? clvs_mark_set(fd, &key, &value) : clvs_mark_set(fd, &key, nil)
            }
        }
    }
}
