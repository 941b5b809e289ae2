// VSwitchTunnel: wire formats and security of the UDP tunnel port (VXLAN, secure mode).
