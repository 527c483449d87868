import Glibc
import CLVSShim
import LVSSystem

/// Options of a `PacketSocket`.
public struct PacketSocketOptions: Sendable {
    /// Slots of the TPACKET_V2 receive ring.
    public var ringFrames: Int = 1024
    /// Bytes per ring slot; nil = enough for one MTU-sized frame (at least 2048). Bigger frames
    /// (GSO/GRO super-frames) are delivered through the socket's queue (TP_STATUS_COPY).
    public var frameSize: Int? = nil
    /// SO_RCVBUF(FORCE): room for the full copies of super-frames.
    public var receiveBuffer: Int = 8 << 20
    public var sendBuffer: Int = 4 << 20
    public var qdiscBypass: Bool = true
    /// The EtherType bound to (host order). ETH_P_ALL (3) receives every frame, as a tap, before
    /// tc ingress; a single type (0x0800, 0x86DD, 0x0806) receives after tc ingress, only what the
    /// tc program let through.
    public var protocolType: UInt16 = 3

    public init() {}
}

/// An AF_PACKET SOCK_RAW socket bound to one interface (with ETH_P_ALL unless the options name one
/// EtherType), with PACKET_VNET_HDR, PACKET_IGNORE_OUTGOING and a TPACKET_V2 mmap receive ring.
/// Transmission is done by the worker with sendmmsg on `fd` (each message starts with a
/// virtio_net_hdr).
public final class PacketSocket {
    public let interface: InterfaceInfo
    public let fd: Int32
    /// Start of the receive ring (ringFrames × frameSize bytes).
    public let ring: UnsafeMutableRawPointer
    public let frameSize: Int
    public let frameCount: Int
    let ringBytes: Int
    public private(set) var fanoutGroup: Int32?
    /// The EtherType bound to (3 = ETH_P_ALL).
    public let protocolType: UInt16

    /// Bytes of the virtio_net_hdr that precedes every frame in both directions.
    public static let vnetHeaderLength = Int(clvs_vnet_hdr_len)

    public init(interface: InterfaceInfo, options: PacketSocketOptions = PacketSocketOptions()) throws {
        self.interface = interface
        let context = "packet socket on '\(interface.name)'"
        do {
            // Protocol 0 until bind: receive nothing before the ring and options are in place.
            let fd = try syscall("socket(AF_PACKET)") {
                socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            }
            var ok = false
            defer { if !ok { close(fd) } }

            func set(_ level: Int32, _ name: Int32, _ value: Int, _ label: String) throws {
                try syscall("setsockopt(\(label))") { clvs_setsockopt_int(fd, level, name, Int32(value)) }
            }
            try set(SOL_PACKET, PACKET_VERSION, Int(clvs_tpacket_v2), "PACKET_VERSION")
            try set(SOL_PACKET, PACKET_VNET_HDR, 1, "PACKET_VNET_HDR")
            try set(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING")
            try set(SOL_PACKET, PACKET_COPY_THRESH, 1, "PACKET_COPY_THRESH")
            if options.qdiscBypass { try set(SOL_PACKET, PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS") }
            // The *FORCE options need CAP_NET_ADMIN; without it the plain ones (capped by the sysctls).
            if (try? set(SOL_SOCKET, SO_RCVBUFFORCE, options.receiveBuffer, "SO_RCVBUFFORCE")) == nil {
                try set(SOL_SOCKET, SO_RCVBUF, options.receiveBuffer, "SO_RCVBUF")
            }
            if (try? set(SOL_SOCKET, SO_SNDBUFFORCE, options.sendBuffer, "SO_SNDBUFFORCE")) == nil {
                try set(SOL_SOCKET, SO_SNDBUF, options.sendBuffer, "SO_SNDBUF")
            }

            // Ring geometry: slot = power of two holding headers + vnet header + one MTU frame (+VLAN).
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            var frameSize = options.frameSize ?? 2048
            if options.frameSize == nil {
                let need = 128 + PacketSocket.vnetHeaderLength + interface.mtu + 18
                while frameSize < need { frameSize <<= 1 }
            }
            guard frameSize >= 256, frameSize % Int(clvs_tpacket_alignment) == 0 else {
                throw DataPlaneError.invalidConfiguration("ring frame size \(frameSize) for '\(interface.name)'")
            }
            let blockSize = max(page, frameSize) * (frameSize <= page ? 16 : 1)
            guard blockSize % frameSize == 0 else {
                throw DataPlaneError.invalidConfiguration("ring frame size \(frameSize) must divide block size \(blockSize)")
            }
            let perBlock = blockSize / frameSize
            let blocks = max(1, (max(options.ringFrames, 8) + perBlock - 1) / perBlock)
            let frames = blocks * perBlock
            try syscall("setsockopt(PACKET_RX_RING)") {
                clvs_packet_rx_ring(fd, UInt32(blockSize), UInt32(blocks), UInt32(frameSize), UInt32(frames))
            }
            let bytes = blockSize * blocks
            let map = try syscallMapping("mmap(rx ring)") { mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) }
            do {
                try syscall(options.protocolType == 3 ? "bind(ETH_P_ALL)" : "bind(EtherType 0x\(String(options.protocolType, radix: 16)))") {
                    clvs_packet_bind(fd, interface.index, options.protocolType)
                }
            } catch {
                munmap(map, bytes)
                throw error
            }
            ok = true
            self.fd = fd
            self.ring = map
            self.ringBytes = bytes
            self.frameSize = frameSize
            self.frameCount = frames
            self.protocolType = options.protocolType
        } catch let error as SystemError {
            throw DataPlaneError(error, context: context)
        }
    }

    /// How a PACKET_FANOUT group picks the member socket for a frame.
    public enum FanoutMode: Int32, CustomStringConvertible, Sendable {
        /// By the frame's flow hash, so a connection always reaches the same worker and shard.
        case hash = 0 // PACKET_FANOUT_HASH
        /// By the receiving CPU. Used when the group has one member: the kernel then computes no
        /// flow hash per frame (measured: about 5 % of the sending CPU in 64-byte UDP floods).
        case cpu = 2 // PACKET_FANOUT_CPU
        public var description: String { self == .hash ? "hash" : "cpu" }
    }

    /// Joins a PACKET_FANOUT group (`mode`) with PACKET_FANOUT_FLAG_DEFRAG (the kernel reassembles
    /// IPv4 fragments before the ring, as IPVS sees datagrams after defragmentation). With
    /// `group == nil` the kernel picks a unique id, which is returned so the other workers'
    /// sockets of this interface can join it.
    @discardableResult
    public func joinFanout(group: Int32?, mode: FanoutMode = .hash, defrag: Bool = true) throws -> Int32 {
        let flags = defrag ? Int32(PACKET_FANOUT_FLAG_DEFRAG) : 0
        let id = try DataPlaneError.context("packet socket on '\(interface.name)'") {
            try syscall("setsockopt(PACKET_FANOUT)") { clvs_packet_fanout(fd, group ?? -1, mode.rawValue, flags) }
        }
        fanoutGroup = id
        return id
    }

    /// The fanout setting the kernel reports for this socket (getsockopt PACKET_FANOUT): mode and
    /// whether it defragments; nil when the socket is in no group.
    public func kernelFanoutSetting() throws -> (mode: Int32, defrag: Bool)? {
        var v: UInt32 = 0
        try DataPlaneError.context("packet socket on '\(interface.name)'") {
            try syscall("getsockopt(PACKET_FANOUT)") { clvs_packet_fanout_setting(fd, &v) }
        }
        guard v != 0 else { return nil }
        return (mode: Int32((v >> 16) & 0xff), defrag: (v >> 24) & (UInt32(PACKET_FANOUT_FLAG_DEFRAG) >> 8) != 0)
    }

    deinit {
        munmap(ring, ringBytes)
        close(fd)
    }
}
