import CNetlink
import Glibc

/// A failed netlink or namespace operation, told as one line:
/// `cannot add address 198.18.0.1/24 to vst1h1 in namespace vst1-h1: File exists`.
///
/// `code` is the kernel's errno whenever it is known (the socket's error callback captures it before
/// libnl folds it into an `NLE_*` value); otherwise the `NLE_*` value is mapped back to the nearest errno,
/// and `code` is 0 only when there is none (then `reason` is libnl's own text).
public struct NetlinkError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was attempted, as a verb phrase: "add address", "create veth", "enter namespace".
    public var operation: String
    /// What it was attempted on: "198.18.0.1/24 to vst1h1", "vst0a (peer vst0b)".
    public var object: String
    /// The namespace the socket or thread was in, nil for the caller's own.
    public var namespace: String?
    /// errno (positive), or 0 when the failure has no errno equivalent.
    public var code: Int32
    /// strerror(code), or libnl's or our own text when code is 0.
    public var reason: String
    /// The kernel's extended-ack message (NLMSGERR_ATTR_MSG), when it sent one.
    public var kernelMessage: String?

    public init(operation: String, object: String, namespace: String? = nil, code: Int32,
                reason: String? = nil, kernelMessage: String? = nil) {
        self.operation = operation
        self.object = object
        self.namespace = namespace
        self.code = code
        self.reason = reason ?? NetlinkError.describe(errno: code)
        self.kernelMessage = kernelMessage
    }

    public var description: String {
        var text = "cannot \(operation)"
        if !object.isEmpty { text += " \(object)" }
        if let namespace { text += " in namespace \(namespace)" }
        text += ": \(reason)"
        if let kernelMessage, !kernelMessage.isEmpty { text += " (\(kernelMessage))" }
        return text
    }

    /// strerror without its thread-safety caveat: glibc returns static text for every known errno.
    static func describe(errno code: Int32) -> String {
        guard code > 0, let text = strerror(code) else { return "Unknown error \(code)" }
        return String(cString: text)
    }

    /// Maps a (positive or negative) libnl `NLE_*` code to the errno it most likely came from; 0 if none.
    /// `nl_syserr2nlerr` is many-to-one (ENOTCONN, ENOTSUP... all become NLE_FAILURE), hence "most likely".
    static func errno(fromLibnl nle: Int32) -> Int32 {
        switch abs(nle) {
        case NLE_INTR: return EINTR
        case NLE_BAD_SOCK: return EBADF
        case NLE_AGAIN: return EAGAIN
        case NLE_NOMEM: return ENOMEM
        case NLE_EXIST: return EEXIST
        case NLE_INVAL: return EINVAL
        case NLE_RANGE: return ERANGE
        case NLE_MSGSIZE: return EMSGSIZE
        case NLE_OPNOTSUPP: return EOPNOTSUPP
        case NLE_AF_NOSUPPORT: return EAFNOSUPPORT
        case NLE_OBJ_NOTFOUND: return ENOENT
        case NLE_NOADDR: return EADDRNOTAVAIL
        case NLE_BUSY: return EBUSY
        case NLE_PROTO_MISMATCH: return EPROTONOSUPPORT
        case NLE_NOACCESS: return EACCES
        case NLE_PERM: return EPERM
        case NLE_NODEV: return ENODEV
        default: return 0
        }
    }

    /// An error from a libnl return code, preferring the errno the kernel actually sent.
    static func libnl(_ nle: Int32, kernelErrno: Int32, kernelMessage: String?, operation: String,
                      object: String, namespace: String?) -> NetlinkError {
        if kernelErrno > 0 {
            return NetlinkError(operation: operation, object: object, namespace: namespace, code: kernelErrno,
                                kernelMessage: kernelMessage)
        }
        let code = errno(fromLibnl: nle)
        let reason = code > 0 ? nil : String(cString: nl_geterror(nle))
        return NetlinkError(operation: operation, object: object, namespace: namespace, code: code,
                            reason: reason, kernelMessage: kernelMessage)
    }
}
