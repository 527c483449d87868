/*
 * bpf-classify: the XDP program's cost per frame for the classification cases, measured with
 * BPF_PROG_TEST_RUN (nothing attached, nothing sent; the kernel times `repeat` runs).
 *
 *   cc -O2 -o /tmp/bpf-classify bench/bpf-classify.c -lbpf
 *   make -C bpf lvs_xdp.o && /tmp/bpf-classify bpf/lvs_xdp.o [REPEAT] [PREFIXES]
 *
 * Fills `vips` with TCP 192.168.1.100:80 and, when the object has `mark_prefixes`, PREFIXES fwmark
 * prefixes (10.N.0.0/16,tcp,80 and 203.0.113.0/24,tcp,80-81; PREFIXES 0: none); then prints ns per frame for: a
 * frame to the VIP's service, a frame to an fwmark prefix, and a TCP frame to none of them (the
 * director's own traffic, which goes on to the kernel). Works with an object without
 * `mark_prefixes` too (an older lvs_xdp.o), for comparison.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../Sources/CLVSXDP/include/clvs_xdp_maps.h"

struct vip_key { __u8 family, proto; __u16 port; __u8 addr[16]; };

/* Ethernet + IPv4 + TCP SYN to dst:port. */
static size_t tcp_frame(unsigned char *f, const char *dst, unsigned port) {
    memset(f, 0, 64);
    memset(f, 0x02, 12);
    f[12] = 0x08;
    unsigned char *ip = f + 14, *tcp = ip + 20;
    ip[0] = 0x45; ip[3] = 40; ip[8] = 64; ip[9] = 6;
    inet_pton(AF_INET, "192.168.1.12", ip + 12);
    inet_pton(AF_INET, dst, ip + 16);
    tcp[0] = 0x9c; tcp[1] = 0x40; tcp[2] = (unsigned char)(port >> 8); tcp[3] = (unsigned char)port;
    tcp[12] = 0x50; tcp[13] = 0x02;
    return 54;
}

static int mark(int fd, const char *net, unsigned len, unsigned lo, unsigned hi) {
    struct clvs_mark_key k = { .prefixlen = CLVS_MARK_FAMILY_BITS + len, .family = 4 };
    inet_pton(AF_INET, net, k.addr);
    struct clvs_mark_value v = { .count = 1, .ranges = { { .proto = 6, .lo = (__u16)lo, .hi = (__u16)hi } } };
    return bpf_map_update_elem(fd, &k, &v, BPF_ANY);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s lvs_xdp.o [REPEAT] [PREFIXES]\n", argv[0]); return 2; }
    unsigned repeat = argc > 2 ? (unsigned)atoi(argv[2]) : 1000000, prefixes = argc > 3 ? (unsigned)atoi(argv[3]) : 100;
    struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
    if (libbpf_get_error(obj)) { fprintf(stderr, "%s: cannot open\n", argv[1]); return 1; }
    struct bpf_program *tc = bpf_object__find_program_by_name(obj, "lvs_tc_prog");
    if (tc) bpf_program__set_autoload(tc, 0);
    if (bpf_object__load(obj)) { fprintf(stderr, "%s: cannot load\n", argv[1]); return 1; }
    int prog = bpf_program__fd(bpf_object__find_program_by_name(obj, "lvs_xdp_prog"));
    int vips = bpf_object__find_map_fd_by_name(obj, "vips");
    int marks = bpf_object__find_map_fd_by_name(obj, "mark_prefixes");
    struct vip_key vk = { .family = 4, .proto = 6, .port = htons(80) };
    inet_pton(AF_INET, "192.168.1.100", vk.addr);
    __u8 one = 1;
    bpf_map_update_elem(vips, &vk, &one, BPF_ANY);
    vk.proto = 0; vk.port = 0;
    bpf_map_update_elem(vips, &vk, &one, BPF_ANY);
    if (marks >= 0 && prefixes > 0) { /* PREFIXES 0: an empty trie */
        char net[32];
        for (unsigned i = 0; i < prefixes; i++) {
            snprintf(net, sizeof(net), "10.%u.0.0", i % 256);
            if (mark(marks, net, 16, 80, 80)) { perror("mark_prefixes"); return 1; }
        }
        mark(marks, "203.0.113.0", 24, 80, 81);
    }
    printf("%s: mark_prefixes %s (%u prefixes), %u runs each\n", argv[1], marks >= 0 ? "present" : "absent",
           marks >= 0 && prefixes > 0 ? prefixes + 1 : 0, repeat);
    const struct { const char *what, *dst; unsigned port; } cases[] = {
        { "service (VIP:80)", "192.168.1.100", 80 },
        { "fwmark prefix (203.0.113.7:81)", "203.0.113.7", 81 },
        { "neither (172.16.1.1:22, to the kernel)", "172.16.1.1", 22 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char f[64];
        size_t n = tcp_frame(f, cases[i].dst, cases[i].port);
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f, .data_size_in = (__u32)n, .repeat = (int)repeat);
        if (bpf_prog_test_run_opts(prog, &o)) { perror("BPF_PROG_TEST_RUN"); return 1; }
        printf("  %-40s action %u  %u ns/frame\n", cases[i].what, o.retval, o.duration);
    }
    bpf_object__close(obj);
    return 0;
}
