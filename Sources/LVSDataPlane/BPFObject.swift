#if canImport(Glibc)
import Glibc
#endif
import LVSBPFProgram

/// lvsd's BPF object (the XDP program of the afxdp and xdp data planes, the tc program of the tc
/// data plane, and their maps): the one built into lvsd by `swift build` from `bpf/lvs_xdp.c`, or
/// an ELF file given with `lvsd --xdp-object PATH`.
public struct BPFObject: Sendable {
    /// How logs and `lvsadm daemon status` name it: "lvs_xdp.o built into lvsd (N bytes)" or the path.
    public let name: String
    public let bytes: [UInt8]

    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    /// The object compiled into this binary.
    public static var builtIn: BPFObject { BPFObject(name: EmbeddedBPFObject.description, bytes: EmbeddedBPFObject.bytes) }

    /// Reads an object file; the error names the path.
    public init(contentsOf path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DataPlaneError.system(call: "open", errno: errno, context: "BPF object '\(path)'") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DataPlaneError.system(call: "read", errno: errno, context: "BPF object '\(path)'")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            guard bytes.count <= 64 << 20 else {
                throw DataPlaneError.invalidConfiguration("BPF object '\(path)' is larger than 64 MiB")
            }
        }
        guard bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]) else {
            throw DataPlaneError.invalidConfiguration("BPF object '\(path)' is not an ELF object")
        }
        self.init(name: path, bytes: bytes)
    }
}
