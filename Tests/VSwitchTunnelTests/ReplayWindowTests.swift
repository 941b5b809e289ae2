import Testing
import VSwitchTunnel

// `#expect` cannot call a mutating method on a captured variable, hence these.
func accept(_ window: inout ReplayWindow, _ counter: UInt64) -> Bool { window.accept(counter) }

@Suite struct ReplayWindowTests {
    @Test func acceptsEachCounterOnceAndNeverZero() {
        var window = ReplayWindow()
        #expect(!window.check(0) && !accept(&window, 0))
        for counter: UInt64 in [1, 2, 5, 3, 4] {
            #expect(window.check(counter))
            #expect(accept(&window, counter))
            #expect(!window.check(counter) && !accept(&window, counter))
        }
        #expect(window.highest == 5)
    }

    @Test func windowIs1984Behind() {
        #expect(ReplayWindow.size == 1984 && ReplayWindow.size >= 1024)
        var window = ReplayWindow()
        #expect(accept(&window, 10_000))
        #expect(window.check(10_000 - 1983))
        #expect(!window.check(10_000 - 1984))
        #expect(!accept(&window, 1))
        #expect(accept(&window, 10_000 - 1983))
    }

    @Test func bigJumpsClearTheWholeRing() {
        var window = ReplayWindow()
        for counter in UInt64(1)...2000 { #expect(accept(&window, counter)) }
        #expect(accept(&window, 1_000_000))
        for counter in UInt64(1_000_000 - 1983)..<1_000_000 { #expect(window.check(counter), "\(counter)") }
        #expect(accept(&window, .max))
        #expect(!accept(&window, .max))
        #expect(accept(&window, .max - 1983))
        #expect(!window.check(.max - 1984))
    }

    /// Against a reference model (a set of seen counters) over random walks that mix jumps ahead,
    /// stragglers and duplicates, crossing word and ring boundaries.
    @Test func agreesWithAReferenceModel() {
        var generator = SeededGenerator(seed: 2048)
        for _ in 0..<20 {
            var window = ReplayWindow()
            var seen = Set<UInt64>()
            var highest: UInt64 = 0
            for _ in 0..<3000 {
                let counter: UInt64
                switch Int.random(in: 0..<10, using: &generator) {
                case 0...3: counter = highest + UInt64.random(in: 1...200, using: &generator)
                case 4: counter = highest + UInt64.random(in: 1...5000, using: &generator)
                default: counter = highest > 2500 ? highest - UInt64.random(in: 0...2500, using: &generator) : UInt64.random(in: 0...highest, using: &generator)
                }
                let expected = counter != 0 && !seen.contains(counter) && (counter > highest || highest - counter < 1984)
                #expect(window.check(counter) == expected)
                #expect(accept(&window, counter) == expected)
                if expected { seen.insert(counter); highest = max(highest, counter) }
                #expect(window.highest == highest)
            }
        }
    }
}
