# Types for the compiled build of fdops.py (Cython pure-Python mode): the .py is the
# implementation; this file declares the fd factory as a C function and the C-level slot
# stores it uses.  Everything else in fdops.py is compiled as it is (annotations as hints).
cimport cython
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF

cdef extern from "Python.h":
    object PyType_GenericAlloc(type cls, Py_ssize_t nitems)
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
        int flags
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef extern from "structmember.h":
    int T_OBJECT_EX
    int READONLY

#: where an FdInfo keeps each field, in the dataclass's field order (set at import)
cdef Py_ssize_t _OFF[17]
cdef bint _FAST


cdef inline Py_ssize_t _member_offset(object descr) noexcept:
    # a member_descriptor (the caller checked its type): the slot's offset in the object,
    # -1 for anything but a writable object slot
    cdef PyMemberDef* m = (<PyMemberDescrObject*><PyObject*>descr).d_member
    if m.type != T_OBJECT_EX or m.flags & READONLY:
        return -1
    return m.offset


cdef inline void _store(object obj, Py_ssize_t off, object value) noexcept:
    # the slot of a freshly allocated object (NULL): no old value to release
    Py_INCREF(value)
    (<PyObject**>((<char*><PyObject*>obj) + off))[0] = <PyObject*>value


cdef object _new_fd(object type_, object name, object num, object flags, object ino, object dev,
                    object l4proto, object family, object laddr, object lport, object raddr,
                    object rport, object is_client, object connected, object listening,
                    object name_changed, object nameraw)

@cython.locals(i=Py_ssize_t, off=Py_ssize_t)
cdef bint _slots_ready() except -1

# a C call from the handlers that name a connection (connect, accept, datagrams)
cdef str _socket_name(object laddr, object lport, object raddr, object rport, object is_client)
