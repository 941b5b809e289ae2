import Testing
import VSwitchWire

@Suite struct VLANIDTests {
    @Test func acceptsTwelveBitValues() {
        #expect(VLANID(0)?.rawValue == 0)
        #expect(VLANID(4095)?.rawValue == 4095)
        #expect(VLANID(rawValue: 100)?.rawValue == 100)
        #expect(VLANID(UInt8(7))?.rawValue == 7)
    }

    @Test(arguments: [4096, 65535, -1, Int.max, Int.min])
    func rejectsOutOfRange(value: Int) {
        #expect(VLANID(value) == nil)
    }

    @Test func rejectsOutOfRangeRawValues() {
        #expect(VLANID(rawValue: 4096) == nil)
        #expect(VLANID(rawValue: .max) == nil)
    }

    @Test func knowsWhichIDsNameAVLAN() {
        #expect(!VLANID.null.isAssignable)
        #expect(VLANID.null.rawValue == 0)
        #expect(VLANID.default.isAssignable && VLANID.default.rawValue == 1)
        #expect(VLANID(4094)!.isAssignable)
        #expect(!VLANID(4095)!.isAssignable)
    }

    @Test func printsAndOrders() {
        #expect(VLANID(100)!.description == "100")
        #expect(VLANID(7)! < VLANID(100)!)
    }
}
