#ifndef CLVS_TLS_H
#define CLVS_TLS_H
#include <stddef.h>

/// SSL_GET's transport: on a connected non-blocking socket, performs a TLS handshake (no
/// certificate verification, as keepalived's SSL_GET without an SSL block), sends `request`,
/// and reads the response until the peer closes or `capacity` bytes. Every wait is bounded by
/// `timeout_ms`. Returns the number of bytes read, or -1 with a message in `error`.
long clvs_tls_fetch(int fd, const char *server_name, const void *request, size_t request_length,
                    void *response, size_t capacity, int timeout_ms, char *error, size_t error_capacity);

/// Bytes in an MD5 digest.
#define CLVS_MD5_LENGTH 16

/// MD5 of `length` bytes at `data` (HTTP_GET's `digest`) into `digest`, with OpenSSL's EVP.
/// Returns 0, or -1 when OpenSSL refuses (a FIPS-only provider has no MD5).
int clvs_md5(const void *data, size_t length, unsigned char digest[CLVS_MD5_LENGTH]);
#endif
