import Dispatch
import Glibc

/// Watches for virtual-machine generation changes: the kernel's vmgenid driver (Linux 6.10 and
/// later) sends a `change` uevent carrying `NEW_VMGENID=1` when the hypervisor reports that the
/// VM was restored from a snapshot or cloned. Everything this process holds in memory may then be
/// a copy that already ran on: secure sessions must never seal again (their counters may repeat
/// nonces that were used after the snapshot was taken), so vswitchd ends them all and handshakes
/// anew, as the kernel's WireGuard does on the same event.
///
/// Only root (CAP_NET_ADMIN) can send on the uevent group, so any `NEW_VMGENID` message is
/// trusted; the worst a forged one can do is one extra handshake per remote.
///
/// The window: frames sealed between the moment the VM resumes and the moment this event is
/// handled may repeat a nonce of the restored session (the same window the kernel's WireGuard
/// has). Docs/secure-wire-format.md says so.
final class VMGenerationMonitor: @unchecked Sendable {
    private let fd: Int32
    private let source: DispatchSourceRead

    /// Starts watching (on `queue`); nil if the uevent socket cannot be opened (then no VM
    /// generation change is ever seen, and the caller logs it).
    init?(queue: DispatchQueue, onChange: @escaping @Sendable () -> Void) {
        let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                        15 /* NETLINK_KOBJECT_UEVENT */)
        guard fd >= 0 else { return nil }
        // struct sockaddr_nl (linux/netlink.h, which Glibc's module does not bring): family,
        // padding, port id 0 (the kernel picks one), groups 1 (the kernel's uevents; 2 is udev's
        // re-broadcast).
        var address: (UInt16, UInt16, UInt32, UInt32) = (UInt16(AF_NETLINK), 0, 0, 1)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, 12) }
        }
        guard bound == 0 else { close(fd); return nil }
        self.fd = fd
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 8)
        source.setEventHandler {
            while true {
                let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
                if n <= 0 { break }
                if Self.isGenerationChange(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) { onChange() }
            }
        }
        source.setCancelHandler { close(fd); buffer.deallocate() }
        source.resume()
    }

    deinit { source.cancel() }

    /// Whether a uevent message (`ACTION@DEVPATH` then `KEY=VALUE` strings, each NUL-terminated)
    /// carries `NEW_VMGENID=1`.
    static func isGenerationChange(_ message: UnsafeRawBufferPointer) -> Bool {
        let key = Array("NEW_VMGENID=1".utf8)
        var start = 0
        for i in 0...message.count {
            if i == message.count || message[i] == 0 {
                if i - start == key.count && message[start..<i].elementsEqual(key) { return true }
                start = i + 1
            }
        }
        return false
    }
}
