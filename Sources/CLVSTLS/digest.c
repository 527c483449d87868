// Digests for the HTTP_GET and SSL_GET checkers, over the system's OpenSSL (libcrypto).
#include "clvs_tls.h"

#include <openssl/evp.h>

int clvs_md5(const void *data, size_t length, unsigned char digest[CLVS_MD5_LENGTH]) {
    unsigned int written = 0;
    if (EVP_Digest(data, length, digest, &written, EVP_md5(), NULL) != 1) return -1;
    return written == CLVS_MD5_LENGTH ? 0 : -1;
}
