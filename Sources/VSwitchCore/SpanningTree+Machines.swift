// The RSTP state machines of IEEE 802.1D-2004 17.21-17.29, one function per machine. Each takes at
// most one transition per call and says whether it did; `run()` calls them all until none moves.
// Entering a state runs its actions (`enter...`). Names follow the standard.

extension SpanningTree {
    enum InfoIs { case disabled, mine, aged, received }
    enum RcvdInfo { case superiorDesignated, repeatedDesignated, inferiorDesignated, inferiorRootAlternate, other }
    enum PRX { case discard, receive }
    enum PPM { case checkingRSTP, selectingSTP, sensing }
    enum BDM { case edge, notEdge }
    enum PTX { case transmitInit, idle }
    enum PIM { case disabled, aged, update, current, receive }
    enum PRS { case initBridge, roleSelection }
    enum PRT {
        case initPort, disablePort, disabledPort
        case rootPort, designatedPort, blockPort, alternatePort, backupPort
    }
    enum PST { case discarding, learning, forwarding }
    enum TCM { case inactive, learning, active }

    /// One port's variables (17.19) and machine states.
    final class PortData {
        let number: PortNumber
        var parameters: PortParameters
        var id: UInt16
        var adminEdge: Bool { parameters.adminEdge || !parameters.sendsBPDUs }

        var prx = PRX.discard, ppm = PPM.checkingRSTP, bdm = BDM.notEdge, ptx = PTX.transmitInit
        var pim = PIM.disabled, prt = PRT.initPort, pst = PST.discarding, tcm = TCM.inactive

        var portEnabled = false
        var agree = false, agreed = false, disputed = false, fdbFlush = false
        var forward = false, forwarding = false, learn = false, learning = false
        var mcheck = false, newInfo = false, operEdge = false
        var proposed = false, proposing = false
        var rcvdBPDU = false, rcvdMsg = false, rcvdRSTP = false, rcvdSTP = false
        var rcvdTc = false, rcvdTcAck = false, rcvdTcn = false
        var reRoot = false, reselect = false, selected = false, sendRSTP = false
        var sync = false, synced = false, tcAck = false, tcProp = false, updtInfo = false
        var infoIs = InfoIs.disabled
        var rcvdInfo = RcvdInfo.other
        var role = Role.disabled, selectedRole = Role.disabled
        var portPriority: PriorityVector
        var designatedPriority: PriorityVector
        var msgPriority: PriorityVector
        var portTimes: Times, designatedTimes: Times, msgTimes: Times
        var txCount: UInt16 = 0
        var edgeDelayWhile: UInt16 = 0, fdWhile: UInt16 = 0, helloWhen: UInt16 = 0, mdelayWhile: UInt16 = 0
        var rbWhile: UInt16 = 0, rcvdInfoWhile: UInt16 = 0, rrWhile: UInt16 = 0, tcWhile: UInt16 = 0
        /// The BPDU being received (valid while rcvdBPDU or rcvdMsg).
        var bpdu: BPDU?
        var receivedBPDUs: UInt64 = 0, sentBPDUs: UInt64 = 0, invalidBPDUs: UInt64 = 0

        init(number: PortNumber, parameters: PortParameters, times: Times) {
            self.number = number
            self.parameters = parameters
            id = SpanningTree.portID(number: number, priority: parameters.priority)
            let worst = PriorityVector(rootBridge: .max, rootPathCost: .max, designatedBridge: .max, designatedPort: .max, bridgePort: .max)
            portPriority = worst; designatedPriority = worst; msgPriority = worst
            portTimes = times; designatedTimes = times; msgTimes = times
        }
    }

    // MARK: - Derived values (17.20)

    func fwdDelay(_ p: PortData) -> UInt16 { p.designatedTimes.forwardDelay }
    func helloTime(_ p: PortData) -> UInt16 { max(1, p.designatedTimes.helloTime) }
    func maxAge(_ p: PortData) -> UInt16 { p.designatedTimes.maxAge }
    func forwardDelay(_ p: PortData) -> UInt16 { p.sendRSTP ? helloTime(p) : fwdDelay(p) }
    func edgeDelay(_ p: PortData) -> UInt16 { p.parameters.pointToPoint ? Self.migrateTime : maxAge(p) }

    func allSynced(_ p: PortData) -> Bool {
        ports.allSatisfy { q in q.selected && q.role == q.selectedRole && !q.updtInfo && (q.synced || q.role == .root) }
    }

    func reRooted(_ p: PortData) -> Bool { ports.allSatisfy { $0 === p || $0.rrWhile == 0 } }

    // MARK: - Running

    /// BEGIN for one port: every machine to its initial state.
    func begin(_ p: PortData) {
        p.portPriority = p.designatedPriority
        enterPRXDiscard(p)
        enterPPMCheckingRSTP(p)
        p.bdm = p.adminEdge ? .edge : .notEdge
        p.operEdge = p.adminEdge
        enterPTXInit(p)
        enterPIMDisabled(p)
        enterPRTInitPort(p)
        enterPSTDiscarding(p)
        enterTCMInactive(p)
    }

    /// Runs every machine until none takes a transition.
    func run() {
        for _ in 0..<1000 {
            var moved = false
            for p in ports {
                if prx(p) { moved = true }
                if ppm(p) { moved = true }
                if bdm(p) { moved = true }
                if pim(p) { moved = true }
            }
            if prs() { moved = true }
            for p in ports {
                if prt(p) { moved = true }
                if pst(p) { moved = true }
                if tcm(p) { moved = true }
                if ptx(p) { moved = true }
            }
            if !moved { return }
        }
    }

    // MARK: - Port Receive (17.23)

    func prx(_ p: PortData) -> Bool {
        if (p.rcvdBPDU || p.edgeDelayWhile != Self.migrateTime) && !p.portEnabled {
            enterPRXDiscard(p); return true
        }
        switch p.prx {
        case .discard:
            if p.rcvdBPDU && p.portEnabled { enterPRXReceive(p); return true }
        case .receive:
            if p.rcvdBPDU && p.portEnabled && !p.rcvdMsg { enterPRXReceive(p); return true }
        }
        return false
    }

    func enterPRXDiscard(_ p: PortData) {
        p.prx = .discard
        p.rcvdBPDU = false; p.rcvdRSTP = false; p.rcvdSTP = false
        p.rcvdMsg = false
        p.edgeDelayWhile = Self.migrateTime
    }

    func enterPRXReceive(_ p: PortData) {
        p.prx = .receive
        // updtBPDUVersion()
        if let b = p.bpdu {
            if b.kind == .rst { p.rcvdRSTP = true } else { p.rcvdSTP = true }
        }
        p.operEdge = false
        p.rcvdBPDU = false
        p.rcvdMsg = true
        p.edgeDelayWhile = Self.migrateTime
    }

    // MARK: - Port Protocol Migration (17.24)

    func ppm(_ p: PortData) -> Bool {
        switch p.ppm {
        case .checkingRSTP:
            if p.mdelayWhile == 0 { enterPPMSensing(p); return true }
            if p.mdelayWhile != Self.migrateTime && !p.portEnabled { enterPPMCheckingRSTP(p); return true }
        case .selectingSTP:
            if p.mdelayWhile == 0 || !p.portEnabled || p.mcheck { enterPPMSensing(p); return true }
        case .sensing:
            if !p.portEnabled || p.mcheck || (rstpVersion && !p.sendRSTP && p.rcvdRSTP) { enterPPMCheckingRSTP(p); return true }
            if p.sendRSTP && p.rcvdSTP { enterPPMSelectingSTP(p); return true }
        }
        return false
    }

    func enterPPMCheckingRSTP(_ p: PortData) {
        p.ppm = .checkingRSTP
        p.mcheck = false
        p.sendRSTP = rstpVersion
        p.mdelayWhile = Self.migrateTime
    }

    func enterPPMSelectingSTP(_ p: PortData) {
        p.ppm = .selectingSTP
        p.sendRSTP = false
        p.mdelayWhile = Self.migrateTime
    }

    func enterPPMSensing(_ p: PortData) {
        p.ppm = .sensing
        p.rcvdRSTP = false; p.rcvdSTP = false
    }

    // MARK: - Bridge Detection (17.25)

    func bdm(_ p: PortData) -> Bool {
        switch p.bdm {
        case .edge:
            if (!p.portEnabled && !p.adminEdge) || !p.operEdge { p.bdm = .notEdge; p.operEdge = false; return true }
        case .notEdge:
            if (!p.portEnabled && p.adminEdge) || (p.edgeDelayWhile == 0 && p.parameters.autoEdge && p.sendRSTP && p.proposing) {
                p.bdm = .edge; p.operEdge = true; return true
            }
        }
        return false
    }

    // MARK: - Port Transmit (17.26)

    func ptx(_ p: PortData) -> Bool {
        switch p.ptx {
        case .transmitInit:
            enterPTXIdle(p); return true
        case .idle:
            guard p.selected && !p.updtInfo && p.portEnabled && p.parameters.sendsBPDUs else { return false }
            if p.helloWhen == 0 {
                // TRANSMIT_PERIODIC
                p.newInfo = p.newInfo || p.role == .designated || (p.role == .root && p.tcWhile != 0)
                enterPTXIdle(p); return true
            }
            guard p.newInfo && p.txCount < parameters.transmitHoldCount else { return false }
            if p.sendRSTP {
                p.newInfo = false; transmitRSTP(p); p.txCount += 1; p.tcAck = false
                enterPTXIdle(p); return true
            }
            if p.role == .root {
                p.newInfo = false; transmitTCN(p); p.txCount += 1
                enterPTXIdle(p); return true
            }
            if p.role == .designated {
                p.newInfo = false; transmitConfig(p); p.txCount += 1; p.tcAck = false
                enterPTXIdle(p); return true
            }
        }
        return false
    }

    func enterPTXInit(_ p: PortData) {
        p.ptx = .transmitInit
        p.newInfo = true
        p.txCount = 0
    }

    func enterPTXIdle(_ p: PortData) {
        p.ptx = .idle
        p.helloWhen = helloTime(p)
    }

    func transmitConfig(_ p: PortData) {
        var flags: UInt8 = 0
        if p.tcWhile != 0 { flags |= Flag.topologyChange }
        if p.tcAck { flags |= Flag.topologyChangeAck }
        send(BPDU(kind: .config, flags: flags, vector: p.designatedPriority, times: p.designatedTimes), on: p)
    }

    func transmitRSTP(_ p: PortData) {
        var flags: UInt8 = 0
        if p.tcWhile != 0 { flags |= Flag.topologyChange }
        if p.proposing { flags |= Flag.proposal }
        let role: UInt8 = switch p.role {
        case .root: 2
        case .designated: 3
        case .alternate, .backup: 1
        case .disabled: 0
        }
        flags |= role << Flag.roleShift
        if p.learning { flags |= Flag.learning }
        if p.forwarding { flags |= Flag.forwarding }
        if p.agree { flags |= Flag.agreement }
        send(BPDU(kind: .rst, flags: flags, vector: p.designatedPriority, times: p.designatedTimes), on: p)
    }

    func transmitTCN(_ p: PortData) {
        let zero = PriorityVector(rootBridge: 0, rootPathCost: 0, designatedBridge: 0, designatedPort: 0, bridgePort: 0)
        send(BPDU(kind: .tcn, flags: 0, vector: zero, times: Times(messageAge: 0, maxAge: 0, helloTime: 0, forwardDelay: 0)), on: p)
    }

    func send(_ bpdu: BPDU, on p: PortData) {
        p.sentBPDUs &+= 1
        transmits.append((p.number, Self.encode(bpdu, source: address)))
    }

    // MARK: - Port Information (17.27)

    func pim(_ p: PortData) -> Bool {
        if !p.portEnabled && p.infoIs != .disabled { enterPIMDisabled(p); return true }
        switch p.pim {
        case .disabled:
            if p.portEnabled { enterPIMAged(p); return true }
            if p.rcvdMsg { enterPIMDisabled(p); return true }
        case .aged:
            if p.selected && p.updtInfo { enterPIMUpdate(p); return true }
        case .update:
            p.pim = .current; return true
        case .current:
            if p.selected && p.updtInfo { enterPIMUpdate(p); return true }
            if p.infoIs == .received && p.rcvdInfoWhile == 0 && !p.updtInfo && !p.rcvdMsg { enterPIMAged(p); return true }
            if p.rcvdMsg && !p.updtInfo { enterPIMReceive(p); return true }
        case .receive:
            p.pim = .current; return true
        }
        return false
    }

    func enterPIMDisabled(_ p: PortData) {
        p.pim = .disabled
        p.rcvdMsg = false
        p.proposing = false; p.proposed = false; p.agree = false; p.agreed = false
        p.rcvdInfoWhile = 0
        p.infoIs = .disabled
        p.reselect = true
        p.selected = false
    }

    func enterPIMAged(_ p: PortData) {
        p.pim = .aged
        p.infoIs = .aged
        p.reselect = true
        p.selected = false
    }

    func enterPIMUpdate(_ p: PortData) {
        p.pim = .update
        p.proposing = false; p.proposed = false
        p.agreed = p.agreed && betterOrSameInfo(p, .mine)
        p.synced = p.synced && p.agreed
        p.portPriority = p.designatedPriority
        p.portTimes = p.designatedTimes
        p.updtInfo = false
        p.infoIs = .mine
        p.newInfo = true
    }

    /// RECEIVE and the state rcvInfo() picks, each of which goes on to CURRENT.
    func enterPIMReceive(_ p: PortData) {
        p.pim = .receive
        p.rcvdInfo = rcvInfo(p)
        switch p.rcvdInfo {
        case .superiorDesignated:
            p.agreed = false; p.proposing = false
            recordProposal(p)
            setTcFlags(p)
            p.agree = p.agree && betterOrSameInfo(p, .received)
            p.portPriority = p.msgPriority  // recordPriority()
            p.portTimes = p.msgTimes  // recordTimes()
            updtRcvdInfoWhile(p)
            p.infoIs = .received
            p.reselect = true
            p.selected = false
        case .repeatedDesignated:
            recordProposal(p)
            setTcFlags(p)
            updtRcvdInfoWhile(p)
        case .inferiorDesignated:
            // recordDispute()
            if let b = p.bpdu, b.kind == .rst, b.flags & Flag.learning != 0 { p.disputed = true; p.agreed = false }
        case .inferiorRootAlternate:
            recordAgreement(p)
            setTcFlags(p)
        case .other:
            break
        }
        p.rcvdMsg = false
    }

    /// 17.21.8: how the received message compares with what the port holds.
    func rcvInfo(_ p: PortData) -> RcvdInfo {
        guard let b = p.bpdu else { return .other }
        var v = b.vector
        v.bridgePort = p.id
        p.msgPriority = v
        p.msgTimes = b.times
        switch Self.conveyedRole(b) {
        case .designated:
            if v == p.portPriority { return b.times != p.portTimes ? .superiorDesignated : .repeatedDesignated }
            return v.isSuperior(to: p.portPriority) ? .superiorDesignated : .inferiorDesignated
        case .root, .alternateOrBackup:
            return p.portPriority < v || p.portPriority == v ? .inferiorRootAlternate : .other
        case .unknown:
            return .other
        }
    }

    func betterOrSameInfo(_ p: PortData, _ newInfoIs: InfoIs) -> Bool {
        (newInfoIs == .received && p.infoIs == .received && !(p.portPriority < p.msgPriority))
            || (newInfoIs == .mine && p.infoIs == .mine && !(p.portPriority < p.designatedPriority))
    }

    func recordProposal(_ p: PortData) {
        if let b = p.bpdu, b.kind == .rst, Self.conveyedRole(b) == .designated, b.flags & Flag.proposal != 0 { p.proposed = true }
    }

    func recordAgreement(_ p: PortData) {
        if rstpVersion, p.parameters.pointToPoint, let b = p.bpdu, b.kind == .rst, b.flags & Flag.agreement != 0 {
            p.agreed = true; p.proposing = false
        } else {
            p.agreed = false
        }
    }

    func setTcFlags(_ p: PortData) {
        guard let b = p.bpdu else { return }
        switch b.kind {
        case .tcn: p.rcvdTcn = true
        case .config, .rst:
            if b.flags & Flag.topologyChange != 0 { p.rcvdTc = true }
            if b.kind == .config && b.flags & Flag.topologyChangeAck != 0 { p.rcvdTcAck = true }
        }
    }

    func updtRcvdInfoWhile(_ p: PortData) {
        p.rcvdInfoWhile = p.portTimes.messageAge + 1 <= p.portTimes.maxAge ? 3 * max(1, p.portTimes.helloTime) : 0
    }

    // MARK: - Port Role Selection (17.28)

    func prs() -> Bool {
        switch prsState {
        case .initBridge:
            for p in ports { p.selectedRole = .disabled }  // updtRoleDisabledTree()
            enterRoleSelection(); return true
        case .roleSelection:
            if ports.contains(where: \.reselect) { enterRoleSelection(); return true }
        }
        return false
    }

    func enterRoleSelection() {
        prsState = .roleSelection
        for p in ports { p.reselect = false }  // clearReselectTree()
        updtRolesTree()
        // setSelectedTree()
        if !ports.contains(where: \.reselect) { for p in ports { p.selected = true } }
    }

    /// 17.21.25: the root priority vector, the root port, and every port's role.
    func updtRolesTree() {
        let own = bridgeID
        var best = PriorityVector(rootBridge: own, rootPathCost: 0, designatedBridge: own, designatedPort: 0, bridgePort: 0)
        var rootPort: PortData?
        for p in ports where p.infoIs == .received {
            // Information this bridge sent itself (through a hub or a reflecting tunnel) does not
            // make a root path.
            guard p.portPriority.designatedBridge & Self.addressMask != address else { continue }
            var v = p.portPriority
            let (cost, overflow) = v.rootPathCost.addingReportingOverflow(p.parameters.pathCost)
            v.rootPathCost = overflow ? .max : cost
            if v < best { best = v; rootPort = p }
        }
        rootPriority = best
        rootPortID = rootPort?.id ?? 0
        if let r = rootPort {
            rootTimes = r.portTimes
            rootTimes.messageAge = r.portTimes.messageAge &+ 1
        } else {
            rootTimes = bridgeTimes
        }
        for p in ports {
            p.designatedPriority = PriorityVector(rootBridge: best.rootBridge, rootPathCost: best.rootPathCost,
                                                  designatedBridge: own, designatedPort: p.id, bridgePort: p.id)
            p.designatedTimes = rootTimes
            p.designatedTimes.helloTime = parameters.helloTime
            switch p.infoIs {
            case .disabled:
                p.selectedRole = .disabled
            case .aged:
                p.selectedRole = .designated
                p.updtInfo = true
            case .mine:
                p.selectedRole = .designated
                if p.portPriority != p.designatedPriority || p.portTimes != p.designatedTimes { p.updtInfo = true }
            case .received:
                if p === rootPort {
                    p.selectedRole = .root
                    p.updtInfo = false
                } else if !(p.designatedPriority < p.portPriority) {
                    // The segment has a better designated port than this one would be.
                    p.selectedRole = p.portPriority.designatedBridge & Self.addressMask != address ? .alternate : .backup
                    p.updtInfo = false
                } else {
                    p.selectedRole = .designated
                    p.updtInfo = true
                }
            }
        }
    }

    // MARK: - Port Role Transitions (17.29)

    func prt(_ p: PortData) -> Bool {
        guard p.selected && !p.updtInfo else { return false }
        if p.role != p.selectedRole {
            switch p.selectedRole {
            case .disabled: enterDisablePort(p)
            case .root: enterRootPort(p)
            case .designated: enterDesignatedPort(p)
            case .alternate, .backup: enterBlockPort(p)
            }
            return true
        }
        switch p.prt {
        case .initPort:
            enterDisablePort(p); return true
        case .disablePort:
            if !p.learning && !p.forwarding { enterDisabledPort(p); return true }
        case .disabledPort:
            if p.fdWhile != maxAge(p) || p.sync || p.reRoot || !p.synced { enterDisabledPort(p); return true }
        case .rootPort:
            return rootPortTransition(p)
        case .designatedPort:
            return designatedPortTransition(p)
        case .blockPort:
            if !p.learning && !p.forwarding { enterAlternatePort(p); return true }
        case .alternatePort, .backupPort:
            return alternatePortTransition(p)
        }
        return false
    }

    func enterPRTInitPort(_ p: PortData) {
        p.prt = .initPort
        p.role = .disabled
        p.learn = false; p.forward = false
        p.synced = false
        p.sync = true; p.reRoot = true
        p.rrWhile = fwdDelay(p)
        p.fdWhile = maxAge(p)
        p.rbWhile = 0
    }

    /// DISABLE_PORT and BLOCK_PORT (the same actions): take the selected role, stop learning and
    /// forwarding.
    func enterStoppingPort(_ p: PortData, _ state: PRT) {
        p.prt = state
        p.role = p.selectedRole
        p.learn = false; p.forward = false
    }

    /// DISABLED_PORT (`fdWhile` = MaxAge) and ALTERNATE_PORT (`fdWhile` = forwardDelay): stopped,
    /// synced, not re-rooting.
    func enterStoppedPort(_ p: PortData, _ state: PRT, fdWhile: UInt16) {
        p.prt = state
        p.fdWhile = fdWhile
        p.synced = true
        p.rrWhile = 0
        p.sync = false; p.reRoot = false
    }

    func enterDisablePort(_ p: PortData) { enterStoppingPort(p, .disablePort) }
    func enterDisabledPort(_ p: PortData) { enterStoppedPort(p, .disabledPort, fdWhile: maxAge(p)) }

    func enterRootPort(_ p: PortData) {
        p.prt = .rootPort
        p.role = .root
        p.rrWhile = fwdDelay(p)
    }

    func rootPortTransition(_ p: PortData) -> Bool {
        if p.proposed && !p.agree {
            // ROOT_PROPOSED
            setSyncTree(); p.proposed = false
            enterRootPort(p); return true
        }
        if (allSynced(p) && !p.agree) || (p.proposed && p.agree) {
            // ROOT_AGREED
            p.proposed = false; p.sync = false; p.agree = true; p.newInfo = true
            enterRootPort(p); return true
        }
        if !p.forward && !p.reRoot {
            // REROOT
            for q in ports { q.reRoot = true }  // setReRootTree()
            enterRootPort(p); return true
        }
        if p.rrWhile != fwdDelay(p) { enterRootPort(p); return true }
        if p.reRoot && p.forward {
            // REROOTED
            p.reRoot = false
            enterRootPort(p); return true
        }
        let ready = p.fdWhile == 0 || (reRooted(p) && p.rbWhile == 0 && rstpVersion)
        if ready && !p.learn {
            // ROOT_LEARN
            p.fdWhile = forwardDelay(p); p.learn = true
            enterRootPort(p); return true
        }
        if ready && p.learn && !p.forward {
            // ROOT_FORWARD
            p.fdWhile = 0; p.forward = true
            enterRootPort(p); return true
        }
        return false
    }

    func enterDesignatedPort(_ p: PortData) {
        p.prt = .designatedPort
        p.role = .designated
    }

    func designatedPortTransition(_ p: PortData) -> Bool {
        if !p.forward && !p.agreed && !p.proposing && !p.operEdge {
            // DESIGNATED_PROPOSE
            p.proposing = true; p.edgeDelayWhile = edgeDelay(p); p.newInfo = true
            enterDesignatedPort(p); return true
        }
        if (!p.learning && !p.forwarding && !p.synced) || (p.agreed && !p.synced) || (p.operEdge && !p.synced) || (p.sync && p.synced) {
            // DESIGNATED_SYNCED
            p.rrWhile = 0; p.synced = true; p.sync = false
            enterDesignatedPort(p); return true
        }
        if p.rrWhile == 0 && p.reRoot {
            // DESIGNATED_RETIRED
            p.reRoot = false
            enterDesignatedPort(p); return true
        }
        if ((p.sync && !p.synced) || (p.reRoot && p.rrWhile != 0) || p.disputed) && !p.operEdge && (p.learn || p.forward) {
            // DESIGNATED_DISCARD
            p.learn = false; p.forward = false; p.disputed = false; p.fdWhile = forwardDelay(p)
            enterDesignatedPort(p); return true
        }
        let ready = (p.fdWhile == 0 || p.agreed || p.operEdge) && (p.rrWhile == 0 || !p.reRoot) && !p.sync
        if ready && !p.learn {
            // DESIGNATED_LEARN
            p.learn = true; p.fdWhile = forwardDelay(p)
            enterDesignatedPort(p); return true
        }
        if ready && p.learn && !p.forward {
            // DESIGNATED_FORWARD
            p.forward = true; p.fdWhile = 0; p.agreed = p.sendRSTP
            enterDesignatedPort(p); return true
        }
        return false
    }

    func enterBlockPort(_ p: PortData) { enterStoppingPort(p, .blockPort) }
    func enterAlternatePort(_ p: PortData) { enterStoppedPort(p, .alternatePort, fdWhile: forwardDelay(p)) }

    func alternatePortTransition(_ p: PortData) -> Bool {
        if p.proposed && !p.agree {
            // ALTERNATE_PROPOSED
            setSyncTree(); p.proposed = false
            enterAlternatePort(p); return true
        }
        if (allSynced(p) && !p.agree) || (p.proposed && p.agree) {
            // ALTERNATE_AGREED
            p.proposed = false; p.agree = true; p.newInfo = true
            enterAlternatePort(p); return true
        }
        if p.fdWhile != forwardDelay(p) || p.sync || p.reRoot || !p.synced { enterAlternatePort(p); return true }
        if p.rbWhile != 2 * helloTime(p) && p.role == .backup {
            // BACKUP_PORT
            p.rbWhile = 2 * helloTime(p)
            enterAlternatePort(p); return true
        }
        return false
    }

    func setSyncTree() { for q in ports { q.sync = true } }

    // MARK: - Port State Transition (17.30)

    func pst(_ p: PortData) -> Bool {
        switch p.pst {
        case .discarding:
            if p.learn { p.pst = .learning; p.learning = true; return true }
        case .learning:
            if p.forward { p.pst = .forwarding; p.forwarding = true; return true }
            if !p.learn { enterPSTDiscarding(p); return true }
        case .forwarding:
            if !p.forward { enterPSTDiscarding(p); return true }
        }
        return false
    }

    func enterPSTDiscarding(_ p: PortData) {
        p.pst = .discarding
        p.learning = false
        p.forwarding = false
    }

    // MARK: - Topology Change (17.31)

    func tcm(_ p: PortData) -> Bool {
        let rootOrDesignated = p.role == .root || p.role == .designated
        switch p.tcm {
        case .inactive:
            if p.learn && !p.fdbFlush { enterTCMLearning(p); return true }
        case .learning:
            if rootOrDesignated && p.forward && !p.operEdge {
                // DETECTED
                newTcWhile(p); setTcPropTree(except: p); p.newInfo = true
                noteTopologyChange()
                p.tcm = .active; return true
            }
            if !rootOrDesignated && !(p.learn || p.learning) && !(p.rcvdTc || p.rcvdTcn || p.rcvdTcAck || p.tcProp) {
                enterTCMInactive(p); return true
            }
            if p.rcvdTc || p.rcvdTcn || p.rcvdTcAck || p.tcProp { enterTCMLearning(p); return true }
        case .active:
            if !rootOrDesignated || p.operEdge { enterTCMLearning(p); return true }
            if p.rcvdTcn {
                // NOTIFIED_TCN, then NOTIFIED_TC
                newTcWhile(p)
                notifiedTc(p); return true
            }
            if p.rcvdTc { notifiedTc(p); return true }
            if p.tcProp && !p.operEdge {
                // PROPAGATING
                newTcWhile(p); flush(p); p.tcProp = false
                return true
            }
            if p.rcvdTcAck {
                // ACKNOWLEDGED
                p.tcWhile = 0; p.rcvdTcAck = false
                return true
            }
        }
        return false
    }

    func notifiedTc(_ p: PortData) {
        p.rcvdTcn = false; p.rcvdTc = false
        if p.role == .designated { p.tcAck = true }
        setTcPropTree(except: p)
        noteTopologyChange()
    }

    func enterTCMInactive(_ p: PortData) {
        p.tcm = .inactive
        flush(p)
        p.tcWhile = 0
        p.tcAck = false
    }

    func enterTCMLearning(_ p: PortData) {
        p.tcm = .learning
        p.rcvdTc = false; p.rcvdTcn = false; p.rcvdTcAck = false
        p.tcProp = false
    }

    func newTcWhile(_ p: PortData) {
        guard p.tcWhile == 0 else { return }
        if p.sendRSTP {
            p.tcWhile = helloTime(p) + 1
            p.newInfo = true
        } else {
            p.tcWhile = rootTimes.maxAge + rootTimes.forwardDelay
        }
    }

    func setTcPropTree(except p: PortData) { for q in ports where q !== p { q.tcProp = true } }

    /// fdbFlush: the switch removes what the port learned (at once, so the flag never stays set).
    func flush(_ p: PortData) {
        p.fdbFlush = false
        if !flushes.contains(p.number) { flushes.append(p.number) }
    }

    func noteTopologyChange() {
        if lastTopologyChange != seconds { topologyChanges &+= 1 }
        lastTopologyChange = seconds
    }
}
