/* Maps shared by every .bpf.c: defined once in maps.bpf.c (FALCOPY_DEFINE_MAPS),
 * declared extern elsewhere and resolved by the BPF static linker. */
#ifndef FALCOPY_MAPS_H
#define FALCOPY_MAPS_H

#include "record.h"
#include "events.h"

#ifdef FALCOPY_DEFINE_MAPS
#define FALCOPY_MAP
#else
#define FALCOPY_MAP extern
#endif

struct scratch {
	__u32 off;
	__u32 pad;
	__u8 buf[SCRATCH_SIZE];
};

#define MAX_COMPS 64
struct pathbuf {
	const unsigned char *names[MAX_COMPS];
	/* the walk's running state (helpers.h: kpath_write): in memory, not on the stack */
	__u32 n, complete;
	__u64 pos;
};

/* size set by the loader before load */
FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pathbuf);
} pathbuf_map SEC(".maps");

/* event id -> 1 when user space wants it */
FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EV_MAX);
	__type(key, __u32);
	__type(value, __u8);
} evt_filter SEC(".maps");

FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} settings_map SEC(".maps");

/* records lost because the ring was full, per class: [0] bulk, [1] critical */
FALCOPY_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

#include "kfilter_maps.h"

#endif
