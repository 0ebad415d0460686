/* LD_PRELOAD shim (getifaddrs) used to keep ICE on 127.0.0.1 (from ../shared/janus-lab/janus/lo_shim.c).
 * The interop tests build it with gcc into a temporary folder and preload it into GStreamer
 * webrtcbin (libnice), which gathers no candidate at all on a loopback-only host without it.
 * Janus 1.1.x (src/ice.c, janus_ice_setup_local) skips every interface with IFF_LOOPBACK *before* applying
 * ice_enforce_list, so ice_enforce_list="lo" adds NO address and libnice then falls back to gathering on ALL
 * non-loopback interfaces (here eth0 192.0.2.2 + IPv6 fd00::2 / fe80::, even with ipv6=false).
 * This shim clears IFF_LOOPBACK on "lo" so that ice_enforce_list="lo" yields exactly one host candidate,
 * 127.0.0.1. With LO_SHIM_HIDE_OTHERS=1 it also marks every other interface down (for plain libnice users
 * such as GStreamer webrtcbin, which gather on all non-loopback interfaces and have no enforce list). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = NULL;
    if (!real)
        real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int r = real(ifap);
    const char *h = getenv("LO_SHIM_HIDE_OTHERS");
    int hide = h && h[0] == '1';
    if (r == 0)
        for (struct ifaddrs *i = *ifap; i; i = i->ifa_next) {
            if (i->ifa_name && strcmp(i->ifa_name, "lo") == 0)
                i->ifa_flags &= ~IFF_LOOPBACK;
            else if (hide)
                i->ifa_flags &= ~(IFF_UP | IFF_RUNNING);
        }
    return r;
}
