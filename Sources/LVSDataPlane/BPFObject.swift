import Foundation
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
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw DataPlaneError.invalidConfiguration("BPF object '\(path)' cannot be read: \(error.localizedDescription)")
        }
        guard bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]) else {
            throw DataPlaneError.invalidConfiguration("BPF object '\(path)' is not an ELF object")
        }
        self.init(name: path, bytes: bytes)
    }
}
