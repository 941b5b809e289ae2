import Testing
@testable import VSwitchLab

@Suite struct LabValuesTests {
    @Test(arguments: ["198.18.0.1/24", "0.0.0.0/0", "198.19.255.255/32", "2001:2::1/64", "::/0", "2001:2::/128", "::ffff:198.18.0.1/96"])
    func acceptsCIDRs(_ text: String) { #expect(LabValues.cidr(text) != nil) }

    @Test(arguments: ["198.18.0.1", "198.18.0.1/", "198.18.0.1/33", "198.18.0.1/024", "198.18.0.1/+4", "198.18.0.256/24",
                      "198.18.0/24", "198.18.0.1 /24", "2001:2::1/129", "2001:2::1%eth0/64", "fe80:::1/64", "/24", "",
                      "198.18.0.1/24/1", "198.018.0.1/24"])
    func refusesCIDRs(_ text: String) { #expect(LabValues.cidr(text) == nil) }

    @Test func hostBits() {
        #expect(LabValues.hostBitsAreZero([198, 19, 0, 0], prefix: 24))
        #expect(!LabValues.hostBitsAreZero([198, 19, 0, 1], prefix: 24))
        #expect(LabValues.hostBitsAreZero([198, 18, 0, 0], prefix: 15))
        #expect(!LabValues.hostBitsAreZero([198, 19, 0, 0], prefix: 15))
        #expect(LabValues.hostBitsAreZero([0, 0, 0, 0], prefix: 0))
        #expect(LabValues.hostBitsAreZero([1, 2, 3, 4], prefix: 32))
    }

    @Test func durations() throws {
        #expect(try LabValues.duration("0us").get() == 0)
        #expect(try LabValues.duration("20ms").get() == 20_000)
        #expect(try LabValues.duration("0.25s").get() == 250_000)
        #expect(try LabValues.duration("4294s").get() == 4_294_000_000)
        for bad in ["", "ms", "20", "20 ms", "20MS", "1.ms", ".5ms", "-1ms", "+1ms", "1e3us", "20min", "1h"] {
            #expect((try? LabValues.duration(bad).get()) == nil, "\(bad)")
        }
        #expect((try? LabValues.duration("4295s").get()) == nil)
        #expect((try? LabValues.duration("99999999999999999999s").get()) == nil)
    }

    @Test func percents() {
        #expect(LabValues.percent("10%") == 10)
        #expect(LabValues.percent("0.5") == 0.5)
        for bad in ["", "%", "10 %", "-1%", "1e2", "ten", "10%%", "nan", "inf"] {
            #expect(LabValues.percent(bad) == nil, "\(bad)")
        }
    }

    @Test func rates() throws {
        #expect(try LabValues.rate("100mbit").get() == 12_500_000)
        #expect(try LabValues.rate("100Mbit").get() == 12_500_000)
        #expect(try LabValues.rate("1mbps").get() == 1_000_000)
        #expect(try LabValues.rate("10gbit").get() == 1_250_000_000)
        #expect(try LabValues.rate("12bit").get() == 1)
        for bad in ["", "100", "100m", "100mb", "100 mbit", "100tbit", "bit", "kbit", "-1kbit", "1.kbit"] {
            #expect((try? LabValues.rate(bad).get()) == nil, "\(bad)")
        }
    }

    @Test func integersAndMACs() {
        #expect(LabValues.wholeNumber("9000") == 9000)
        #expect(LabValues.wholeNumber("0") == 0)
        for bad in ["", "010", "+1", "-1", "1.0", "1_000", "0x10", "99999999999999999999"] {
            #expect(LabValues.wholeNumber(bad) == nil, "\(bad)")
        }
        #expect(LabValues.unicastMAC("02:00:00:00:00:0A") == "02:00:00:00:00:0a")
        for bad in ["01:00:5e:00:00:01", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "02-00-00-00-00-01", "2:0:0:0:0:1", "02:00:00:00:00"] {
            #expect(LabValues.unicastMAC(bad) == nil, "\(bad)")
        }
    }
}
