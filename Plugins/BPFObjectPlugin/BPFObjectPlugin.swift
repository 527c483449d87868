import Foundation
import PackagePlugin

/// Builds lvsd's BPF program during `swift build`: `lvs-embed-bpf` runs clang (the toolchain's,
/// `-target bpf`) on `bpf/lvs_xdp.c` and writes the object out as a Swift source file, so that the
/// program is part of the lvsd binary and can be neither missing nor stale. (One command: an object
/// declared as an output would become a resource of the target.)
@main
struct BPFObjectPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let source = context.package.directoryURL.appending(path: "bpf/lvs_xdp.c")
        // The code both entry points share (bpf/lib/*.h, included as "lib/...": found next to the
        // source), and the map layouts the program shares with its loader (CLVSXDP).
        let library = context.package.directoryURL.appending(path: "bpf/lib")
        let libraryHeaders = try FileManager.default.contentsOfDirectory(atPath: library.path)
            .filter { $0.hasSuffix(".h") }.sorted().map { library.appending(path: $0) }
        let sharedInclude = context.package.directoryURL.appending(path: "Sources/CLVSXDP/include")
        let sharedHeader = sharedInclude.appending(path: "clvs_xdp_maps.h")
        let object = context.pluginWorkDirectoryURL.appending(path: "lvs_xdp.o")
        let generated = context.pluginWorkDirectoryURL.appending(path: "EmbeddedBPFObjectData.swift")
        // <asm/types.h> and friends live under the multiarch directory on Debian.
        let multiarch = ["x86_64", "aarch64", "riscv64", "powerpc64le", "s390x"].map {
            "-I/usr/include/\($0)-linux-gnu"
        }
        return [
            .buildCommand(
                displayName: "Compiling the BPF program bpf/lvs_xdp.c (clang -target bpf) into \(target.name)",
                executable: try context.tool(named: "lvs-embed-bpf").url,
                arguments: [try context.tool(named: "clang").url.path, object.path, generated.path, "--",
                            "-O2", "-g", "-Wall", "-Werror", "-target", "bpf"] + multiarch
                    + ["-I\(sharedInclude.path)", "-c", source.path],
                inputFiles: [source, sharedHeader] + libraryHeaders,
                outputFiles: [generated]
            ),
        ]
    }
}
