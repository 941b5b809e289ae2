#ifndef CAEAD_H
#define CAEAD_H
#include <stddef.h>
#include <stdint.h>

/// ChaCha20-Poly1305 (RFC 8439) and AES-256-GCM from the BoringSSL that swift-crypto builds and links, called on
/// the caller's buffers: no allocation per call, and sealing may be done in place. An opaque
/// handle per key (an EVP_AEAD_CTX), made once per key.
typedef struct vswitch_aead vswitch_aead;

/// A context for a 32-byte key and 16-byte tags; NULL if BoringSSL refuses.
vswitch_aead *vswitch_aead_chacha20_poly1305_new(const uint8_t *key, size_t key_len);
/// The same for AES-256-GCM (BoringSSL picks its AES-NI/VAES code at run time).
vswitch_aead *vswitch_aead_aes_256_gcm_new(const uint8_t *key, size_t key_len);
void vswitch_aead_free(vswitch_aead *aead);

/// EVP_AEAD_CTX_seal: writes `in_len` + 16 bytes (ciphertext, tag) to `out`, which may be `in`
/// exactly (in place) but must not otherwise overlap it. 1 on success, 0 on failure.
int vswitch_aead_seal(const vswitch_aead *aead, uint8_t *out, size_t *out_len, size_t max_out_len,
                      const uint8_t *nonce, size_t nonce_len, const uint8_t *in, size_t in_len,
                      const uint8_t *ad, size_t ad_len);

/// EVP_AEAD_CTX_open: checks the tag of `in` (ciphertext, tag) and writes the plaintext to `out`
/// (`in` exactly, or not overlapping). 1 if authentic, 0 otherwise.
int vswitch_aead_open(const vswitch_aead *aead, uint8_t *out, size_t *out_len, size_t max_out_len,
                      const uint8_t *nonce, size_t nonce_len, const uint8_t *in, size_t in_len,
                      const uint8_t *ad, size_t ad_len);

/// HMAC-SHA-256 of `data` under `key` into `out` (32 bytes), on the stack: no allocation. The
/// secure tunnel's mac1 check runs on every handshake message, hostile floods included.
void vswitch_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len, uint8_t out[32]);

#endif
