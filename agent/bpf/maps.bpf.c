// SPDX-License-Identifier: GPL-2.0
/* The one definition of the shared maps, and the licence of the linked object. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#define FALCOPY_DEFINE_MAPS
#include "maps.h"

char LICENSE[] SEC("license") = "GPL";
