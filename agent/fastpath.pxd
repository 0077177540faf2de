# Types for the compiled build of fastpath.py (Cython pure-Python mode): the .py is the
# implementation, this file only declares C types for its names.  Positions, sizes and
# the records' scalars are C integers; the ring is read through a typed memoryview.
cimport cython
from cpython.unicode cimport PyUnicode_DecodeUTF8

# a ring record's header: the kernel commits it with a release store after the record's
# bytes, so it is read with an acquire load (an x86 mov the compiler may not move the
# record's loads before); aligned, as the ring's 8-byte records are
cdef extern from *:
    """
    static CYTHON_INLINE unsigned int falcopy_load_acquire_u32(const unsigned char *p) {
        return __atomic_load_n((const unsigned int *)p, __ATOMIC_ACQUIRE);
    }
    """
    unsigned int _load_acquire_u32 "falcopy_load_acquire_u32"(const unsigned char *p) nogil

cdef Py_ssize_t _HDR_SIZE, _ABSENT, _TUPLE_SIZE, _SIN_SIZE, _SIN6_SIZE
cdef unsigned int _UNSET_LOGINUID, _BUSY, _BUSY_OR_DISCARD
cdef long long _AT_FDCWD
cdef unsigned long long _CREAT_FLAGS
cdef int _OPEN_AT, _OPEN, _CREAT, _CLOSE, _SOCKET, _ACCEPT, _CONNECT, _AF_INET, _AF_INET6

# the callers check the bounds (module directive boundscheck=False)
cdef unsigned int _u16(const unsigned char[:] b, Py_ssize_t p) noexcept
cdef unsigned int _u32(const unsigned char[:] b, Py_ssize_t p) noexcept
cdef unsigned long long _u64(const unsigned char[:] b, Py_ssize_t p) noexcept
cdef long long _i64(const unsigned char[:] b, Py_ssize_t p) noexcept

@cython.locals(
    buf="const unsigned char[:]", buf_len=Py_ssize_t, off=Py_ssize_t, size=Py_ssize_t, n_hot=Py_ssize_t,
    typ=Py_ssize_t, kind=int, fsize=Py_ssize_t, o1=Py_ssize_t, o2=Py_ssize_t, o3=Py_ssize_t,
    o4=Py_ssize_t, p=Py_ssize_t, end=Py_ssize_t, n=Py_ssize_t, ok=bint, new_comm=bint,
    ts="unsigned long long", res="long long", rlen="unsigned int", tid="unsigned int",
    pid="unsigned int", ppid="unsigned int", euid="unsigned int", egid="unsigned int",
    loginuid="unsigned int", c0="unsigned long long", c1="unsigned long long",
    last_c0="unsigned long long", last_c1="unsigned long long", last_tid="long long",
    last_pid="long long", dirfd="long long", flags="unsigned long long",
    dev="unsigned long long", ino="unsigned long long", fdnum="long long",
    domain="long long", stype="long long", proto="long long", tfam=int, afam=int,
    lport=int, rport=int, num="long long", alerts="long long",
    ring=bint, busy=bint, base=Py_ssize_t, ring_end=Py_ssize_t, mask=Py_ssize_t, pos=Py_ssize_t,
    left=Py_ssize_t, handed=Py_ssize_t, cur="unsigned long long", prod="unsigned long long",
    hdr="unsigned int", hit=bint, last_euid="unsigned int", last_egid="unsigned int",
    last_loginuid="unsigned int", last_ppid="unsigned int")
cpdef long long run(object pipe, object raw, object spans, object decoder, object batch,
                    list hot, list hot_counts, object walk=*) except? -1
