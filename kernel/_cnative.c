/* wasi_hw.kernel._cnative — the native half of the fast host-call path.
 *
 * Contract (the Python side is kernel/_native.py, which is the only user):
 * - configure(trap_new, memory_data, memory_data_size, func_call_unchecked,
 *   context_set_epoch_deadline, default_table, on_exception): addresses of wasmtime's C functions (taken from the library wasmtime-py
 *   loaded), the shim table used on a thread that has none set, and the Python callable that
 *   receives an exception raised by a host function before the guest traps.
 * - new_slot(key, kinds) -> env: a C record for one import (``key`` is the shim-table key,
 *   kept alive by the caller for the life of the process; ``kinds`` one letter per parameter,
 *   'i' = i32, 'I' = i64; the result is one i32). `trampoline()` / `finalizer()` are the C
 *   callback and finalizer addresses to hand to ``wasmtime_linker_define_func_unchecked``
 *   with that env.
 * - The trampoline looks the key up in this thread's current shim table (`set_current`,
 *   `get_current`), calls the function with the arguments as Python ints (i32 and i64
 *   signed) and stores its int result truncated to 32 bits. Anything else (a missing
 *   function, an exception, a result that is not an int) hands the exception to
 *   ``on_exception`` and returns a trap — what kernel/_fastcall.py's ctypes callback does.
 * - Memory(context, memory, keep, fault, hwerror, max_copy): `GuestMemory`'s accessors in
 *   C (it builds one; nothing else does): bounds-checked access to one instance's linear
 *   memory through wasmtime's C API, re-reading base and size on every access (so it never
 *   keeps a view across a call that may grow memory). ``size()``, ``read(ptr, n)``,
 *   ``write(ptr, data)``; ``ptr`` and ``n`` are taken as unsigned 32-bit, ``ptr + n`` is
 *   checked in 64-bit arithmetic, a region outside the memory raises ``fault``, a copy over
 *   ``max_copy`` ``hwerror("no_mem", …)`` — GuestMemory's own errors and messages.
 * - Entry(context, func, keep): ``call(ticks[, table])`` sets the store's epoch deadline to
 *   ``ticks`` and enters one ``() -> i32`` export through ``wasmtime_func_call_unchecked``
 *   with the GIL released, returning the signed result; a trap or error raises
 *   ``Trapped(error, trap)`` (their addresses: the caller owns and converts them). A
 *   ``table`` other than None is this thread's shim table for the call (as `set_current`),
 *   the previous one restored afterwards.
 * - Ticker(increment_epoch, engine, period_ns, keep): a POSIX thread calling
 *   ``increment_epoch(engine)`` every ``period_ns`` without ever taking the GIL (a Python
 *   ticker thread wakes, competes for the GIL with the thread running guests and turns every
 *   host call into a contended GIL hand-off); ``stop()`` ends and joins it (idempotent; also
 *   on deallocation). ``keep`` (the Python Engine) is held until the thread is joined, so the
 *   engine cannot be freed under it.
 * - Bulk(plans, granted, generic, fail, pack, hwerror, memory, limit, deadline_ms,
 *   default_timeout_ms): kernel/_usb_fast.py's fused ``bulk_transfer`` in C, callable with
 *   the shim's six arguments; the trampoline runs it without boxing the arguments. Same
 *   decisions, same I/O, same errnos as the Python version (tests/kernel/test_usb_fast.py
 *   runs both against the generated chain).
 * - I2c(kind, rules, handles, fallback, fail, write_op, read_op, wait, deliver, region,
 *   memory, limit): kernel/_i2c_fast.py's fused ``write_read`` / ``write`` / ``read``
 *   (``kind``) in C, register rules included (the guard's short paths: the rule object is
 *   compiled once into flag tables, ``pointers`` updated before any I/O); anything else (a
 *   handle not open, an address not granted, a quota or bounds miss, a register access the
 *   short paths do not allow) goes, before any I/O, to ``fallback``, the Python fused
 *   function, which decides as the Python path does. Same I/O, pointers and errnos
 *   (tests/kernel/test_i2c_fast.py runs it against the generated chain).
 * Layout assumptions (wasmtime_memory_t is 24 bytes, wasmtime_val_raw_t is 16 bytes) are
 * checked by kernel/_native.py against wasmtime-py's own ctypes definitions before use.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { unsigned char opaque[24]; } wt_memory_t;   /* wasmtime 50: {{u64 store_id; u32}; u32} */
typedef union { int32_t i32; int64_t i64; unsigned char raw[16]; } val_raw_t;

typedef void *(*trap_new_t)(const char *, size_t);
typedef void *(*call_unchecked_t)(void *, const void *, val_raw_t *, size_t, void **);
typedef void (*set_deadline_t)(void *, uint64_t);
typedef uint8_t *(*mem_data_t)(const void *, const wt_memory_t *);
typedef size_t (*mem_size_t)(const void *, const wt_memory_t *);

static trap_new_t trap_new;
static mem_data_t mem_data;
static mem_size_t mem_data_size;
static call_unchecked_t call_unchecked;
static set_deadline_t set_deadline;
static PyObject *Trapped;          /* the exception `Entry.call` raises on a trap or error */
static PyObject *default_table;    /* strong */
static PyObject *on_exception;     /* strong */
static _Thread_local PyObject *current;  /* strong, or NULL = default_table */

static const char TRAP_MSG[] = "host function raised a Python exception";
#define MAX_PARAMS 16

typedef struct {
    PyObject *key;       /* borrowed: kept alive by the Python side */
    int nparams;
    char kinds[MAX_PARAMS];
} slot_t;

/* ---- host-call trampoline ---------------------------------------------------------- */

struct BulkObject;
static PyTypeObject BulkType;
static PyObject *bulk_run(struct BulkObject *self, const int32_t *sa);
struct I2cObject;
static PyTypeObject I2cType;
static int i2c_nargs(PyObject *fn);
static PyObject *i2c_run(struct I2cObject *self, const int32_t *sa);

static void *fail_trap(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    if (on_exception != NULL && value != NULL) {
        PyObject *r = PyObject_CallOneArg(on_exception, value);
        if (r == NULL)
            PyErr_WriteUnraisable(on_exception);
        Py_XDECREF(r);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return trap_new(TRAP_MSG, sizeof(TRAP_MSG) - 1);
}

static void *trampoline(void *env, void *caller, val_raw_t *args, size_t nargs)
{
    slot_t *slot = (slot_t *)env;
    PyObject *argv[MAX_PARAMS];
    PyObject *fn, *table, *r;
    void *trap = NULL;
    int i, made = 0;
    (void)caller;
    (void)nargs;

    PyGILState_STATE gil = PyGILState_Ensure();
    table = current != NULL ? current : default_table;
    if (table == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "wasi_hw native host calls are not configured");
        trap = fail_trap();
        goto out;
    }
    if (PyDict_CheckExact(table)) {
        fn = PyDict_GetItemWithError(table, slot->key);
        if (fn == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, slot->key);
            trap = fail_trap();
            goto out;
        }
        Py_INCREF(fn);
    } else {
        fn = PyObject_GetItem(table, slot->key);   /* e.g. the no-shims table's __missing__ */
        if (fn == NULL) {
            trap = fail_trap();
            goto out;
        }
    }
    if (Py_IS_TYPE(fn, &BulkType) && slot->nparams == 6) {   /* the fused bulk_transfer */
        int32_t sa[6];
        for (i = 0; i < 6; i++)
            sa[i] = args[i].i32;
        r = bulk_run((struct BulkObject *)fn, sa);
        Py_DECREF(fn);
        goto result;
    }
    if (Py_IS_TYPE(fn, &I2cType) && slot->nparams == i2c_nargs(fn)) {   /* fused I2C */
        int32_t sa[7];
        for (i = 0; i < slot->nparams; i++)
            sa[i] = args[i].i32;
        r = i2c_run((struct I2cObject *)fn, sa);
        Py_DECREF(fn);
        goto result;
    }
    for (i = 0; i < slot->nparams; i++) {
        argv[i] = slot->kinds[i] == 'I' ? PyLong_FromLongLong(args[i].i64)
                                        : PyLong_FromLong(args[i].i32);
        if (argv[i] == NULL)
            break;
        made++;
    }
    if (made == slot->nparams)
        r = PyObject_Vectorcall(fn, argv, (size_t)made, NULL);
    else
        r = NULL;
    for (i = 0; i < made; i++)
        Py_DECREF(argv[i]);
    Py_DECREF(fn);
result:
    if (r == NULL) {
        trap = fail_trap();
        goto out;
    }
    if (!PyLong_Check(r)) {
        PyErr_Format(PyExc_TypeError, "don't know how to convert %R to i32", r);
        Py_DECREF(r);
        trap = fail_trap();
        goto out;
    }
    {
        unsigned long long v = PyLong_AsUnsignedLongLongMask(r);
        Py_DECREF(r);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            trap = fail_trap();
            goto out;
        }
        memset(&args[0], 0, sizeof(val_raw_t));
        args[0].i32 = (int32_t)(uint32_t)v;
    }
out:
    PyGILState_Release(gil);
    return trap;
}

static void slot_finalizer(void *env)
{
    free(env);   /* no Python objects owned: safe from any thread, at any time */
}

/* ---- module functions -------------------------------------------------------------- */

static PyObject *addr_of(void *p) { return PyLong_FromVoidPtr(p); }

static PyObject *n_trampoline(PyObject *m, PyObject *noargs) { return addr_of((void *)trampoline); }
static PyObject *n_finalizer(PyObject *m, PyObject *noargs) { return addr_of((void *)slot_finalizer); }

static PyObject *n_configure(PyObject *m, PyObject *args)
{
    unsigned long long tn, md, ms, cu, sd;
    PyObject *table, *onexc;
    if (!PyArg_ParseTuple(args, "KKKKKOO:configure", &tn, &md, &ms, &cu, &sd, &table, &onexc))
        return NULL;
    if (!tn || !md || !ms || !cu || !sd) {
        PyErr_SetString(PyExc_ValueError, "configure: a function address is 0");
        return NULL;
    }
    trap_new = (trap_new_t)(uintptr_t)tn;
    mem_data = (mem_data_t)(uintptr_t)md;
    mem_data_size = (mem_size_t)(uintptr_t)ms;
    call_unchecked = (call_unchecked_t)(uintptr_t)cu;
    set_deadline = (set_deadline_t)(uintptr_t)sd;
    Py_INCREF(table);
    Py_XSETREF(default_table, table);
    Py_INCREF(onexc);
    Py_XSETREF(on_exception, onexc);
    Py_RETURN_NONE;
}

static PyObject *n_new_slot(PyObject *m, PyObject *args)
{
    PyObject *key;
    const char *kinds;
    Py_ssize_t n, i;
    slot_t *slot;
    if (!PyArg_ParseTuple(args, "Os#:new_slot", &key, &kinds, &n))
        return NULL;
    if (n > MAX_PARAMS) {
        PyErr_Format(PyExc_ValueError, "new_slot: at most %d parameters", MAX_PARAMS);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (kinds[i] != 'i' && kinds[i] != 'I') {
            PyErr_SetString(PyExc_ValueError, "new_slot: parameter kinds are 'i' or 'I'");
            return NULL;
        }
    }
    slot = calloc(1, sizeof(slot_t));
    if (slot == NULL)
        return PyErr_NoMemory();
    slot->key = key;
    slot->nparams = (int)n;
    memcpy(slot->kinds, kinds, (size_t)n);
    return addr_of(slot);
}

static PyObject *n_set_current(PyObject *m, PyObject *table)
{
    PyObject *prev = current;   /* the reference moves to the caller */
    if (table == Py_None) {
        current = NULL;
    } else {
        Py_INCREF(table);
        current = table;
    }
    if (prev == NULL) {
        if (default_table == NULL)
            Py_RETURN_NONE;
        Py_INCREF(default_table);
        return default_table;
    }
    return prev;
}

static PyObject *n_get_current(PyObject *m, PyObject *noargs)
{
    PyObject *t = current != NULL ? current : default_table;
    if (t == NULL)
        Py_RETURN_NONE;
    Py_INCREF(t);
    return t;
}

/* ---- Memory ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    const void *ctx;
    wt_memory_t mem;
    PyObject *keep;
    PyObject *fault;
    PyObject *hwerror;
    uint64_t max_copy;
} MemoryObject;

static int Memory_traverse(MemoryObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->keep);
    Py_VISIT(self->fault);
    Py_VISIT(self->hwerror);
    return 0;
}

static int Memory_clear(MemoryObject *self)
{
    Py_CLEAR(self->keep);
    Py_CLEAR(self->fault);
    Py_CLEAR(self->hwerror);
    return 0;
}

static void Memory_dealloc(MemoryObject *self)
{
    PyObject_GC_UnTrack(self);
    Memory_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Memory_init(MemoryObject *self, PyObject *args, PyObject *kw)
{
    unsigned long long ctx, max_copy;
    Py_buffer mem;
    PyObject *keep, *fault, *hwerror;
    static char *names[] = {"context", "memory", "keep", "fault", "hwerror", "max_copy", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Ky*OOOK:Memory", names, &ctx, &mem, &keep,
                                     &fault, &hwerror, &max_copy))
        return -1;
    if (mem.len != (Py_ssize_t)sizeof(wt_memory_t) || !ctx) {
        PyBuffer_Release(&mem);
        PyErr_SetString(PyExc_ValueError, "Memory: bad context or memory handle");
        return -1;
    }
    memcpy(&self->mem, mem.buf, sizeof(wt_memory_t));
    PyBuffer_Release(&mem);
    self->ctx = (const void *)(uintptr_t)ctx;
    Py_INCREF(keep);
    Py_XSETREF(self->keep, keep);
    Py_INCREF(fault);
    Py_XSETREF(self->fault, fault);
    Py_INCREF(hwerror);
    Py_XSETREF(self->hwerror, hwerror);
    self->max_copy = max_copy;
    return 0;
}

/* GuestMemory's copy quota: HwError("no_mem") over max_copy; 0 when within. */
static int quota(MemoryObject *self, uint64_t n)
{
    PyObject *msg, *exc;
    if (n <= self->max_copy)
        return 0;
    msg = PyUnicode_FromFormat("%llu bytes exceed the copy quota of %llu",
                               (unsigned long long)n, (unsigned long long)self->max_copy);
    if (msg == NULL)
        return -1;
    exc = PyObject_CallFunction(self->hwerror, "sO", "no_mem", msg);
    Py_DECREF(msg);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return -1;
}

/* [ptr, ptr + n) checked against the current size: the host address, or NULL (raised). */
static uint8_t *span(MemoryObject *self, uint64_t ptr, uint64_t n)
{
    uint64_t size;
    if (self->keep == NULL) {             /* cleared by the cycle collector: no store */
        PyErr_SetString(PyExc_RuntimeError, "guest memory released");
        return NULL;
    }
    size = (uint64_t)mem_data_size(self->ctx, &self->mem);
    if (ptr + n > size) {
        PyErr_Format(self->fault, "region 0x%x+%llu is outside linear memory (%llu bytes)",
                     (unsigned int)ptr, (unsigned long long)n, (unsigned long long)size);
        return NULL;
    }
    return mem_data(self->ctx, &self->mem) + ptr;
}

static int u32_arg(PyObject *o, uint64_t *out)
{
    unsigned long long v;
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected an int, got %.100s", Py_TYPE(o)->tp_name);
        return -1;
    }
    v = PyLong_AsUnsignedLongLongMask(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint64_t)(v & 0xFFFFFFFFull);
    return 0;
}

static PyObject *Memory_size(MemoryObject *self, PyObject *noargs)
{
    if (self->keep == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "guest memory released");
        return NULL;
    }
    return PyLong_FromSize_t(mem_data_size(self->ctx, &self->mem));
}

static PyObject *Memory_read(MemoryObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t ptr, n;
    uint8_t *p;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read(ptr, n)");
        return NULL;
    }
    if (u32_arg(args[0], &ptr) || u32_arg(args[1], &n))
        return NULL;
    p = span(self, ptr, n);
    if (p == NULL || quota(self, n) < 0)
        return NULL;
    return PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
}

static PyObject *Memory_write(MemoryObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t ptr;
    Py_buffer data;
    uint8_t *p;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "write(ptr, data)");
        return NULL;
    }
    PyObject *obj = args[1], *conv = NULL;
    if (u32_arg(args[0], &ptr))
        return NULL;
    if (!PyObject_CheckBuffer(obj)) {   /* what bytes() accepts, as GuestMemory.write does */
        if (PyUnicode_Check(obj) || PyLong_Check(obj)) {
            PyErr_Format(PyExc_TypeError, "cannot write %.100s to guest memory",
                         Py_TYPE(obj)->tp_name);
            return NULL;
        }
        conv = PyBytes_FromObject(obj);
        if (conv == NULL)
            return NULL;
        obj = conv;
    }
    if (PyObject_GetBuffer(obj, &data, PyBUF_SIMPLE) < 0) {
        Py_XDECREF(conv);
        return NULL;
    }
    p = span(self, ptr, (uint64_t)data.len);
    if (p != NULL && quota(self, (uint64_t)data.len) < 0)
        p = NULL;
    if (p != NULL && data.len)
        memmove(p, data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    Py_XDECREF(conv);
    if (p == NULL)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Memory_nothing(MemoryObject *self, PyObject *noargs) { Py_RETURN_NONE; }

static PyMethodDef Memory_methods[] = {
    {"size", (PyCFunction)Memory_size, METH_NOARGS, "The memory's current size in bytes."},
    {"read", (PyCFunction)(void (*)(void))Memory_read, METH_FASTCALL,
     "read(ptr, n) -> bytes: n bytes at ptr (checked)."},
    {"write", (PyCFunction)(void (*)(void))Memory_write, METH_FASTCALL,
     "write(ptr, data): data at ptr (checked)."},
    {"nothing", (PyCFunction)Memory_nothing, METH_NOARGS, "Does nothing (a cheap no-op hook)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject MemoryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasi_hw.kernel._cnative.Memory",
    .tp_basicsize = sizeof(MemoryObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Memory_traverse,
    .tp_clear = (inquiry)Memory_clear,
    .tp_doc = "Bounds-checked access to one instance's linear memory (see the module).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Memory_init,
    .tp_dealloc = (destructor)Memory_dealloc,
    .tp_methods = Memory_methods,
};


/* ---- Bulk: the fused wasi_usb.bulk_transfer in C ------------------------------------ */

typedef struct BulkObject {
    PyObject_HEAD
    PyObject *plans;      /* dict (handle, endpoint) -> (backend_handle, io, is_in) */
    PyObject *granted;    /* set of (handle, endpoint) */
    PyObject *generic;    /* the generated shim chain */
    PyObject *fail;       /* fail(exc, name) -> errno */
    PyObject *pack;       /* struct.Struct("<I").pack: the count's conversion, as in Python */
    PyObject *hwerror;    /* HwError */
    PyObject *name;       /* "bulk_transfer" */
    MemoryObject *mem;
    uint64_t limit, deadline, default_timeout;
    vectorcallfunc vectorcall;
} BulkObject;

static int Bulk_traverse(BulkObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->plans);
    Py_VISIT(self->granted);
    Py_VISIT(self->generic);
    Py_VISIT(self->fail);
    Py_VISIT(self->pack);
    Py_VISIT(self->hwerror);
    Py_VISIT(self->mem);
    return 0;
}

static int Bulk_clear(BulkObject *self)
{
    Py_CLEAR(self->plans);
    Py_CLEAR(self->granted);
    Py_CLEAR(self->generic);
    Py_CLEAR(self->fail);
    Py_CLEAR(self->pack);
    Py_CLEAR(self->hwerror);
    Py_CLEAR(self->mem);
    return 0;
}

static void Bulk_dealloc(BulkObject *self)
{
    PyObject_GC_UnTrack(self);
    Bulk_clear(self);
    Py_CLEAR(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Bulk_init(BulkObject *self, PyObject *args, PyObject *kw)
{
    PyObject *plans, *granted, *generic, *fail, *pack, *hwerror, *mem;
    unsigned long long limit, deadline, dflt;
    static char *names[] = {"plans", "granted", "generic", "fail", "pack", "hwerror", "memory",
                            "limit", "deadline_ms", "default_timeout_ms", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!OOOOO!KKK:Bulk", names, &PyDict_Type, &plans,
                                     &PySet_Type, &granted, &generic, &fail, &pack, &hwerror,
                                     &MemoryType, &mem, &limit, &deadline, &dflt))
        return -1;
#define SETREF(field, v) do { Py_INCREF(v); Py_XSETREF(self->field, (v)); } while (0)
    SETREF(plans, plans);
    SETREF(granted, granted);
    SETREF(generic, generic);
    SETREF(fail, fail);
    SETREF(pack, pack);
    SETREF(hwerror, hwerror);
    Py_INCREF(mem);
    Py_XSETREF(self->mem, (MemoryObject *)mem);
#undef SETREF
    if (self->name == NULL && (self->name = PyUnicode_InternFromString("bulk_transfer")) == NULL)
        return -1;
    self->limit = limit;
    self->deadline = deadline;
    self->default_timeout = dflt;
    return 0;
}

static PyObject *call_generic(BulkObject *self, const uint32_t *a, const int32_t *signed_args)
{
    PyObject *argv[6];
    PyObject *r = NULL;
    int i, made = 0;
    for (i = 0; i < 6; i++) {
        argv[i] = PyLong_FromLong(signed_args[i]);
        if (argv[i] == NULL)
            break;
        made++;
    }
    if (made == 6)
        r = PyObject_Vectorcall(self->generic, argv, 6, NULL);
    for (i = 0; i < made; i++)
        Py_DECREF(argv[i]);
    (void)a;
    return r;
}

/* A Python exception from the I/O: Exception → fail(exc, name) (its errno), else propagate. */
static PyObject *failed(PyObject *fail, PyObject *name)
{
    PyObject *type, *value, *tb, *r;
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return NULL;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL)
        PyException_SetTraceback(value, tb);
    r = PyObject_CallFunctionObjArgs(fail, value, name, NULL);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return r;
}

static PyObject *bulk_failed(BulkObject *self) { return failed(self->fail, self->name); }

/* args as the guest passed them (i32, signed); the shim's errno as a Python int, or NULL. */
static PyObject *bulk_run(BulkObject *self, const int32_t *sa)
{
    uint32_t a[6];
    PyObject *key, *plan, *h, *ep, *r = NULL, *got = NULL, *cnt = NULL, *packed = NULL;
    PyObject *backend_handle, *io, *argv[4];
    if (self->mem == NULL || self->mem->keep == NULL || self->generic == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "bulk_transfer released");
        return NULL;
    }
    uint64_t size, n, data, ret, timeout;
    int is_in, i, granted;
    for (i = 0; i < 6; i++)
        a[i] = (uint32_t)sa[i];
    /* key = (handle, endpoint) as the guest gave them (signed ints, as in Python) */
    h = PyLong_FromLong(sa[0]);
    ep = PyLong_FromLong(sa[1]);
    if (h == NULL || ep == NULL) {
        Py_XDECREF(h);
        Py_XDECREF(ep);
        return NULL;
    }
    key = PyTuple_Pack(2, h, ep);
    Py_DECREF(h);
    if (key == NULL) {
        Py_DECREF(ep);
        return NULL;
    }
    plan = PyDict_GetItemWithError(self->plans, key);   /* borrowed */
    if (plan == NULL) {
        Py_DECREF(key);
        Py_DECREF(ep);
        return PyErr_Occurred() ? NULL : call_generic(self, a, sa);
    }
    granted = PySet_Contains(self->granted, key);
    Py_DECREF(key);
    if (granted < 0) {
        Py_DECREF(ep);
        return NULL;
    }
    if (!granted || !PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != 3) {
        Py_DECREF(ep);
        return call_generic(self, a, sa);
    }
    backend_handle = PyTuple_GET_ITEM(plan, 0);
    io = PyTuple_GET_ITEM(plan, 1);
    is_in = PyObject_IsTrue(PyTuple_GET_ITEM(plan, 2));
    if (is_in < 0) {
        Py_DECREF(ep);
        return NULL;
    }
    data = a[2];
    n = a[3];
    ret = a[5];
    size = (uint64_t)mem_data_size(self->mem->ctx, &self->mem->mem);
    if (n > self->limit || data + n > size || ret + 4 > size || (n == 0 && is_in)) {
        Py_DECREF(ep);
        return call_generic(self, a, sa);
    }
    timeout = a[4];
    if (timeout && timeout > self->deadline)
        timeout = self->deadline;
    if (!timeout)
        timeout = self->default_timeout;   /* both as Python ints below */
    Py_INCREF(plan);   /* the I/O may change the plans: keep backend_handle and io alive */
    argv[0] = backend_handle;
    argv[1] = ep;
    argv[3] = PyLong_FromUnsignedLongLong(timeout);
    if (argv[3] == NULL)
        goto done;
    if (is_in) {
        Py_buffer buf;
        Py_ssize_t m;
        argv[2] = PyLong_FromUnsignedLongLong(n);
        if (argv[2] == NULL)
            goto done;
        got = PyObject_Vectorcall(io, argv, 4, NULL);
        Py_DECREF(argv[2]);
        if (got == NULL) {
            r = bulk_failed(self);
            goto done;
        }
        /* as Python: m = len(got); overflow if m > n; write bytes(got) */
        m = PyBytes_CheckExact(got) ? PyBytes_GET_SIZE(got) : PyObject_Size(got);
        if (m < 0) {
            r = bulk_failed(self);
            goto done;
        }
        if ((uint64_t)m > n) {
            PyObject *msg = PyUnicode_FromFormat("the device sent %zd bytes for a %llu-byte buffer",
                                                 m, (unsigned long long)n);
            if (msg != NULL) {
                PyObject *exc = PyObject_CallFunction(self->hwerror, "sO", "overflow", msg);
                Py_DECREF(msg);
                if (exc != NULL) {
                    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                    Py_DECREF(exc);
                }
            }
            r = bulk_failed(self);
            goto done;
        }
        if (m && PyBytes_CheckExact(got)) {     /* the common case: no buffer protocol */
            if (data + (uint64_t)m > (uint64_t)mem_data_size(self->mem->ctx, &self->mem->mem)) {
                PyErr_SetString(self->mem->fault, "guest memory shrank during a transfer");
                r = bulk_failed(self);
                goto done;
            }
            memcpy(mem_data(self->mem->ctx, &self->mem->mem) + data, PyBytes_AS_STRING(got),
                   (size_t)m);
        } else if (m) {
            uint64_t now;
            if (!PyBytes_CheckExact(got)) {
                PyObject *conv = PyUnicode_Check(got) || PyLong_Check(got)
                                     ? NULL : PyBytes_FromObject(got);
                if (conv == NULL) {
                    if (!PyErr_Occurred())
                        PyErr_Format(PyExc_TypeError, "cannot write %.100s to guest memory",
                                     Py_TYPE(got)->tp_name);
                    r = bulk_failed(self);
                    goto done;
                }
                Py_SETREF(got, conv);
            }
            if (PyObject_GetBuffer(got, &buf, PyBUF_SIMPLE) < 0) {
                r = bulk_failed(self);
                goto done;
            }
            now = (uint64_t)mem_data_size(self->mem->ctx, &self->mem->mem);
            if (data + (uint64_t)buf.len > now) {   /* cannot happen: memory does not shrink */
                PyBuffer_Release(&buf);
                PyErr_SetString(self->mem->fault, "guest memory shrank during a transfer");
                r = bulk_failed(self);
                goto done;
            }
            memcpy(mem_data(self->mem->ctx, &self->mem->mem) + data, buf.buf, (size_t)buf.len);
            PyBuffer_Release(&buf);
        }
        cnt = PyLong_FromSsize_t(m);
    } else {
        argv[2] = PyBytes_FromStringAndSize(
            (const char *)mem_data(self->mem->ctx, &self->mem->mem) + data, (Py_ssize_t)n);
        if (argv[2] == NULL)
            goto done;
        cnt = PyObject_Vectorcall(io, argv, 4, NULL);
        Py_DECREF(argv[2]);
    }
    if (cnt == NULL) {
        r = bulk_failed(self);
        goto done;
    }
    {
        unsigned char le[4];
        int overflow = 0;
        long long v = PyLong_CheckExact(cnt) ? PyLong_AsLongLongAndOverflow(cnt, &overflow) : -1;
        uint64_t now;
        if (!overflow && v >= 0 && v <= 0xFFFFFFFFLL) {   /* the common case, no call */
            le[0] = (unsigned char)v;
            le[1] = (unsigned char)(v >> 8);
            le[2] = (unsigned char)(v >> 16);
            le[3] = (unsigned char)(v >> 24);
        } else {
            PyErr_Clear();
            packed = PyObject_CallOneArg(self->pack, cnt);   /* struct.error, as in Python */
            if (packed == NULL || !PyBytes_Check(packed) || PyBytes_GET_SIZE(packed) != 4) {
                if (packed != NULL)
                    PyErr_SetString(PyExc_TypeError, "pack did not give 4 bytes");
                r = bulk_failed(self);
                goto done;
            }
            memcpy(le, PyBytes_AS_STRING(packed), 4);
        }
        now = (uint64_t)mem_data_size(self->mem->ctx, &self->mem->mem);
        if (ret + 4 > now) {
            PyErr_SetString(self->mem->fault, "guest memory shrank during a transfer");
            r = bulk_failed(self);
            goto done;
        }
        memcpy(mem_data(self->mem->ctx, &self->mem->mem) + ret, le, 4);
    }
    r = PyLong_FromLong(0);
done:
    Py_XDECREF(argv[3]);
    Py_XDECREF(got);
    Py_XDECREF(cnt);
    Py_XDECREF(packed);
    Py_DECREF(plan);
    Py_DECREF(ep);
    return r;
}

static PyObject *Bulk_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames)
{
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    int32_t sa[6];
    int i;
    if (n != 6 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "bulk_transfer takes 6 positional arguments");
        return NULL;
    }
    for (i = 0; i < 6; i++) {
        unsigned long long v;
        if (!PyLong_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError, "bulk_transfer takes ints");
            return NULL;
        }
        v = PyLong_AsUnsignedLongLongMask(args[i]);
        if (v == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
        sa[i] = (int32_t)(uint32_t)v;
    }
    return bulk_run((BulkObject *)self, sa);
}

static PyObject *Bulk_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *self = PyType_GenericNew(type, args, kw);
    if (self != NULL)
        ((BulkObject *)self)->vectorcall = Bulk_vectorcall;
    return self;
}

static PyObject *Bulk_call(PyObject *self, PyObject *args, PyObject *kw)
{
    return PyVectorcall_Call(self, args, kw);
}


static PyTypeObject BulkType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasi_hw.kernel._cnative.Bulk",
    .tp_basicsize = sizeof(BulkObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Bulk_traverse,
    .tp_clear = (inquiry)Bulk_clear,
    .tp_doc = "The fused wasi_usb.bulk_transfer (see kernel/_usb_fast.py).",
    .tp_new = Bulk_new,
    .tp_init = (initproc)Bulk_init,
    .tp_dealloc = (destructor)Bulk_dealloc,
    .tp_call = Bulk_call,
    .tp_vectorcall_offset = offsetof(BulkObject, vectorcall),
};

/* ---- I2c: the fused wasi_i2c.write_read / write / read in C ------------------------- */

enum { I2C_WRITE_READ, I2C_WRITE, I2C_READ };
static const int i2c_arity[] = {7, 5, 5};
static const char *const i2c_names[] = {"write_read", "write", "read"};

typedef struct I2cObject {
    PyObject_HEAD
    int kind;
    PyObject *rules;      /* dict handle -> the guard's compiled rule (I2cGuard._rules) */
    PyObject *handles;    /* dict handle -> (backend, bus, lock) (I2cHost's handle table) */
    PyObject *fallback;   /* the generic chain (generated shim -> guard -> host) */
    PyObject *fail;       /* fail(exc, name) -> errno */
    PyObject *write_op, *read_op, *wait, *deliver, *region;
    PyObject *wcache;     /* short written bytes -> write_op(bytes); n -> read_op(n): the host's
                             ops are immutable and cached by the host too, so a hit is the
                             very object write_op / read_op would return */
    PyObject *rcache;
    PyObject *name;
    MemoryObject *mem;
    uint64_t limit;
    vectorcallfunc vectorcall;
    /* the last rule seen, its tables loaded (rules are immutable once made; held strongly
       so its address cannot be reused while cached). No rule is decided here: the tables
       are the rule's own answers (kernel/_rules.py), looked up, never recomputed. */
    PyObject *rule;
    PyObject *addresses;
    int ten_bit, registers;
    int32_t wr_limit[256], w_limit[256];
} I2cObject;

static PyObject *s_addresses, *s_ten_bit, *s_registers, *s_transaction, *s_acquire, *s_release,
                *s_write_read_limit, *s_write_limit;

static int I2c_traverse(I2cObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->rules);
    Py_VISIT(self->handles);
    Py_VISIT(self->fallback);
    Py_VISIT(self->fail);
    Py_VISIT(self->write_op);
    Py_VISIT(self->read_op);
    Py_VISIT(self->wait);
    Py_VISIT(self->deliver);
    Py_VISIT(self->region);
    Py_VISIT(self->wcache);
    Py_VISIT(self->rcache);
    Py_VISIT(self->mem);
    Py_VISIT(self->rule);
    Py_VISIT(self->addresses);
    return 0;
}

static int I2c_clear(I2cObject *self)
{
    Py_CLEAR(self->rules);
    Py_CLEAR(self->handles);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->fail);
    Py_CLEAR(self->write_op);
    Py_CLEAR(self->read_op);
    Py_CLEAR(self->wait);
    Py_CLEAR(self->deliver);
    Py_CLEAR(self->region);
    Py_CLEAR(self->wcache);
    Py_CLEAR(self->rcache);
    Py_CLEAR(self->mem);
    Py_CLEAR(self->rule);
    Py_CLEAR(self->addresses);
    return 0;
}

static void I2c_dealloc(I2cObject *self)
{
    PyObject_GC_UnTrack(self);
    I2c_clear(self);
    Py_CLEAR(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int I2c_init(I2cObject *self, PyObject *args, PyObject *kw)
{
    PyObject *rules, *handles, *fallback, *fail, *write_op, *read_op, *wait, *deliver, *region,
             *mem;
    const char *kind;
    unsigned long long limit;
    int k;
    static char *names[] = {"kind", "rules", "handles", "fallback", "fail", "write_op",
                            "read_op", "wait", "deliver", "region", "memory", "limit", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sO!O!OOOOOOOO!K:I2c", names, &kind,
                                     &PyDict_Type, &rules, &PyDict_Type, &handles, &fallback,
                                     &fail, &write_op, &read_op, &wait, &deliver, &region,
                                     &MemoryType, &mem, &limit))
        return -1;
    for (k = 0; k < 3 && strcmp(kind, i2c_names[k]); k++)
        ;
    if (k == 3) {
        PyErr_Format(PyExc_ValueError, "I2c: unknown kind %s", kind);
        return -1;
    }
#define SETREF(field, v) do { Py_INCREF(v); Py_XSETREF(self->field, (v)); } while (0)
    SETREF(rules, rules);
    SETREF(handles, handles);
    SETREF(fallback, fallback);
    SETREF(fail, fail);
    SETREF(write_op, write_op);
    SETREF(read_op, read_op);
    SETREF(wait, wait);
    SETREF(deliver, deliver);
    SETREF(region, region);
#undef SETREF
    Py_INCREF(mem);
    Py_XSETREF(self->mem, (MemoryObject *)mem);
    Py_CLEAR(self->rule);
    Py_XSETREF(self->name, PyUnicode_InternFromString(i2c_names[k]));
    Py_XSETREF(self->wcache, PyDict_New());
    Py_XSETREF(self->rcache, PyDict_New());
    if (self->name == NULL || self->wcache == NULL || self->rcache == NULL)
        return -1;
    self->kind = k;
    self->limit = limit;
    return 0;
}

static PyObject *i2c_fallback(I2cObject *self, const int32_t *sa)
{
    PyObject *argv[7];
    PyObject *r = NULL;
    int i, made = 0, n = i2c_arity[self->kind];
    for (i = 0; i < n; i++) {
        if ((argv[i] = PyLong_FromLong(sa[i])) == NULL)
            break;
        made++;
    }
    if (made == n)
        r = PyObject_Vectorcall(self->fallback, argv, (size_t)n, NULL);
    for (i = 0; i < made; i++)
        Py_DECREF(argv[i]);
    return r;
}

/* ``attr`` of ``rule``: a bytes object of 256 little-endian int32 (the rule's table). */
static int load_table(PyObject *rule, PyObject *attr, int32_t *table)
{
    PyObject *b = PyObject_GetAttr(rule, attr);
    int i;
    if (b == NULL)
        return -1;
    if (!PyBytes_Check(b) || PyBytes_GET_SIZE(b) != 256 * 4) {
        Py_DECREF(b);
        PyErr_SetString(PyExc_ValueError, "a rule's table must be 1024 bytes");
        return -1;
    }
    for (i = 0; i < 256; i++) {
        const unsigned char *q = (const unsigned char *)PyBytes_AS_STRING(b) + 4 * i;
        table[i] = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                             (uint32_t)q[3] << 24);
    }
    Py_DECREF(b);
    return 0;
}

static int flag_attr(PyObject *rule, PyObject *attr)
{
    PyObject *v = PyObject_GetAttr(rule, attr);
    int r;
    if (v == NULL)
        return -1;
    r = PyObject_IsTrue(v);
    Py_DECREF(v);
    return r;
}

/* Make ``rule`` the cached one, its tables loaded (0), or -1. */
static int i2c_load(I2cObject *self, PyObject *rule)
{
    PyObject *addresses;
    Py_CLEAR(self->rule);
    if ((self->ten_bit = flag_attr(rule, s_ten_bit)) < 0 ||
        (self->registers = flag_attr(rule, s_registers)) < 0)
        return -1;
    if (self->registers &&
        (load_table(rule, s_write_read_limit, self->wr_limit) < 0 ||
         load_table(rule, s_write_limit, self->w_limit) < 0))
        return -1;
    if ((addresses = PyObject_GetAttr(rule, s_addresses)) == NULL)
        return -1;
    Py_XSETREF(self->addresses, addresses);
    Py_INCREF(rule);
    self->rule = rule;
    return 0;
}

/* 1: handle ``hkey`` is open in guard and host and ``addr`` (= ``a``) is granted in mode
   ``m`` (the handle's entry returned as a NEW reference; its rule loaded into ``self``);
   0: not so; -1: error. */
static int i2c_admit(I2cObject *self, PyObject *hkey, PyObject *addr, uint32_t a, uint32_t m,
                     PyObject **entry)
{
    PyObject *rule = PyDict_GetItemWithError(self->rules, hkey), *e;
    int ok;
    *entry = NULL;
    e = rule == NULL ? NULL : PyDict_GetItemWithError(self->handles, hkey);
    if (e == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!PyTuple_CheckExact(e) || PyTuple_GET_SIZE(e) != 3)
        return 0;
    Py_INCREF(e);             /* owned from here: what follows may run Python code */
    if (rule != self->rule) {
        Py_INCREF(rule);
        ok = i2c_load(self, rule);
        Py_DECREF(rule);
        if (ok < 0) {
            Py_DECREF(e);
            return -1;
        }
    }
    if (m > 1 || (m == 0 && a > 0x7F) || (m == 1 && (!self->ten_bit || a > 0x3FF)))
        ok = 0;
    else
        ok = PySequence_Contains(self->addresses, addr);
    if (ok <= 0) {
        Py_DECREF(e);
        return ok;
    }
    *entry = e;
    return 1;
}

/* Under register rules: 1 when the rule's table allows this call's shape, 0 when the
   generic chain must decide (it calls the rule's judge: the same answer, or the denial and
   its audit entry). ``raw`` is the written data (write, write_read). */
static int i2c_allowed(I2cObject *self, const uint8_t *raw, uint64_t wn, uint64_t rn)
{
    if (self->kind == I2C_WRITE_READ)
        return wn == 1 && (int64_t)rn <= (int64_t)self->wr_limit[raw[0]];
    if (self->kind == I2C_WRITE)
        return wn >= 1 && (int64_t)(wn - 1) <= (int64_t)self->w_limit[raw[0]];
    return 0;                 /* a read depends on a pointer no table knows */
}

/* The backend transaction under the bus lock (the host's timed wait when busy); new ref. */
static PyObject *i2c_transact(I2cObject *self, PyObject *entry, PyObject *addr, uint32_t m,
                              PyObject *wire)
{
    PyObject *backend = PyTuple_GET_ITEM(entry, 0), *bus = PyTuple_GET_ITEM(entry, 1),
             *lock = PyTuple_GET_ITEM(entry, 2);
    PyObject *got, *argv[5], *r, *type, *value, *tb;
    int held;
    argv[0] = lock;
    argv[1] = Py_False;
    if ((got = PyObject_VectorcallMethod(s_acquire, argv, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                         NULL)) == NULL)
        return NULL;
    held = PyObject_IsTrue(got);
    Py_DECREF(got);
    if (held < 0)
        return NULL;
    if (!held) {
        if ((got = PyObject_CallFunctionObjArgs(self->wait, lock, bus, NULL)) == NULL)
            return NULL;
        Py_DECREF(got);
    }
    argv[0] = backend;
    argv[1] = bus;
    argv[2] = addr;
    argv[3] = m == 1 ? Py_True : Py_False;
    argv[4] = wire;
    r = PyObject_VectorcallMethod(s_transaction, argv, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    PyErr_Fetch(&type, &value, &tb);      /* release, whatever happened */
    got = PyObject_CallMethodNoArgs(lock, s_release);
    if (got == NULL) {
        Py_XDECREF(r);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return NULL;
    }
    Py_DECREF(got);
    PyErr_Restore(type, value, tb);
    return r;
}

/* make(arg) through ``cache`` (new reference); ``arg`` is cached when ``keep``. */
static PyObject *memo_op(PyObject *cache, PyObject *make, PyObject *arg, int keep)
{
    PyObject *op = keep ? PyDict_GetItemWithError(cache, arg) : NULL;
    if (op != NULL) {
        Py_INCREF(op);
        return op;
    }
    if (PyErr_Occurred())
        return NULL;
    op = PyObject_CallOneArg(make, arg);
    if (op != NULL && keep && PyDict_GET_SIZE(cache) < 4096 && PyDict_SetItem(cache, arg, op) < 0)
        Py_CLEAR(op);
    return op;
}

/* One call, ``hkey`` and ``addr`` the handle and address as Python ints (made once). */
static PyObject *i2c_call(I2cObject *self, const int32_t *sa, PyObject *hkey, PyObject *addr)
{
    uint32_t a = (uint32_t)sa[1], m = (uint32_t)sa[2];
    uint64_t wp = 0, wn = 0, rp = 0, rn = 0, size;
    int kind = self->kind, ok, i, nops;
    PyObject *entry, *wire = NULL, *op, *results = NULL, *r = NULL;
    if (kind == I2C_WRITE_READ) {
        wp = (uint32_t)sa[3]; wn = (uint32_t)sa[4]; rp = (uint32_t)sa[5]; rn = (uint32_t)sa[6];
    } else if (kind == I2C_WRITE) {
        wp = (uint32_t)sa[3]; wn = (uint32_t)sa[4];
    } else {
        rp = (uint32_t)sa[3]; rn = (uint32_t)sa[4];
    }
    ok = i2c_admit(self, hkey, addr, a, m, &entry);     /* entry: a new reference */
    if (ok < 0)
        return NULL;
    if (!ok)
        return i2c_fallback(self, sa);
    size = (uint64_t)mem_data_size(self->mem->ctx, &self->mem->mem);
    if (wn + rn > self->limit || wp + wn > size || rp + rn > size ||
        (self->registers &&
         !i2c_allowed(self, mem_data(self->mem->ctx, &self->mem->mem) + wp, wn, rn))) {
        Py_DECREF(entry);
        return i2c_fallback(self, sa);
    }
    nops = (kind == I2C_WRITE_READ) + 1;
    if ((wire = PyList_New(nops)) == NULL)
        goto done;
    i = 0;
    if (kind != I2C_READ) {
        PyObject *raw = PyBytes_FromStringAndSize(
            (const char *)mem_data(self->mem->ctx, &self->mem->mem) + wp, (Py_ssize_t)wn);
        if (raw == NULL)
            goto done;
        op = memo_op(self->wcache, self->write_op, raw, wn <= 4);
        Py_DECREF(raw);
        if (op == NULL)
            goto failed;
        PyList_SET_ITEM(wire, i++, op);
    }
    if (kind != I2C_WRITE) {
        PyObject *n = PyLong_FromUnsignedLongLong(rn);
        if (n == NULL)
            goto done;
        op = memo_op(self->rcache, self->read_op, n, rn <= 256);
        Py_DECREF(n);
        if (op == NULL)
            goto failed;
        PyList_SET_ITEM(wire, i++, op);
    }
    if ((results = i2c_transact(self, entry, addr, m, wire)) == NULL)
        goto failed;
    if (kind == I2C_WRITE) {
        if (PyList_CheckExact(results) && PyList_GET_SIZE(results) == 0)
            goto ok;
    } else if (PyList_CheckExact(results) && PyList_GET_SIZE(results) == 1) {
        PyObject *data = PyList_GET_ITEM(results, 0);
        if (PyBytes_CheckExact(data) && (uint64_t)PyBytes_GET_SIZE(data) == rn) {
            if (rn) {
                if (rp + rn > (uint64_t)mem_data_size(self->mem->ctx, &self->mem->mem)) {
                    PyErr_SetString(self->mem->fault, "guest memory shrank during a transfer");
                    goto failed;
                }
                memcpy(mem_data(self->mem->ctx, &self->mem->mem) + rp, PyBytes_AS_STRING(data),
                       (size_t)rn);
            }
            goto ok;
        }
    }
    {   /* anything else: the host's own check and write-back */
        PyObject *target, *reads = NULL, *got;
        target = PyTuple_Pack(4, PyTuple_GET_ITEM(entry, 0), PyTuple_GET_ITEM(entry, 1),
                              PyTuple_GET_ITEM(entry, 2), m == 1 ? Py_True : Py_False);
        if (target == NULL)
            goto done;
        if (kind == I2C_WRITE) {
            reads = PyTuple_New(0);
        } else {
            PyObject *region = PyObject_CallFunction(self->region, "KK",
                                                     (unsigned long long)rp,
                                                     (unsigned long long)rn);
            if (region != NULL) {
                reads = Py_BuildValue("((O))", region);
                Py_DECREF(region);
            }
        }
        if (reads == NULL) {
            Py_DECREF(target);
            goto failed;
        }
        got = PyObject_CallFunctionObjArgs(self->deliver, target, results, reads, NULL);
        Py_DECREF(target);
        Py_DECREF(reads);
        if (got == NULL)
            goto failed;
        Py_DECREF(got);
    }
ok:
    r = PyLong_FromLong(0);
    goto done;
failed:
    r = failed(self->fail, self->name);
done:
    Py_XDECREF(wire);
    Py_XDECREF(results);
    Py_DECREF(entry);
    return r;
}

static PyObject *i2c_run(I2cObject *self, const int32_t *sa)
{
    PyObject *hkey, *addr, *r = NULL;
    if (self->mem == NULL || self->mem->keep == NULL || self->fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the I2C call was released");
        return NULL;
    }
    hkey = PyLong_FromUnsignedLong((uint32_t)sa[0]);
    if (hkey == NULL)
        return NULL;
    addr = PyLong_FromUnsignedLong((uint32_t)sa[1]);
    if (addr != NULL)
        r = i2c_call(self, sa, hkey, addr);
    Py_XDECREF(addr);
    Py_DECREF(hkey);
    return r;
}

static PyObject *I2c_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                PyObject *kwnames)
{
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    int kind = ((I2cObject *)self)->kind, i;
    int32_t sa[7];
    if (n != i2c_arity[kind] || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_Format(PyExc_TypeError, "%s takes %d positional arguments", i2c_names[kind],
                     i2c_arity[kind]);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        unsigned long long v;
        if (!PyLong_Check(args[i])) {
            PyErr_Format(PyExc_TypeError, "%s takes ints", i2c_names[kind]);
            return NULL;
        }
        v = PyLong_AsUnsignedLongLongMask(args[i]);
        if (v == (unsigned long long)-1 && PyErr_Occurred())
            return NULL;
        sa[i] = (int32_t)(uint32_t)v;
    }
    return i2c_run((I2cObject *)self, sa);
}

static PyObject *I2c_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    PyObject *self = PyType_GenericNew(type, args, kw);
    if (self != NULL)
        ((I2cObject *)self)->vectorcall = I2c_vectorcall;
    return self;
}

static int i2c_nargs(PyObject *fn) { return i2c_arity[((I2cObject *)fn)->kind]; }

static PyTypeObject I2cType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasi_hw.kernel._cnative.I2c",
    .tp_basicsize = sizeof(I2cObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)I2c_traverse,
    .tp_clear = (inquiry)I2c_clear,
    .tp_doc = "The fused wasi_i2c.write_read / write / read (see kernel/_i2c_fast.py).",
    .tp_new = I2c_new,
    .tp_init = (initproc)I2c_init,
    .tp_dealloc = (destructor)I2c_dealloc,
    .tp_call = Bulk_call,
    .tp_vectorcall_offset = offsetof(I2cObject, vectorcall),
};

/* ---- Entry ------------------------------------------------------------------------- */

typedef struct { unsigned char opaque[16]; } wt_func_t;   /* wasmtime 50: {u64 store_id; void*} */

typedef struct {
    PyObject_HEAD
    void *ctx;
    wt_func_t func;
    PyObject *keep;
} EntryObject;

static int Entry_traverse(EntryObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->keep);
    return 0;
}

static int Entry_clear(EntryObject *self)
{
    Py_CLEAR(self->keep);
    return 0;
}

static void Entry_dealloc(EntryObject *self)
{
    PyObject_GC_UnTrack(self);
    Entry_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Entry_init(EntryObject *self, PyObject *args, PyObject *kw)
{
    unsigned long long ctx;
    Py_buffer func;
    PyObject *keep;
    static char *names[] = {"context", "func", "keep", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Ky*O:Entry", names, &ctx, &func, &keep))
        return -1;
    if (func.len != (Py_ssize_t)sizeof(wt_func_t) || !ctx) {
        PyBuffer_Release(&func);
        PyErr_SetString(PyExc_ValueError, "Entry: bad context or function handle");
        return -1;
    }
    memcpy(&self->func, func.buf, sizeof(wt_func_t));
    PyBuffer_Release(&func);
    self->ctx = (void *)(uintptr_t)ctx;
    Py_INCREF(keep);
    Py_XSETREF(self->keep, keep);
    return 0;
}

/* call(ticks[, table]): set the epoch deadline, enter the () -> i32 export with the GIL
   released, return its (signed) result; a trap or error raises Trapped(error_address,
   trap_address). With ``table`` (not None), it is this thread's shim table for the call and
   the previous one is restored afterwards, whatever the outcome. */
static PyObject *Entry_call(EntryObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long long ticks;
    val_raw_t slot;
    void *err, *trap = NULL;
    PyObject *table = NULL, *prev = NULL;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "call(ticks[, table]) takes 1 or 2 arguments");
        return NULL;
    }
    if (self->keep == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the store of this entry was released");
        return NULL;
    }
    ticks = PyLong_AsUnsignedLongLong(args[0]);
    if (ticks == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (call_unchecked == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "wasi_hw native calls are not configured");
        return NULL;
    }
    if (nargs == 2 && args[1] != Py_None) {
        table = args[1];
        Py_INCREF(table);
        prev = current;            /* owned by this frame until restored */
        current = table;
    }
    memset(&slot, 0, sizeof(slot));
    set_deadline(self->ctx, (uint64_t)ticks);
    Py_BEGIN_ALLOW_THREADS
    err = call_unchecked(self->ctx, &self->func, &slot, 1, &trap);
    Py_END_ALLOW_THREADS
    if (table != NULL) {
        PyObject *mine = current;  /* the table, unless a host function swapped it */
        current = prev;
        Py_XDECREF(mine);
    }
    if (err != NULL || trap != NULL) {
        PyObject *v = Py_BuildValue("(KK)", (unsigned long long)(uintptr_t)err,
                                    (unsigned long long)(uintptr_t)trap);
        if (v != NULL) {
            PyErr_SetObject(Trapped, v);
            Py_DECREF(v);
        }
        return NULL;
    }
    return PyLong_FromLong(slot.i32);
}

static PyMethodDef Entry_methods[] = {
    {"call", (PyCFunction)(void (*)(void))Entry_call, METH_FASTCALL,
     "call(ticks[, table]) -> int: enter the export (with this thread's shim table)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EntryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasi_hw.kernel._cnative.Entry",
    .tp_basicsize = sizeof(EntryObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Entry_traverse,
    .tp_clear = (inquiry)Entry_clear,
    .tp_doc = "Entering one () -> i32 export through the unchecked C API (see the module).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Entry_init,
    .tp_dealloc = (destructor)Entry_dealloc,
    .tp_methods = Entry_methods,
};

/* ---- Ticker ------------------------------------------------------------------------ */

typedef void (*incr_t)(void *);

typedef struct {
    PyObject_HEAD
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, stopping, joined;
    incr_t incr;
    void *engine;
    long long period_ns;
    PyObject *keep;
} TickerObject;

static void ts_add(struct timespec *t, long long ns)
{
    long long total = (long long)t->tv_nsec + ns;
    t->tv_sec += (time_t)(total / 1000000000LL);
    t->tv_nsec = (long)(total % 1000000000LL);
}

/* Ticks are at least period_ns apart, never bursts to catch up: a guest given N ticks
   runs at least (N - 1) periods, however late this thread was scheduled. */
static void *ticker_main(void *arg)
{
    TickerObject *t = (TickerObject *)arg;
    struct timespec next;
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        int rc = 0;
        clock_gettime(CLOCK_MONOTONIC, &next);
        ts_add(&next, t->period_ns);
        while (!t->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&t->cv, &t->mu, &next);
        if (t->stopping)
            break;
        pthread_mutex_unlock(&t->mu);
        t->incr(t->engine);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void ticker_stop(TickerObject *t)
{
    if (!t->started || t->joined)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(t->thread, NULL);
    Py_END_ALLOW_THREADS
    t->joined = 1;
}

static int Ticker_init(TickerObject *self, PyObject *args, PyObject *kw)
{
    unsigned long long incr, engine;
    long long period;
    PyObject *keep;
    pthread_condattr_t attr;
    static char *names[] = {"increment_epoch", "engine", "period_ns", "keep", NULL};
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "Ticker: already started");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KKLO:Ticker", names, &incr, &engine, &period, &keep))
        return -1;
    if (!incr || !engine || period <= 0) {
        PyErr_SetString(PyExc_ValueError, "Ticker: bad function, engine or period");
        return -1;
    }
    self->incr = (incr_t)(uintptr_t)incr;
    self->engine = (void *)(uintptr_t)engine;
    self->period_ns = period;
    Py_INCREF(keep);
    Py_XSETREF(self->keep, keep);
    pthread_mutex_init(&self->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&self->thread, NULL, ticker_main, self) != 0) {
        PyErr_SetString(PyExc_OSError, "Ticker: cannot start its thread");
        return -1;
    }
    self->started = 1;
    return 0;
}

static PyObject *Ticker_stop(TickerObject *self, PyObject *noargs)
{
    ticker_stop(self);
    Py_RETURN_NONE;
}

static PyObject *Ticker_running(TickerObject *self, PyObject *noargs)
{
    return PyBool_FromLong(self->started && !self->joined);
}

static int Ticker_traverse(TickerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->keep);
    return 0;
}

static int Ticker_clear(TickerObject *self)
{
    ticker_stop(self);        /* the thread uses the engine: joined before it may go */
    Py_CLEAR(self->keep);
    return 0;
}

static void Ticker_dealloc(TickerObject *self)
{
    PyObject_GC_UnTrack(self);
    ticker_stop(self);
    if (self->started) {
        pthread_cond_destroy(&self->cv);
        pthread_mutex_destroy(&self->mu);
    }
    Py_XDECREF(self->keep);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Ticker_methods[] = {
    {"stop", (PyCFunction)Ticker_stop, METH_NOARGS, "Stop and join the thread (idempotent)."},
    {"running", (PyCFunction)Ticker_running, METH_NOARGS, "True until stopped."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TickerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wasi_hw.kernel._cnative.Ticker",
    .tp_basicsize = sizeof(TickerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Ticker_traverse,
    .tp_clear = (inquiry)Ticker_clear,
    .tp_doc = "An epoch ticker thread that never takes the GIL (see the module).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ticker_init,
    .tp_dealloc = (destructor)Ticker_dealloc,
    .tp_methods = Ticker_methods,
};

static PyMethodDef module_methods[] = {
    {"configure", n_configure, METH_VARARGS, "Set wasmtime's function addresses and defaults."},
    {"new_slot", n_new_slot, METH_VARARGS, "A C record for one import: its env address."},
    {"trampoline", n_trampoline, METH_NOARGS, "The C host-call callback's address."},
    {"finalizer", n_finalizer, METH_NOARGS, "The slot finalizer's address."},
    {"set_current", n_set_current, METH_O, "Set this thread's shim table; the previous one."},
    {"get_current", n_get_current, METH_NOARGS, "This thread's shim table."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cnative", "The native half of the fast host-call path.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__cnative(void)
{
    PyObject *m;
    if (PyType_Ready(&MemoryType) < 0 || PyType_Ready(&TickerType) < 0 ||
        PyType_Ready(&EntryType) < 0 || PyType_Ready(&BulkType) < 0 ||
        PyType_Ready(&I2cType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&MemoryType);
    if (PyModule_AddObject(m, "Memory", (PyObject *)&MemoryType) < 0) {
        Py_DECREF(&MemoryType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&TickerType);
    if (PyModule_AddObject(m, "Ticker", (PyObject *)&TickerType) < 0) {
        Py_DECREF(&TickerType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&BulkType);
    if (PyModule_AddObject(m, "Bulk", (PyObject *)&BulkType) < 0) {
        Py_DECREF(&BulkType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "I2c", (PyObject *)&I2cType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) { Py_DECREF(m); return NULL; }
    INTERN(s_addresses, "addresses")
    INTERN(s_ten_bit, "ten_bit")
    INTERN(s_registers, "registers")
    INTERN(s_transaction, "transaction")
    INTERN(s_acquire, "acquire")
    INTERN(s_release, "release")
    INTERN(s_write_read_limit, "write_read_limit")
    INTERN(s_write_limit, "write_limit")
#undef INTERN
    Py_INCREF(&EntryType);
    if (PyModule_AddObject(m, "Entry", (PyObject *)&EntryType) < 0) {
        Py_DECREF(&EntryType);
        Py_DECREF(m);
        return NULL;
    }
    Trapped = PyErr_NewException("wasi_hw.kernel._cnative.Trapped", NULL, NULL);
    if (Trapped == NULL || PyModule_AddObjectRef(m, "Trapped", Trapped) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "FUNC_SIZE", (long)sizeof(wt_func_t)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "SLOT_SIZE", (long)sizeof(val_raw_t)) < 0 ||
        PyModule_AddIntConstant(m, "MEMORY_SIZE", (long)sizeof(wt_memory_t)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
