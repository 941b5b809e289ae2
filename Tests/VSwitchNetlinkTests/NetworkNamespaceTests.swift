import Glibc
import Testing
@testable import VSwitchNetlink

@Suite("NetworkNamespace", .enabled(if: RootRequirement.shouldRun, "needs root; set CI to fail instead"))
struct NetworkNamespaceTests {
    @Test func createListDelete() throws {
        try RootRequirement.check()
        let name = TestNames().namespace(1)
        try NetworkNamespace.create(name)
        var deleted = false
        defer { if !deleted { try? NetworkNamespace.delete(name) } }

        #expect(NetworkNamespace.exists(name))
        #expect(NetworkNamespace.list().contains(name))
        #expect(try IP.namespaces().contains(name))
        // A fresh namespace has only a loopback, and it is down.
        let links = try IP.links(name)
        #expect(links.compactMap { $0["ifname"] as? String } == ["lo"])

        try NetworkNamespace.delete(name)
        deleted = true
        #expect(!NetworkNamespace.exists(name))
        #expect(!NetworkNamespace.list().contains(name))
        #expect(try !IP.namespaces().contains(name))
    }

    @Test func runEntersTheNamespaceOnAnotherThreadOnly() throws {
        try RootRequirement.check()
        let names = TestNames()
        try withNamespaces(names, count: 2) { namespaces in
            let mine = currentNamespaceIdentity()
            let first = try NetworkNamespace.run(in: namespaces[0]) { currentNamespaceIdentity() }
            let second = try NetworkNamespace.run(in: namespaces[1]) { currentNamespaceIdentity() }
            let again = try NetworkNamespace.run(in: namespaces[0]) { currentNamespaceIdentity() }
            #expect(first != mine)
            #expect(second != mine)
            #expect(first != second)
            #expect(first == again)
            #expect(currentNamespaceIdentity() == mine)
            #expect(try NetworkNamespace.run(in: nil) { currentNamespaceIdentity() } == mine)
        }
    }

    @Test func runPassesErrorsThrough() throws {
        try RootRequirement.check()
        struct Marker: Error, Equatable {}
        try withNamespaces(TestNames(), count: 1) { namespaces in
            #expect(throws: Marker()) { try NetworkNamespace.run(in: namespaces[0]) { throw Marker() } }
        }
    }

    @Test func errors() throws {
        try RootRequirement.check()
        let names = TestNames()
        let missing = names.namespace(9)
        expectError("cannot enter namespace \(missing): No such namespace") {
            _ = try NetworkNamespace.run(in: missing) { 1 }
        }
        expectError("cannot delete namespace \(missing): No such namespace") {
            try NetworkNamespace.delete(missing)
        }
        expectError("cannot create namespace \"a/b\": invalid namespace name") {
            try NetworkNamespace.create("a/b")
        }
        try withNamespaces(names, count: 1) { namespaces in
            expectError("cannot create namespace \(namespaces[0]): File exists") {
                try NetworkNamespace.create(namespaces[0])
            }
        }
    }
}
