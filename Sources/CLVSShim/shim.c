#define _GNU_SOURCE
#include "clvs_shim.h"

#include <errno.h>
#include <stdlib.h>
#include <sched.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>

_Static_assert(sizeof(struct clvs_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(struct clvs_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr layout");

int clvs_packet_bind(int fd, int ifindex, uint16_t protocol) {
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(protocol);
    sll.sll_ifindex = ifindex;
    return bind(fd, (struct sockaddr *)&sll, sizeof sll);
}

void *clvs_packet_send_address(int ifindex, unsigned int *length) {
    struct sockaddr_ll *sll = calloc(1, sizeof *sll);
    if (!sll) return NULL;
    sll->sll_family = AF_PACKET;
    sll->sll_protocol = 0;
    sll->sll_ifindex = ifindex;
    sll->sll_halen = 6;
    *length = sizeof *sll;
    return sll;
}

int clvs_packet_rx_ring(int fd, unsigned block_size, unsigned block_nr, unsigned frame_size, unsigned frame_nr) {
    struct tpacket_req req = {
        .tp_block_size = block_size, .tp_block_nr = block_nr,
        .tp_frame_size = frame_size, .tp_frame_nr = frame_nr,
    };
    return setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req);
}

int clvs_packet_fanout(int fd, int id, int type, int flags) {
    int arg;
    if (id < 0) {
        arg = (type | flags | PACKET_FANOUT_FLAG_UNIQUEID) << 16;
    } else {
        arg = (id & 0xffff) | ((type | flags) << 16);
    }
    if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) return -1;
    if (id >= 0) return id;
    int got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &got, &len) != 0) return -1;
    return got & 0xffff;
}

int clvs_packet_fanout_setting(int fd, unsigned *setting) {
    unsigned got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &got, &len) != 0) return -1;
    *setting = got;
    return 0;
}

int clvs_setsockopt_int(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value);
}

int clvs_sendmmsg(int fd, struct clvs_mmsghdr *msgs, unsigned int vlen, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)msgs, vlen, flags);
}

int clvs_if_info(const char *name, int *index, uint8_t *mac, int *mtu) {
    if (strlen(name) >= IFNAMSIZ) { errno = ENAMETOOLONG; return -1; }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq ifr;
    int rc = -1;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0) goto out;
    *index = ifr.ifr_ifindex;
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) goto out;
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    if (ioctl(fd, SIOCGIFMTU, &ifr) != 0) goto out;
    *mtu = ifr.ifr_mtu;
    rc = 0;
out:;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int clvs_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

int clvs_poll_in(struct pollfd *fds, int n, int timeout_ms) {
    for (int i = 0; i < n; i++) { fds[i].events = POLLIN; fds[i].revents = 0; }
    int rc = poll(fds, (nfds_t)n, timeout_ms);
    if (rc < 0 && errno == EINTR) return 0;
    return rc;
}

int clvs_setns_net(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = setns(fd, CLONE_NEWNET);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int clvs_packet_open_sender(void) {
    return socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
}

long clvs_packet_sendto(int fd, int ifindex, const void *frame, size_t len) {
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = ifindex;
    sll.sll_halen = 6;
    if (len >= 6) memcpy(sll.sll_addr, frame, 6);
    return sendto(fd, frame, len, 0, (struct sockaddr *)&sll, sizeof sll);
}

int clvs_accept_cloexec(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}

long clvs_peer_uid(int fd) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    return (long)cred.uid;
}

// ---- process signals --------------------------------------------------------------------------

static int clvs_signal_pipe[2] = { -1, -1 };
static unsigned clvs_hup_count;
static int clvs_stop_signal;
static unsigned clvs_stop_count;

static void clvs_signal_record(int sig) {
    int saved = errno;
    if (sig == SIGHUP) {
        __atomic_fetch_add(&clvs_hup_count, 1, __ATOMIC_SEQ_CST);
    } else {
        int none = 0;
        __atomic_fetch_add(&clvs_stop_count, 1, __ATOMIC_SEQ_CST);
        __atomic_compare_exchange_n(&clvs_stop_signal, &none, sig, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
    char byte = (char)sig;
    ssize_t ignored = write(clvs_signal_pipe[1], &byte, 1); // a full pipe already holds a wake-up
    (void)ignored;
    errno = saved;
}

int clvs_signals_install(void) {
    if (clvs_signal_pipe[0] >= 0) return clvs_signal_pipe[0];
    if (pipe2(clvs_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    // Only the write end must never block (in the handler); the reader sleeps in read().
    int flags = fcntl(clvs_signal_pipe[0], F_GETFL);
    if (flags >= 0) fcntl(clvs_signal_pipe[0], F_SETFL, flags & ~O_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = clvs_signal_record;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    const int recorded[] = { SIGHUP, SIGTERM, SIGINT };
    for (unsigned i = 0; i < sizeof recorded / sizeof recorded[0]; i++) {
        if (sigaction(recorded[i], &sa, NULL) != 0) return -1;
    }
    struct sigaction ignore;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &ignore, NULL) != 0) return -1;
    // A signal blocked by whoever started us would stay pending forever: unblock ours.
    sigset_t set;
    sigemptyset(&set);
    for (unsigned i = 0; i < sizeof recorded / sizeof recorded[0]; i++) sigaddset(&set, recorded[i]);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return clvs_signal_pipe[0];
}

unsigned clvs_signals_take_hup(void) {
    return __atomic_exchange_n(&clvs_hup_count, 0, __ATOMIC_SEQ_CST);
}

int clvs_signals_stop_signal(void) {
    return __atomic_load_n(&clvs_stop_signal, __ATOMIC_SEQ_CST);
}

unsigned clvs_signals_stop_count(void) {
    return __atomic_load_n(&clvs_stop_count, __ATOMIC_SEQ_CST);
}
