// swift-tools-version:6.0
// vswitch: a userspace Ethernet bridge and virtual switch for Linux.
// Layers point downward (see Docs/architecture.md):
//   C shims, wire formats  ->  system, netlink, core  ->  ports, data plane  ->  control  ->  executables
import PackageDescription

let package = Package(
    name: "vswitch",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vswitchd", targets: ["vswitchd"]),
        .executable(name: "vswitchctl", targets: ["vswitchctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.70.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // C shim: only what Swift cannot call (ioctl on /dev/net/tun, struct ifreq).
        .target(name: "CVSwitchLinux"),
        .target(name: "CChecksum", cSettings: [.unsafeFlags(["-O2"])]),
        // Batched writes through io_uring (Debian: liburing-dev): TAP ports' transmit.
        .target(name: "CVSwitchURing", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("uring")]),
        // libnl-route-3 through pkg-config (Debian: libnl-3-dev, libnl-route-3-dev).
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),

        // libpcap through pkg-config (Debian: libpcap-dev).
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),

        // Wire formats: checked views over bytes plus small values. No I/O, no Foundation.
        .target(name: "VSwitchWire", dependencies: ["CChecksum"]),
        // Switch core: buffers, pool, Port protocol, MAC table, learning switch. No Foundation, no port kind.
        .target(name: "VSwitchCore", dependencies: ["VSwitchWire"]),
        // Syscall wrappers: errno, fds, epoll, eventfd, threads.
        .target(name: "VSwitchSystem", dependencies: ["CVSwitchLinux"]),
        // Netlink (libnl-route-3): links, addresses, namespaces.
        .target(name: "VSwitchNetlink", dependencies: ["CNetlink", "VSwitchSystem"]),
        // Port kinds (TAP, ...): know the core's Port protocol and the system below it.
        .target(name: "VSwitchPorts", dependencies: ["VSwitchCore", "VSwitchWire", "VSwitchSystem", "VSwitchNetlink", "CVSwitchLinux", "CPcap", "VSwitchTunnel", "CVSwitchURing"]),
        // Tunnel wire formats and security: VXLAN, the secure mode's AEAD framing, replay window, keys.
        .target(name: "CAEAD", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "VSwitchTunnel", dependencies: ["VSwitchWire", "CAEAD", .product(name: "Crypto", package: "swift-crypto")]),
        // Data plane: threads that own ports, wait with epoll and forward in batches.
        .target(name: "VSwitchDataPlane", dependencies: ["VSwitchCore", "VSwitchSystem"]),
        // Control protocol (JSON-RPC types), client, CLI rendering. Shared by vswitchd and vswitchctl.
        .target(name: "VSwitchControl", dependencies: []),
        // The daemon's services: switch registry, state store, control server.
        .target(name: "VSwitchDaemon", dependencies: [
            "VSwitchControl", "VSwitchDataPlane", "VSwitchPorts", "VSwitchNetlink", "VSwitchCore", "VSwitchWire",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // Lab topologies of network namespaces from YAML files (vswitchctl lab).
        .target(name: "VSwitchLab", dependencies: [
            "VSwitchControl", "VSwitchNetlink", "VSwitchSystem",
            .product(name: "Yams", package: "Yams"),
        ]),
        .executableTarget(name: "vswitchd", dependencies: [
            "VSwitchDaemon",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "vswitchctl", dependencies: [
            "VSwitchControl", "VSwitchLab", "VSwitchTunnel",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // In-memory ports and traffic for unit tests and benchmarks (never linked into vswitchd).
        .target(name: "VSwitchTesting", dependencies: ["VSwitchCore"]),
        // Counts malloc calls in the test process (interposes malloc over glibc's __libc_malloc).
        .target(name: "CMallocCounter"),
        // Core benchmark driver (Tools/bench runs it, also under callgrind).
        .executableTarget(name: "vswitch-bench", dependencies: ["VSwitchCore", "VSwitchTesting", "CMallocCounter", "VSwitchTunnel"]),

        .testTarget(name: "VSwitchWireTests", dependencies: ["VSwitchWire", "VSwitchTesting"]),
        .testTarget(name: "VSwitchCoreTests", dependencies: ["VSwitchCore", "VSwitchTesting", "CMallocCounter"]),
        .testTarget(name: "VSwitchNetlinkTests", dependencies: ["VSwitchNetlink", "VSwitchSystem"]),
        .testTarget(name: "VSwitchPortsTests", dependencies: ["VSwitchPorts", "VSwitchCore", "VSwitchWire", "VSwitchTesting", "VSwitchNetlink",
                                                          "VSwitchTunnel", "VSwitchDataPlane", "VSwitchSystem", "CMallocCounter"]),
        .testTarget(name: "VSwitchTunnelTests", dependencies: ["VSwitchTunnel", "VSwitchWire", "VSwitchTesting", "CMallocCounter"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "VSwitchControlTests", dependencies: ["VSwitchControl"]),
        // The daemon's requests over in-memory ports (an injected PortFactory): no root needed.
        .testTarget(name: "VSwitchDaemonTests", dependencies: ["VSwitchDaemon", "VSwitchControl", "VSwitchCore", "VSwitchPorts",
                                                           "VSwitchDataPlane", "VSwitchTesting", "VSwitchSystem",
                                                           .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "VSwitchLabTests", dependencies: ["VSwitchLab"]),
        .testTarget(name: "IntegrationTests", dependencies: ["VSwitchControl", "VSwitchNetlink", "VSwitchSystem"]),
    ]
)
