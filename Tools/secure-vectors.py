#!/usr/bin/env python3
# secure-vectors.py: an independent reference implementation, in Python, of the secure tunnel
# wire format version 2 (Docs/secure-wire-format.md): the handshake (Noise_IKpsk2_25519_
# ChaChaPoly_SHA256 with vswitch's prologue, framing, mac1/mac2), cookie replies and data
# datagrams. It prints test vectors for the Swift implementation as JSON.
#
# Every input is fixed: keys, ephemerals, nonces and secrets are SHA-256 of a label string
# ("vswitch secure v2 vectors: <case>/<what>"), so the output is reproducible byte for byte.
# The Noise part is cross-checked against the independent `noiseprotocol` package (message
# bytes, handshake hash and split keys); the script aborts if any check fails.
#
# Run, from the repository root:
#   pip install noiseprotocol cryptography
#   Tools/secure-vectors.py > Tests/VSwitchTunnelTests/Fixtures/secure-v2-vectors.json

import calendar
import ipaddress
import json
import struct
import sys
import warnings

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PROTOCOL = b"Noise_IKpsk2_25519_ChaChaPoly_SHA256"
PROLOGUE = b"vswitch secure v2"  # followed by one byte, the data cipher
INITIATION, RESPONSE, COOKIE_REPLY, DATA = 1, 2, 3, 4


def fail(what):
    sys.exit(f"secure-vectors.py: cross-check failed: {what}")


def check(condition, what):
    if not condition:
        fail(what)


# ---- Primitives (the doc's "Notation" table) -------------------------------------------------

def HASH(*parts):
    h = hashes.Hash(hashes.SHA256())
    for p in parts:
        h.update(p)
    return h.finalize()


def HMAC(key, *parts):
    h = hmac.HMAC(key, hashes.SHA256())
    for p in parts:
        h.update(p)
    return h.finalize()


def MAC(key, *parts):
    return HMAC(key, *parts)[:16]


def KDF(n, ck, x):
    """KDFn: t0 = HMAC(ck, x), t1 = HMAC(t0, 0x01), t(i) = HMAC(t0, t(i-1) ‖ i)."""
    t0, t, out = HMAC(ck, x), b"", []
    for i in range(1, n + 1):
        t = HMAC(t0, t, bytes([i]))
        out.append(t)
    # The table's KDF is RFC 5869 HKDF with empty info: check against cryptography's own HKDF.
    check(b"".join(out) == HKDF(hashes.SHA256(), 32 * n, ck, b"").derive(x), "KDF vs HKDF")
    return out


def DH(private, public):
    return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))


def PUB(private):
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def AEAD(key, n, plaintext, ad):
    """The handshake AEAD: ChaCha20-Poly1305, nonce 4 zero bytes ‖ LE64(n)."""
    return ChaCha20Poly1305(key).encrypt(bytes(4) + struct.pack("<Q", n), plaintext, ad)


def label(case, what):
    return HASH(f"vswitch secure v2 vectors: {case}/{what}".encode())


def private_key(case, what):
    """32 bytes from a label, clamped as RFC 7748 (and `wg genkey`) do."""
    k = bytearray(label(case, what))
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    return bytes(k)


def header(msg_type, cipher):
    return bytes([0xA2, msg_type, 0, cipher])


def tai64n(utc, nanoseconds):
    """TAI64N: big-endian seconds since 1970 + 2^62 + 10, then big-endian nanoseconds."""
    seconds = calendar.timegm(utc)
    return struct.pack(">QI", seconds + 2**62 + 10, nanoseconds)


# ---- The handshake (the doc's "The handshake") ------------------------------------------------

def handshake(v):
    cc, psk = v["cipher"], v["psk"]
    si, sr, ei, er = v["si"], v["sr"], v["ei"], v["er"]
    Si, Sr, Ei, Er = PUB(si), PUB(sr), PUB(ei), PUB(er)

    C = HASH(PROTOCOL)                        # 36 bytes > HASHLEN, so hashed (Noise 5.2)
    H = HASH(C, PROLOGUE, bytes([cc]))        # prologue
    H = HASH(H, Sr)                           # <- s

    # Initiation (initiator)
    H = HASH(H, Ei); (C,) = KDF(1, C, Ei)                        # e (psk mode)
    C, k = KDF(2, C, DH(ei, Sr))                                 # es
    static = AEAD(k, 0, Si, H); H = HASH(H, static)              # s
    C, k = KDF(2, C, DH(si, Sr))                                 # ss
    payload = AEAD(k, 0, v["timestamp"] + v["inc_i"], H); H = HASH(H, payload)
    init = header(INITIATION, cc) + struct.pack(">I", v["i_index"]) + Ei + static + payload
    init += MAC(HASH(b"mac1----", Sr), init)  # mac1: the receiver's (responder's) key
    init += bytes(16)                         # mac2: no cookie
    assert len(init) == 156

    # Response (responder)
    H = HASH(H, Er); (C,) = KDF(1, C, Er)                        # e (psk mode)
    (C,) = KDF(1, C, DH(er, Ei))                                 # ee
    (C,) = KDF(1, C, DH(er, Si))                                 # se
    C, t, k = KDF(3, C, psk); H = HASH(H, t)                     # psk
    payload = AEAD(k, 0, v["inc_r"], H); H = HASH(H, payload)
    resp = header(RESPONSE, cc) + struct.pack(">II", v["r_index"], v["i_index"]) + Er + payload
    resp += MAC(HASH(b"mac1----", Si), resp)  # mac1: the receiver's (initiator's) key
    resp += bytes(16)
    assert len(resp) == 100

    T1, T2 = KDF(2, C, b"")                   # initiator sends with T1, receives with T2
    return init, resp, T1, T2, H


def noise_cross_check(v, init, resp, T1, T2, H):
    """Run the same handshake through the `noiseprotocol` package and compare everything."""
    from noise.connection import Keypair, NoiseConnection
    warnings.simplefilter("ignore")  # it warns that fixed ephemerals are for testing only

    def party(initiator, static, ephemeral, remote_static=None):
        n = NoiseConnection.from_name(PROTOCOL)
        n.set_as_initiator() if initiator else n.set_as_responder()
        n.set_prologue(PROLOGUE + bytes([v["cipher"]]))
        n.set_psks(psk=v["psk"])
        n.set_keypair_from_private_bytes(Keypair.STATIC, static)
        n.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
        if remote_static:
            n.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote_static)
        n.start_handshake()
        return n

    name = v["name"]
    i = party(True, v["si"], v["ei"], PUB(v["sr"]))
    r = party(False, v["sr"], v["er"])
    m1 = bytes(i.write_message(v["timestamp"] + v["inc_i"]))
    check(m1 == init[8:124], f"{name}: noiseprotocol initiation != bytes 8..<124")
    check(bytes(r.read_message(m1)) == v["timestamp"] + v["inc_i"], f"{name}: initiation payload")
    m2 = bytes(r.write_message(v["inc_r"]))
    check(m2 == resp[12:68], f"{name}: noiseprotocol response != bytes 12..<68")
    check(bytes(i.read_message(m2)) == v["inc_r"], f"{name}: response payload")
    check(i.handshake_finished and r.handshake_finished, f"{name}: handshake not finished")
    check(i.get_handshake_hash() == H == r.get_handshake_hash(), f"{name}: handshake hash")
    ni, nr = i.noise_protocol, r.noise_protocol
    check(bytes(ni.cipher_state_encrypt.k) == T1 == bytes(nr.cipher_state_decrypt.k), f"{name}: T1")
    check(bytes(ni.cipher_state_decrypt.k) == T2 == bytes(nr.cipher_state_encrypt.k), f"{name}: T2")
    # And by use: Noise transport message 0 equals our own ChaCha20-Poly1305 under T1 / T2.
    probe = b"vswitch transport probe"
    check(i.encrypt(probe) == AEAD(T1, 0, probe, b""), f"{name}: transport under T1")
    check(r.encrypt(probe) == AEAD(T2, 0, probe, b""), f"{name}: transport under T2")


# ---- Data datagrams, cookies ------------------------------------------------------------------

def seal_data(cipher, key, receiver, counter, plaintext):
    """Type 4: nonce = bytes 4..<16 (receiver index ‖ counter), AAD = bytes 0..<16."""
    head = header(DATA, cipher) + struct.pack(">IQ", receiver, counter)
    aead = AESGCM(key) if cipher == 1 else ChaCha20Poly1305(key)
    return head + aead.encrypt(head[4:16], plaintext, head)


def cookie_vectors(v, init):
    ip = ipaddress.ip_address(v["source_ip"])
    cookie = MAC(v["secret"], ip.packed, struct.pack(">H", v["source_port"]))
    key = HMAC(HASH(b"cookie--", PUB(v["sr"])), v["nonce"])    # the replying side's static key
    sealed = ChaCha20Poly1305(key).encrypt(bytes(12), cookie, init[124:140])  # AAD = its mac1
    reply = header(COOKIE_REPLY, v["cipher"]) + init[4:8] + v["nonce"] + sealed
    assert len(reply) == 64
    return {"secret": v["secret"].hex(), "source_ip": str(ip), "source_port": v["source_port"],
            "cookie": cookie.hex(), "nonce": v["nonce"].hex(), "reply": reply.hex(),
            "initiation_with_mac2": (init[:140] + MAC(cookie, init[:140])).hex()}


# ---- Frames and cases -------------------------------------------------------------------------

def arp(op, sender_mac, sender_ip, target_mac, target_ip, destination, pad_to=0):
    mac = lambda s: bytes.fromhex(s.replace(":", ""))
    ip4 = lambda s: ipaddress.IPv4Address(s).packed
    frame = mac(destination) + mac(sender_mac) + b"\x08\x06"  # Ethernet II, ARP
    frame += struct.pack(">HHBBH", 1, 0x0800, 6, 4, op)       # Ethernet/IPv4, request/reply
    frame += mac(sender_mac) + ip4(sender_ip) + mac(target_mac) + ip4(target_ip)
    return frame + bytes(max(0, pad_to - len(frame)))


# 42 bytes: broadcast ARP request from 02:00:00:00:00:01 (198.18.0.1) for 198.18.0.2.
ARP_REQUEST = arp(1, "02:00:00:00:00:01", "198.18.0.1", "00:00:00:00:00:00", "198.18.0.2",
                  "ff:ff:ff:ff:ff:ff")
# 60 bytes: the unicast ARP reply, padded to Ethernet's minimum frame (without FCS).
ARP_REPLY = arp(2, "02:00:00:00:00:02", "198.18.0.2", "02:00:00:00:00:01", "198.18.0.1",
                "02:00:00:00:00:01", pad_to=60)

CASES = [
    # name, cipher, psk?, indices (initiator, responder), TAI64N time, VNI, frame,
    # data counter, keepalive counter, cookie source
    dict(name="aes-gcm-no-psk", cipher=1, with_psk=False, i_index=0x1A2B3C01, r_index=0x80000001,
         time=((2026, 12, 1, 12, 0, 0), 123456789), vni=1, frame=ARP_REQUEST,
         counter=1, keepalive=1, source_ip="198.18.0.1", source_port=51820),
    dict(name="chacha-psk", cipher=0, with_psk=True, i_index=0xFEDCBA98, r_index=0x00000007,
         time=((2027, 1, 15, 8, 30, 0), 1), vni=0xABCDEF, frame=ARP_REQUEST,
         counter=7, keepalive=3, source_ip="198.18.0.1", source_port=4789),
    dict(name="aes-gcm-psk-ipv6-large-counter", cipher=1, with_psk=True, i_index=0x00000100,
         r_index=0xC0FFEE42, time=((2027, 3, 1, 0, 0, 0), 999999999), vni=0xFFFFFF,
         frame=ARP_REPLY, counter=2**40 + 5, keepalive=2**32 + 1,
         source_ip="2001:db8:0:1::1", source_port=65535),
]


def make_case(c):
    n = c["name"]
    v = dict(name=n, cipher=c["cipher"], i_index=c["i_index"], r_index=c["r_index"],
             si=private_key(n, "initiator static"), sr=private_key(n, "responder static"),
             ei=private_key(n, "initiator ephemeral"), er=private_key(n, "responder ephemeral"),
             psk=label(n, "psk") if c["with_psk"] else bytes(32),
             timestamp=tai64n(c["time"][0] + (0, 0, 0), c["time"][1]),
             inc_i=label(n, "initiator incarnation")[:8], inc_r=label(n, "responder incarnation")[:8],
             secret=label(n, "cookie secret"), nonce=label(n, "cookie nonce")[:24],
             source_ip=c["source_ip"], source_port=c["source_port"])
    init, resp, T1, T2, H = handshake(v)
    noise_cross_check(v, init, resp, T1, T2, H)
    frame, vni = c["frame"], c["vni"]
    assert vni < 2**24
    datagram = seal_data(c["cipher"], T1, c["r_index"], c["counter"], struct.pack(">I", vni) + frame)
    keepalive = seal_data(c["cipher"], T2, c["i_index"], c["keepalive"], b"")
    assert len(datagram) == 36 + len(frame) and len(keepalive) == 32
    return {
        "name": n, "cipher": c["cipher"], "prologue": (PROLOGUE + bytes([c["cipher"]])).hex(),
        "initiator_static_private": v["si"].hex(), "initiator_static_public": PUB(v["si"]).hex(),
        "responder_static_private": v["sr"].hex(), "responder_static_public": PUB(v["sr"]).hex(),
        "initiator_ephemeral_private": v["ei"].hex(), "responder_ephemeral_private": v["er"].hex(),
        "psk": v["psk"].hex(), "timestamp": v["timestamp"].hex(),
        "initiator_incarnation": v["inc_i"].hex(), "responder_incarnation": v["inc_r"].hex(),
        "initiator_index": c["i_index"], "responder_index": c["r_index"],
        "initiation": init.hex(), "response": resp.hex(),
        "initiator_send_key": T1.hex(), "initiator_receive_key": T2.hex(),
        "data": {"counter": c["counter"], "vni": vni, "frame": frame.hex(), "datagram": datagram.hex()},
        "keepalive": {"counter": c["keepalive"], "datagram": keepalive.hex()},
        "cookie": cookie_vectors(v, init),
    }


def main():
    cases = [make_case(c) for c in CASES]
    # The prologue differs per case (its last byte is the cipher): the top level holds the shared
    # 17-byte prefix, each case its whole prologue.
    doc = {"protocol": PROTOCOL.decode(), "prologue": PROLOGUE.hex(), "cases": cases}
    print(json.dumps(doc, indent=1, sort_keys=True))
    print("secure-vectors.py: noiseprotocol cross-check passed for all cases", file=sys.stderr)


if __name__ == "__main__":
    main()
