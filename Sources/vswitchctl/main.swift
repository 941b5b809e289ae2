// vswitchctl: drives vswitchd over its control socket. A thin executable: each command turns its
// arguments into one JSON-RPC call and renders the result (a table, a tree, or --json).
import ArgumentParser
import Foundation
import VSwitchControl

VSwitchCtl.run()
