import Glibc
import Testing
@testable import VSwitchNetlink
import CNetlink

/// No root needed: the message format and the libnl -> errno mapping.
struct NetlinkErrorTests {
    @Test func description() {
        let error = NetlinkError(operation: "add address", object: "198.18.0.1/24 to vst1h1", namespace: "vst1-h1",
                                 code: EEXIST)
        #expect(error.description == "cannot add address 198.18.0.1/24 to vst1h1 in namespace vst1-h1: File exists")
        let withKernelText = NetlinkError(operation: "set mtu 50 on", object: "eth9", code: EINVAL,
                                          kernelMessage: "mtu less than device minimum")
        #expect(withKernelText.description
            == "cannot set mtu 50 on eth9: Invalid argument (mtu less than device minimum)")
    }

    @Test(arguments: [
        (NLE_EXIST, EEXIST), (NLE_NODEV, ENODEV), (NLE_OBJ_NOTFOUND, ENOENT), (NLE_PERM, EPERM),
        (NLE_INVAL, EINVAL), (NLE_BUSY, EBUSY), (NLE_NOMEM, ENOMEM), (NLE_FAILURE, 0),
    ].map { (Int32($0.0), Int32($0.1)) })
    func libnlCodesMapBackToErrno(nle: Int32, code: Int32) {
        #expect(NetlinkError.errno(fromLibnl: -nle) == code)
    }

    @Test func kernelErrnoWins() {
        // ENOTCONN comes back from libnl as NLE_FAILURE; the captured errno is kept.
        let error = NetlinkError.libnl(-NLE_FAILURE, kernelErrno: ENOTCONN, kernelMessage: nil,
                                       operation: "create veth", object: "a", namespace: nil)
        #expect(error.code == ENOTCONN)
        #expect(error.description == "cannot create veth a: Transport endpoint is not connected")
        let unmapped = NetlinkError.libnl(-NLE_FAILURE, kernelErrno: 0, kernelMessage: nil,
                                          operation: "create veth", object: "a", namespace: nil)
        #expect(unmapped.description == "cannot create veth a: Unspecific failure")
        #expect(NetlinkError.libnl(-NLE_EXIST, kernelErrno: 0, kernelMessage: nil, operation: "x",
                                   object: "y", namespace: nil).description == "cannot x y: File exists")
    }

    @Test func macText() {
        #expect(LinkInfo.parse(mac: "aa:BB:0c:00:01:ff") == [0xaa, 0xbb, 0x0c, 0x00, 0x01, 0xff])
        #expect(LinkInfo.parse(mac: "aa:bb:cc") == nil)
        #expect(LinkInfo.parse(mac: "aa:bb:cc:dd:ee:fg") == nil)
        #expect(LinkInfo.format(mac: [0x02, 0, 0x5e, 0x10, 0x20, 0x30]) == "02:00:5e:10:20:30")
    }
}
