import LVSModel

/// VRRP advertisements on the wire: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), IPv4 and IPv6.
/// The bytes are the VRRP message only (what follows the IP header); the IP addresses are
/// passed in because the v3 checksum covers a pseudo-header made of them.
public enum VRRPAdvert {
    /// IP protocol number of VRRP.
    public static let ipProtocol: UInt8 = 112
    /// The TTL / hop limit every advert is sent with and multicast adverts must arrive with.
    public static let hopLimit: UInt8 = 255
    /// The only message type: ADVERTISEMENT.
    public static let advertisementType: UInt8 = 1
    /// v2 authentication types.
    public static let authNone: UInt8 = 0
    public static let authPassword: UInt8 = 1
    /// Length of the v2 authentication data (IPv4 only).
    public static let authDataLength = 8
    /// The v3 interval field has 12 bits of centiseconds.
    public static let maxIntervalCentiseconds: UInt16 = 0x0FFF
    /// 224.0.0.18 and ff02::12.
    public static var ipv4Group: IPAddress { IPAddress(ipv4: 0xE000_0012) }
    public static var ipv6Group: IPAddress { IPAddress(high: 0xFF02_0000_0000_0000, low: 0x12) }

    /// Byte offsets in the message header (the same for both versions).
    enum Offset {
        static let versionType = 0
        static let virtualRouterID = 1
        static let priority = 2
        static let addressCount = 3
        /// v2: auth type (1 byte) then interval in seconds (1 byte); v3: 4 reserved bits and a
        /// 12-bit interval in centiseconds.
        static let authTypeOrInterval = 4
        static let intervalV2 = 5
        static let checksum = 6
        static let addresses = 8
    }
    static let headerLength = 8

    /// A decoded (or to-be-encoded) advertisement.
    public struct Message: Sendable, Hashable {
        public var version: UInt8
        public var virtualRouterID: UInt8
        public var priority: UInt8
        /// v3: the Max Advert Interval; v2: the advert interval in seconds × 100.
        public var intervalCentiseconds: UInt16
        public var addresses: [IPAddress]
        /// v2 only: `authNone` or `authPassword` (anything else when decoded from the wire).
        public var authType: UInt8
        /// v2 IPv4 only: the 8 authentication bytes (the password, zero-padded).
        public var authData: [UInt8]
        /// The checksum as received (0 for a message built to be encoded).
        public var checksum: UInt16
        public init(version: UInt8, virtualRouterID: UInt8, priority: UInt8, intervalCentiseconds: UInt16,
                    addresses: [IPAddress], authType: UInt8 = 0, authData: [UInt8] = [], checksum: UInt16 = 0) {
            self.version = version; self.virtualRouterID = virtualRouterID; self.priority = priority
            self.intervalCentiseconds = intervalCentiseconds; self.addresses = addresses
            self.authType = authType; self.authData = authData; self.checksum = checksum
        }
    }

    /// Whether a message of this version and family carries the 8 v2 authentication bytes.
    static func hasAuthData(version: UInt8, ipv6: Bool) -> Bool { version == 2 && !ipv6 }

    /// The length a message must have for its version, family and address count.
    public static func expectedLength(version: UInt8, ipv6: Bool, addressCount: Int) -> Int {
        headerLength + addressCount * (ipv6 ? 16 : 4) + (hasAuthData(version: version, ipv6: ipv6) ? authDataLength : 0)
    }

    /// The password as the 8 bytes keepalived puts in the packet (truncated, zero-padded).
    public static func authData(password: [UInt8]) -> [UInt8] {
        var data = Array(password.prefix(authDataLength))
        data.append(contentsOf: [UInt8](repeating: 0, count: authDataLength - data.count))
        return data
    }

    /// Encodes `message` with its checksum computed for these IP addresses (v2: the message
    /// only; v3: with the IPv4 or IPv6 pseudo-header). The family is the family of `source`.
    public static func encode(_ message: Message, source: IPAddress, destination: IPAddress) -> [UInt8] {
        let ipv6 = !source.isIPv4
        var bytes = [UInt8](repeating: 0, count: headerLength)
        bytes[Offset.versionType] = message.version << 4 | advertisementType
        bytes[Offset.virtualRouterID] = message.virtualRouterID
        bytes[Offset.priority] = message.priority
        bytes[Offset.addressCount] = UInt8(truncatingIfNeeded: message.addresses.count)
        if message.version == 2 {
            bytes[Offset.authTypeOrInterval] = ipv6 ? authNone : message.authType
            bytes[Offset.intervalV2] = UInt8(truncatingIfNeeded: message.intervalCentiseconds / 100)
        } else {
            let interval = message.intervalCentiseconds & maxIntervalCentiseconds
            bytes[Offset.authTypeOrInterval] = UInt8(interval >> 8)
            bytes[Offset.intervalV2] = UInt8(truncatingIfNeeded: interval)
        }
        for address in message.addresses { append(address, ipv6: ipv6, to: &bytes) }
        if hasAuthData(version: message.version, ipv6: ipv6) {
            bytes.append(contentsOf: message.authType == authPassword ? authData(password: message.authData) : [UInt8](repeating: 0, count: authDataLength))
        }
        let sum = checksum(bytes, version: message.version, source: source, destination: destination)
        bytes[Offset.checksum] = UInt8(sum >> 8)
        bytes[Offset.checksum + 1] = UInt8(truncatingIfNeeded: sum)
        return bytes
    }

    /// Decodes a message's structure: length, version (2 or 3), type, and that the length is
    /// what the address count says. The checksum is checked by `checksumIsValid`.
    public static func decode(_ bytes: [UInt8], ipv6: Bool) -> Result<Message, VRRPRejection> {
        guard bytes.count >= headerLength else { return .failure(.truncated) }
        let version = bytes[Offset.versionType] >> 4
        guard version == 2 || version == 3 else { return .failure(.version) }
        let count = Int(bytes[Offset.addressCount])
        let minimum = expectedLength(version: version, ipv6: ipv6, addressCount: 0)
        guard bytes.count >= minimum else { return .failure(.truncated) }
        guard bytes.count == expectedLength(version: version, ipv6: ipv6, addressCount: count) else {
            return .failure(.addressCount)
        }
        guard bytes[Offset.versionType] & 0x0F == advertisementType else { return .failure(.type) }
        var addresses: [IPAddress] = []
        addresses.reserveCapacity(count)
        let size = ipv6 ? 16 : 4
        bytes.withUnsafeBytes { raw in
            for index in 0..<count {
                addresses.append(IPAddress(bytes: raw.baseAddress! + Offset.addresses + index * size, length: size))
            }
        }
        var message = Message(version: version, virtualRouterID: bytes[Offset.virtualRouterID],
                              priority: bytes[Offset.priority], intervalCentiseconds: 0, addresses: addresses,
                              checksum: UInt16(bytes[Offset.checksum]) << 8 | UInt16(bytes[Offset.checksum + 1]))
        if version == 2 {
            message.authType = bytes[Offset.authTypeOrInterval]
            message.intervalCentiseconds = UInt16(bytes[Offset.intervalV2]) * 100
            if hasAuthData(version: version, ipv6: ipv6) {
                message.authData = Array(bytes[(bytes.count - authDataLength)...])
            }
        } else {
            message.intervalCentiseconds = (UInt16(bytes[Offset.authTypeOrInterval]) << 8 | UInt16(bytes[Offset.intervalV2])) & maxIntervalCentiseconds
        }
        return .success(message)
    }

    /// Whether the message's checksum is right for these IP addresses.
    public static func checksumIsValid(_ bytes: [UInt8], version: UInt8, source: IPAddress, destination: IPAddress) -> Bool {
        // Summing the message with its checksum in place gives 0 when the checksum is right.
        checksum(bytes, version: version, source: source, destination: destination, skipChecksumField: false) == 0
    }

    /// The Internet checksum of the message with its checksum field taken as zero (v3: plus the
    /// pseudo-header of `source` and `destination`).
    public static func checksum(_ bytes: [UInt8], version: UInt8, source: IPAddress, destination: IPAddress) -> UInt16 {
        checksum(bytes, version: version, source: source, destination: destination, skipChecksumField: true)
    }

    private static func checksum(_ bytes: [UInt8], version: UInt8, source: IPAddress, destination: IPAddress,
                                 skipChecksumField: Bool) -> UInt16 {
        var sum: UInt64 = 0
        if version == 3 {
            if source.isIPv4 {
                // Source, destination, zero, protocol, VRRP length.
                sum += UInt64(source.ipv4Value >> 16) + UInt64(source.ipv4Value & 0xFFFF)
                sum += UInt64(destination.ipv4Value >> 16) + UInt64(destination.ipv4Value & 0xFFFF)
                sum += UInt64(ipProtocol) + UInt64(bytes.count)
            } else {
                // Source, destination, 32-bit upper-layer length, 3 zero bytes, next header.
                for word in [source.high, source.low, destination.high, destination.low] {
                    sum += (word >> 48) + ((word >> 32) & 0xFFFF) + ((word >> 16) & 0xFFFF) + (word & 0xFFFF)
                }
                sum += UInt64(bytes.count >> 16) + UInt64(bytes.count & 0xFFFF) + UInt64(ipProtocol)
            }
        }
        var index = 0
        while index + 1 < bytes.count {
            if !(skipChecksumField && index == Offset.checksum) {
                sum += UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
            }
            index += 2
        }
        if index < bytes.count { sum += UInt64(bytes[index]) << 8 }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    private static func append(_ address: IPAddress, ipv6: Bool, to bytes: inout [UInt8]) {
        var raw = [UInt8](repeating: 0, count: 16)
        raw.withUnsafeMutableBytes { address.store(to: $0.baseAddress!) }
        bytes.append(contentsOf: raw.prefix(ipv6 ? 16 : 4))
    }
}

/// A rejection is the error of a failed decode (`Result<_, VRRPRejection>`).
extension VRRPRejection: Error {}
