// A thin shim over BoringSSL's EVP_AEAD API, as built into swift-crypto (which prefixes every
// BoringSSL symbol with CCryptoBoringSSL_ and does not export the C module as a product). The
// declarations below are BoringSSL's own (include/openssl/aead.h); the definitions come from the
// CCryptoBoringSSL objects that linking the Crypto product brings in. The same primitives
// swift-crypto's ChaChaPoly and AES.GCM call, without its per-call context setup and `Data` results.
#include "CAEAD.h"

struct evp_aead_st;
struct evp_aead_ctx_st;

extern const struct evp_aead_st *CCryptoBoringSSL_EVP_aead_chacha20_poly1305(void);
extern const struct evp_aead_st *CCryptoBoringSSL_EVP_aead_aes_256_gcm(void);
extern struct evp_aead_ctx_st *CCryptoBoringSSL_EVP_AEAD_CTX_new(const struct evp_aead_st *aead, const uint8_t *key,
                                                                 size_t key_len, size_t tag_len);
extern void CCryptoBoringSSL_EVP_AEAD_CTX_free(struct evp_aead_ctx_st *ctx);
extern int CCryptoBoringSSL_EVP_AEAD_CTX_seal(const struct evp_aead_ctx_st *ctx, uint8_t *out, size_t *out_len,
                                              size_t max_out_len, const uint8_t *nonce, size_t nonce_len,
                                              const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len);
extern int CCryptoBoringSSL_EVP_AEAD_CTX_open(const struct evp_aead_ctx_st *ctx, uint8_t *out, size_t *out_len,
                                              size_t max_out_len, const uint8_t *nonce, size_t nonce_len,
                                              const uint8_t *in, size_t in_len, const uint8_t *ad, size_t ad_len);

struct env_md_st;
extern const struct env_md_st *CCryptoBoringSSL_EVP_sha256(void);
extern uint8_t *CCryptoBoringSSL_HMAC(const struct env_md_st *evp_md, const void *key, size_t key_len, const uint8_t *data,
                                      size_t data_len, uint8_t *out, unsigned int *out_len);

void vswitch_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len, uint8_t out[32]) {
    unsigned int n = 32;
    CCryptoBoringSSL_HMAC(CCryptoBoringSSL_EVP_sha256(), key, key_len, data, data_len, out, &n);
}

vswitch_aead *vswitch_aead_chacha20_poly1305_new(const uint8_t *key, size_t key_len) {
    return (vswitch_aead *)CCryptoBoringSSL_EVP_AEAD_CTX_new(CCryptoBoringSSL_EVP_aead_chacha20_poly1305(), key, key_len, 16);
}

vswitch_aead *vswitch_aead_aes_256_gcm_new(const uint8_t *key, size_t key_len) {
    return (vswitch_aead *)CCryptoBoringSSL_EVP_AEAD_CTX_new(CCryptoBoringSSL_EVP_aead_aes_256_gcm(), key, key_len, 16);
}

void vswitch_aead_free(vswitch_aead *aead) {
    if (aead) CCryptoBoringSSL_EVP_AEAD_CTX_free((struct evp_aead_ctx_st *)aead);
}

int vswitch_aead_seal(const vswitch_aead *aead, uint8_t *out, size_t *out_len, size_t max_out_len,
                      const uint8_t *nonce, size_t nonce_len, const uint8_t *in, size_t in_len,
                      const uint8_t *ad, size_t ad_len) {
    return CCryptoBoringSSL_EVP_AEAD_CTX_seal((const struct evp_aead_ctx_st *)aead, out, out_len, max_out_len,
                                              nonce, nonce_len, in, in_len, ad, ad_len);
}

int vswitch_aead_open(const vswitch_aead *aead, uint8_t *out, size_t *out_len, size_t max_out_len,
                      const uint8_t *nonce, size_t nonce_len, const uint8_t *in, size_t in_len,
                      const uint8_t *ad, size_t ad_len) {
    return CCryptoBoringSSL_EVP_AEAD_CTX_open((const struct evp_aead_ctx_st *)aead, out, out_len, max_out_len,
                                              nonce, nonce_len, in, in_len, ad, ad_len);
}
