// TLS for the SSL_GET health checker, over the system's OpenSSL (libssl).
#include "clvs_tls.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

static int wait_for(int fd, int want_write, int timeout_ms) {
    struct pollfd p = { .fd = fd, .events = want_write ? POLLOUT : POLLIN };
    int n;
    do { n = poll(&p, 1, timeout_ms); } while (n < 0 && errno == EINTR);
    return n > 0;
}

/// Runs one SSL call to completion, polling on WANT_READ/WANT_WRITE. Returns its result (> 0 ok).
static int drive(SSL *ssl, int fd, int timeout_ms, int (*op)(SSL *, void *, int), void *arg, int len, const char *what,
                 char *error, size_t cap) {
    for (;;) {
        int r = op(ssl, arg, len);
        if (r > 0) return r;
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (!wait_for(fd, e == SSL_ERROR_WANT_WRITE, timeout_ms)) {
                snprintf(error, cap, "%s: timeout", what);
                return -1;
            }
            continue;
        }
        if (e == SSL_ERROR_SYSCALL && r == 0) return 0; /* peer closed without close_notify */
        unsigned long code = ERR_get_error();
        snprintf(error, cap, "%s: %s", what, code ? ERR_reason_error_string(code) : strerror(errno));
        return -1;
    }
}

static int do_handshake(SSL *ssl, void *arg, int len) { (void)arg; (void)len; return SSL_connect(ssl); }
static int do_write(SSL *ssl, void *arg, int len) { return SSL_write(ssl, arg, len); }
static int do_read(SSL *ssl, void *arg, int len) { return SSL_read(ssl, arg, len); }

long clvs_tls_fetch(int fd, const char *server_name, const void *request, size_t request_length,
                    void *response, size_t capacity, int timeout_ms, char *error, size_t error_capacity) {
    long total = -1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) { snprintf(error, error_capacity, "TLS: cannot create context"); return -1; }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1) { snprintf(error, error_capacity, "TLS: cannot create session"); goto done; }
    if (server_name && *server_name) SSL_set_tlsext_host_name(ssl, server_name);
    if (drive(ssl, fd, timeout_ms, do_handshake, NULL, 0, "TLS handshake", error, error_capacity) <= 0) goto done;
    size_t sent = 0;
    while (sent < request_length) {
        int n = drive(ssl, fd, timeout_ms, do_write, (char *)request + sent, (int)(request_length - sent), "write", error, error_capacity);
        if (n <= 0) { if (n == 0) snprintf(error, error_capacity, "write: connection closed"); goto done; }
        sent += (size_t)n;
    }
    size_t got = 0;
    while (got < capacity) {
        int n = drive(ssl, fd, timeout_ms, do_read, (char *)response + got, (int)(capacity - got), "read", error, error_capacity);
        if (n < 0) goto done;
        if (n == 0) break;
        got += (size_t)n;
    }
    total = (long)got;
done:
    if (ssl) { SSL_shutdown(ssl); SSL_free(ssl); }
    SSL_CTX_free(ctx);
    return total;
}
