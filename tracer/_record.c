/* tracer._record: the recording hot path in C.
 *
 * The same work as the methods `tracer/tracing.py` generates and `TraceWriter.record`, done
 * without a Python frame a call: time the inner call, encode the event straight into msgpack
 * bytes (interned values looked up in the dicts of `tracer.trace.writer.Tables`, which also
 * defines new ids on a miss), and append it to the chunk being filled. The bytes are exactly
 * what the pure-Python path gives (tests/test_native_recorder.py compares them), so the trace
 * format has one definition: the Python one in tracer/trace/. Why it exists: the Python frame,
 * clock calls and msgpack objects of an event cost more than the 10% of a run that recording
 * may add (docs/dev/record-overhead.md).
 *
 * Two types:
 *   Recording(tables, flush, errors, wasi_error, digest, op_kinds, chunk_events, inline_bytes,
 *             max_stats)
 *       the pending events of one TraceWriter; take() hands them over as (payload, count),
 *       take_stats() the chunk's stat definitions likewise (stats are interned here whole);
 *       record() encodes one event given as values; recorder() makes a Recorder.
 *   Recorder   one operation of one inner backend: calling it calls the inner backend and
 *       records the call. `__wrapped__` is the generated Python method with the operation's
 *       signature, for inspect.signature and for error messages.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <time.h>

/* Kinds: the values of tracer.trace.format.Kind. */
enum { K_NONE = 0, K_INT, K_TIMESTAMP, K_STR, K_ENUM, K_BYTES, K_STAT, K_ENTRIES, K_STRINGS,
       K_PAIRS, K_COUNT };

#define MAX_PARAMS 8
#define MAX_OPS 128 /* flags (2 * code + 1) must stay one-byte positive fixints */

/* -- growable byte buffer ---------------------------------------------------------------- */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
    char local[512];
} Buf;

static void buf_init(Buf *b) {
    b->data = b->local;
    b->len = 0;
    b->cap = sizeof b->local;
}

static void buf_free(Buf *b) {
    if (b->data != b->local) PyMem_Free(b->data);
    buf_init(b);
}

static int buf_grow(Buf *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap;
    while (cap - b->len < need) cap *= 2;
    char *data;
    if (b->data == b->local) {
        data = PyMem_Malloc(cap);
        if (data) memcpy(data, b->local, b->len);
    } else {
        data = PyMem_Realloc(b->data, cap);
    }
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (b->cap - b->len < n && buf_grow(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static inline int put_byte(Buf *b, unsigned char c) {
    if (b->cap - b->len < 1 && buf_grow(b, 1) < 0) return -1;
    b->data[b->len++] = (char)c;
    return 0;
}

static int put_be(Buf *b, unsigned char marker, unsigned long long v, int size) {
    unsigned char out[9];
    out[0] = marker;
    for (int i = 0; i < size; i++) out[1 + i] = (unsigned char)(v >> (8 * (size - 1 - i)));
    return buf_put(b, out, 1 + size);
}

/* -- msgpack, as msgpack-python packs with its default options -------------------------- */
static int pack_int(Buf *b, long long v) {
    if (v >= 0) {
        unsigned long long u = (unsigned long long)v;
        if (u < 128) return put_byte(b, (unsigned char)u);
        if (u <= 0xFF) return put_be(b, 0xCC, u, 1);
        if (u <= 0xFFFF) return put_be(b, 0xCD, u, 2);
        if (u <= 0xFFFFFFFFULL) return put_be(b, 0xCE, u, 4);
        return put_be(b, 0xCF, u, 8);
    }
    if (v >= -32) return put_byte(b, (unsigned char)(v & 0xFF));
    if (v >= -128) return put_be(b, 0xD0, (unsigned long long)v & 0xFF, 1);
    if (v >= -32768) return put_be(b, 0xD1, (unsigned long long)v & 0xFFFF, 2);
    if (v >= -2147483648LL) return put_be(b, 0xD2, (unsigned long long)v & 0xFFFFFFFFULL, 4);
    return put_be(b, 0xD3, (unsigned long long)v, 8);
}

static int pack_pylong(Buf *b, PyObject *o) {
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        return put_be(b, 0xCF, u, 8);
    }
    if (overflow < 0) {
        PyErr_SetString(PyExc_OverflowError, "Integer value out of range");
        return -1;
    }
    if (v == -1 && PyErr_Occurred()) return -1;
    return pack_int(b, v);
}

static int pack_header(Buf *b, Py_ssize_t n, unsigned char fix, int fixmax, unsigned char m8,
                       unsigned char m16, unsigned char m32) {
    if (n < fixmax) return put_byte(b, (unsigned char)(fix | n));
    if (m8 && n <= 0xFF) return put_be(b, m8, (unsigned long long)n, 1);
    if (n <= 0xFFFF) return put_be(b, m16, (unsigned long long)n, 2);
    return put_be(b, m32, (unsigned long long)n, 4);
}

static int pack_bin(Buf *b, const char *data, Py_ssize_t n) {
    if (n <= 0xFF) {
        if (put_be(b, 0xC4, (unsigned long long)n, 1) < 0) return -1;
    } else if (pack_header(b, n, 0, 0, 0, 0xC5, 0xC6) < 0) {
        return -1;
    }
    return buf_put(b, data, n);
}

static int pack_obj(Buf *b, PyObject *o, int depth);

static int pack_seq(Buf *b, PyObject *o, int depth) {
    PyObject *fast = PySequence_Fast(o, "a sequence");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **items = PySequence_Fast_ITEMS(fast);
    int rc = pack_header(b, n, 0x90, 16, 0, 0xDC, 0xDD);
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) rc = pack_obj(b, items[i], depth + 1);
    Py_DECREF(fast);
    return rc;
}

/* None, bools, ints, str, bytes-likes and lists/tuples of them: the values that events carry
 * as they are (Kind.INT, TIMESTAMP, STRINGS, PAIRS and ids). */
static int pack_obj(Buf *b, PyObject *o, int depth) {
    if (depth > 32) {
        PyErr_SetString(PyExc_ValueError, "recursion limit exceeded");
        return -1;
    }
    if (o == Py_None) return put_byte(b, 0xC0);
    if (o == Py_True) return put_byte(b, 0xC3);
    if (o == Py_False) return put_byte(b, 0xC2);
    if (PyLong_Check(o)) return pack_pylong(b, o);
    if (PyUnicode_Check(o)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s) return -1;
        if (pack_header(b, n, 0xA0, 32, 0xD9, 0xDA, 0xDB) < 0) return -1;
        return buf_put(b, s, n);
    }
    if (PyBytes_Check(o)) return pack_bin(b, PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
    if (PyList_Check(o) || PyTuple_Check(o)) return pack_seq(b, o, depth);
    if (PyObject_CheckBuffer(o)) {
        Py_buffer view;
        if (PyObject_GetBuffer(o, &view, PyBUF_CONTIG_RO) < 0) return -1;
        int rc = pack_bin(b, view.buf, view.len);
        PyBuffer_Release(&view);
        return rc;
    }
    PyErr_Format(PyExc_TypeError, "can not serialize %R object", (PyObject *)Py_TYPE(o));
    return -1;
}

/* -- Recording ---------------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    PyObject *strings, *blobs, *stats;              /* the dicts of Tables */
    PyObject *def_string, *def_blob, *entries; /* Tables methods, on a miss */
    PyObject *flush, *errors, *wasi_error, *digest, *code_name;
    /* Stat interning is done here whole (Tables.stat is the Python original): the next id,
     * the definitions of the chunk being filled, already encoded, and their delta bases. */
    long long n_stats;
    Py_ssize_t max_stats, n_stat_values;
    PyObject *base_device, *base_inode, *base_time;
    Buf stat_defs;
    PyObject *last_stat, *last_stat_id; /* the stat seen last and its id in `stats` */
    PyObject *type_member, *type_str;   /* the last stat type seen, and its value as a str */
    unsigned char kinds[MAX_OPS][MAX_PARAMS + 1]; /* per op: param kinds, then the result's */
    unsigned char nparams[MAX_OPS];
    int n_ops;
    Py_ssize_t chunk_events, inline_bytes, pending;
    Buf events;
    unsigned long long counts[2 * MAX_OPS];
} Recording;

static int rec_traverse(Recording *self, visitproc visit, void *arg) {
    Py_VISIT(self->strings);
    Py_VISIT(self->blobs);
    Py_VISIT(self->stats);
    Py_VISIT(self->def_string);
    Py_VISIT(self->def_blob);
    Py_VISIT(self->entries);
    Py_VISIT(self->flush);
    Py_VISIT(self->errors);
    Py_VISIT(self->wasi_error);
    Py_VISIT(self->digest);
    Py_VISIT(self->last_stat);
    Py_VISIT(self->type_member);
    return 0;
}

static int rec_clear(Recording *self) {
    Py_CLEAR(self->strings);
    Py_CLEAR(self->blobs);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->def_string);
    Py_CLEAR(self->def_blob);
    Py_CLEAR(self->entries);
    Py_CLEAR(self->flush);
    Py_CLEAR(self->errors);
    Py_CLEAR(self->wasi_error);
    Py_CLEAR(self->digest);
    Py_CLEAR(self->last_stat);
    Py_CLEAR(self->last_stat_id);
    Py_CLEAR(self->type_member);
    Py_CLEAR(self->type_str);
    return 0;
}

static void rec_dealloc(Recording *self) {
    PyObject_GC_UnTrack(self);
    rec_clear(self);
    Py_XDECREF(self->code_name);
    Py_XDECREF(self->base_device);
    Py_XDECREF(self->base_inode);
    Py_XDECREF(self->base_time);
    if (self->events.data != self->events.local) PyMem_Free(self->events.data);
    if (self->stat_defs.data != self->stat_defs.local) PyMem_Free(self->stat_defs.data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *rec_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Recording *self = (Recording *)type->tp_alloc(type, 0);
    if (self) {
        buf_init(&self->events);
        buf_init(&self->stat_defs);
    }
    return (PyObject *)self;
}

static int reset_bases(Recording *self);

static int get_attr(PyObject *tables, const char *name, PyObject **out) {
    *out = PyObject_GetAttrString(tables, name);
    return *out ? 0 : -1;
}

static int rec_init(Recording *self, PyObject *args, PyObject *kw) {
    PyObject *tables, *flush, *errors, *wasi_error, *digest, *op_kinds;
    Py_ssize_t chunk_events, inline_bytes, max_stats;
    if (!PyArg_ParseTuple(args, "OOO!OOO!nnn", &tables, &flush, &PyDict_Type, &errors,
                          &wasi_error, &digest, &PyList_Type, &op_kinds, &chunk_events,
                          &inline_bytes, &max_stats))
        return -1;
    rec_clear(self);
    self->max_stats = max_stats;
    if (reset_bases(self) < 0) return -1;
    if (get_attr(tables, "strings", &self->strings) || get_attr(tables, "blobs", &self->blobs) ||
        get_attr(tables, "stats", &self->stats) || get_attr(tables, "string", &self->def_string) ||
        get_attr(tables, "blob", &self->def_blob) || get_attr(tables, "entries", &self->entries))
        return -1;
    if (!PyDict_Check(self->strings) || !PyDict_Check(self->blobs) || !PyDict_Check(self->stats)) {
        PyErr_SetString(PyExc_TypeError, "Recording needs the dicts of a Tables");
        return -1;
    }
    Py_INCREF(flush);
    self->flush = flush;
    Py_INCREF(errors);
    self->errors = errors;
    Py_INCREF(wasi_error);
    self->wasi_error = wasi_error;
    Py_INCREF(digest);
    self->digest = digest;
    if (!self->code_name && !(self->code_name = PyUnicode_InternFromString("code"))) return -1;
    Py_ssize_t n_ops = PyList_GET_SIZE(op_kinds);
    if (n_ops > MAX_OPS / 2 - 1) {
        PyErr_SetString(PyExc_ValueError, "too many operations for one-byte event flags");
        return -1;
    }
    for (Py_ssize_t op = 0; op < n_ops; op++) {
        /* each entry: bytes of the param kinds followed by the result kind */
        PyObject *k = PyList_GET_ITEM(op_kinds, op);
        if (!PyBytes_Check(k) || PyBytes_GET_SIZE(k) < 1 || PyBytes_GET_SIZE(k) > MAX_PARAMS + 1) {
            PyErr_SetString(PyExc_ValueError, "op_kinds: bytes of 1 to 9 kinds an operation");
            return -1;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(k);
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned char kind = (unsigned char)PyBytes_AS_STRING(k)[i];
            if (kind >= K_COUNT) {
                PyErr_SetString(PyExc_ValueError, "op_kinds: unknown kind");
                return -1;
            }
            self->kinds[op][i] = kind;
        }
        self->nparams[op] = (unsigned char)(n - 1);
    }
    self->n_ops = (int)n_ops;
    self->chunk_events = chunk_events;
    self->inline_bytes = inline_bytes;
    return 0;
}

static int pack_interned(Buf *b, PyObject *table, PyObject *define, PyObject *value);

/* -- stat definitions: Tables.stat, in C ---------------------------------------------------
 * The same steps in the same order as tracer.trace.writer.Tables.stat, which stays the
 * definition (tests/test_native_recorder.py compares the bytes): a new stat gets the next id and
 * its fields are appended to the chunk's definitions, device, inode and timestamps as deltas
 * from the previous definition in the same chunk. Here the definitions are encoded at once;
 * take_stats() hands them to TraceWriter.flush and starts the bases anew, as Tables.take does. */
static int reset_bases(Recording *self) {
    PyObject *zero = PyLong_FromLong(0);
    if (!zero) return -1;
    Py_INCREF(zero);
    Py_INCREF(zero);
    Py_XSETREF(self->base_device, zero);
    Py_XSETREF(self->base_inode, zero);
    Py_XSETREF(self->base_time, zero);
    self->stat_defs.len = 0;
    self->n_stat_values = 0;
    return 0;
}

/* Encodes value - *base (nil for a missing timestamp, which leaves the base as it is) and
 * makes value the base if `move`. */
static int pack_delta(Buf *b, PyObject *value, PyObject **base, int move) {
    if (value == Py_None) return put_byte(b, 0xC0);
    int rc;
    int ov = 1, ob = 1;
    long long v = 0, w = 0, d = 0;
    if (PyLong_CheckExact(value) && PyLong_CheckExact(*base)) {
        v = PyLong_AsLongLongAndOverflow(value, &ov);
        w = PyLong_AsLongLongAndOverflow(*base, &ob);
    }
    if (!ov && !ob && !__builtin_sub_overflow(v, w, &d)) {
        rc = pack_int(b, d); /* the common case: no Python int made for the delta */
    } else {
        /* past 64 bits: below msgpack's smallest int, a delta is stored plus 2**64, as
         * Tables.stat does (U64_WRAP in tracer/trace/format.py) */
        PyObject *delta = PyNumber_Subtract(value, *base);
        if (!delta) return -1;
        int below;
        (void)PyLong_AsLongLongAndOverflow(delta, &below);
        if (below < 0) {
            static PyObject *wrap;
            if (!wrap) wrap = PyLong_FromString("18446744073709551616", NULL, 10);
            Py_SETREF(delta, wrap ? PyNumber_Add(delta, wrap) : NULL);
            if (!delta) return -1;
        }
        rc = pack_obj(b, delta, 0);
        Py_DECREF(delta);
    }
    if (rc == 0 && move) {
        Py_INCREF(value);
        Py_SETREF(*base, value);
    }
    return rc;
}

static PyObject *define_stat(Recording *self, PyObject *value) {
    if (!PyTuple_Check(value) || PyTuple_GET_SIZE(value) != 8) {
        PyErr_Format(PyExc_TypeError, "a stat must be a DescriptorStat, not %R", value);
        return NULL;
    }
    if (PyDict_GET_SIZE(self->stats) >= self->max_stats) {
        PyDict_Clear(self->stats);
        Py_CLEAR(self->last_stat);
        Py_CLEAR(self->last_stat_id);
    }
    PyObject *sid = PyLong_FromLongLong(self->n_stats);
    if (!sid) return NULL;
    /* Keyed by a plain tuple of the fields, the type as a plain str (equal to the stat and
     * hashed alike): the collector stops tracking a tuple of numbers and plain strings, while
     * every DescriptorStat kept (its type an enum member) would be traversed by each full
     * collection, which then come the more often the more there are. */
    PyObject *key = PyTuple_New(8);
    if (!key) {
        Py_DECREF(sid);
        return NULL;
    }
    for (int i = 0; i < 8; i++) {
        PyObject *item = PyTuple_GET_ITEM(value, i);
        if (PyUnicode_Check(item) && !PyUnicode_CheckExact(item)) {
            /* a str subclass's value as a true str; the last one is kept for the next stat */
            if (item != self->type_member) {
                PyObject *plain = PyUnicode_FromObject(item);
                if (!plain) {
                    Py_DECREF(key);
                    Py_DECREF(sid);
                    return NULL;
                }
                Py_INCREF(item);
                Py_XSETREF(self->type_member, item);
                Py_XSETREF(self->type_str, plain);
            }
            item = self->type_str;
            Py_INCREF(item);
        } else {
            Py_INCREF(item);
        }
        PyTuple_SET_ITEM(key, i, item);
    }
    int set = PyDict_SetItem(self->stats, key, sid);
    Py_DECREF(key);
    if (set < 0) {
        Py_DECREF(sid);
        return NULL;
    }
    self->n_stats++;
    PyObject **v = &PyTuple_GET_ITEM(value, 0);
    Buf *b = &self->stat_defs;
    /* device, inode, then the type's string id (defined first if new, as Tables.stat does) */
    Buf fields;
    buf_init(&fields);
    int rc = pack_delta(&fields, v[0], &self->base_device, 0);
    if (rc == 0) rc = pack_delta(&fields, v[1], &self->base_inode, 0);
    if (rc == 0) rc = pack_interned(&fields, self->strings, self->def_string, v[2]);
    if (rc == 0) rc = pack_obj(&fields, v[3], 0);
    if (rc == 0) rc = pack_obj(&fields, v[4], 0);
    for (int i = 5; rc == 0 && i < 8; i++) rc = pack_delta(&fields, v[i], &self->base_time, 1);
    if (rc == 0) rc = buf_put(b, fields.data, fields.len);
    buf_free(&fields);
    if (rc < 0) {
        Py_DECREF(sid);
        return NULL;
    }
    Py_INCREF(v[0]);
    Py_SETREF(self->base_device, v[0]);
    Py_INCREF(v[1]);
    Py_SETREF(self->base_inode, v[1]);
    self->n_stat_values += 8;
    return sid;
}

/* Equal as tuples are, field by field: what a dict lookup would find equal. */
static int same_stat(PyObject *a, PyObject *b) {
    if (!a || !PyTuple_Check(b) || Py_TYPE(a) != Py_TYPE(b) ||
        PyTuple_GET_SIZE(a) != PyTuple_GET_SIZE(b))
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(a); i++) {
        PyObject *x = PyTuple_GET_ITEM(a, i), *y = PyTuple_GET_ITEM(b, i);
        if (x == y) continue;
        if (PyLong_CheckExact(x) && PyLong_CheckExact(y)) {
            /* fields of a stat fit in 64 bits; compare as C integers where they do */
            int ox, oy;
            long long vx = PyLong_AsLongLongAndOverflow(x, &ox);
            long long vy = PyLong_AsLongLongAndOverflow(y, &oy);
            if (!ox && !oy) {
                if (vx != vy) return 0;
                continue;
            }
        }
        int eq = PyObject_RichCompareBool(x, y, Py_EQ);
        if (eq <= 0) return eq;
    }
    return 1;
}

static int pack_stat(Recording *self, Buf *b, PyObject *value) {
    /* A guest that stats a file again before it changes gets the same stat: compared with the
     * last one, it needs no hashing of its eight fields. The table is only ever cleared
     * whole (which forgets the last stat too), so the last stat's id is still its id there. */
    int same = same_stat(self->last_stat, value);
    if (same < 0) return -1;
    if (same) return pack_pylong(b, self->last_stat_id);
    PyObject *id = PyDict_GetItemWithError(self->stats, value);
    if (id) {
        Py_INCREF(id);
    } else if (PyErr_Occurred() || !(id = define_stat(self, value))) {
        return -1;
    }
    int rc = pack_pylong(b, id);
    Py_INCREF(value);
    Py_XSETREF(self->last_stat, value);
    Py_XSETREF(self->last_stat_id, id);
    return rc;
}

/* An id from an interning dict, or from the Tables method that defines it on a miss. */
static int pack_interned(Buf *b, PyObject *table, PyObject *define, PyObject *value) {
    PyObject *id = PyDict_GetItemWithError(table, value);
    if (id) return pack_pylong(b, id);
    if (PyErr_Occurred()) return -1;
    id = PyObject_CallOneArg(define, value);
    if (!id) return -1;
    int rc = pack_pylong(b, id);
    Py_DECREF(id);
    return rc;
}

static int pack_bytes(Recording *self, Buf *b, PyObject *value) {
    PyObject *data;
    if (PyBytes_CheckExact(value)) {
        Py_INCREF(value);
        data = value;
    } else {
        /* a view of guest memory changes after the call: keep what was passed */
        data = PyBytes_FromObject(value);
        if (!data) return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    int rc = -1;
    if (n < self->inline_bytes) {
        rc = pack_bin(b, PyBytes_AS_STRING(data), n);
        Py_DECREF(data);
        return rc;
    }
    PyObject *digest = PyObject_CallOneArg(self->digest, data);
    if (!digest) goto done;
    PyObject *known = PyDict_GetItemWithError(self->blobs, digest);
    if (known && PyTuple_Check(known) && PyTuple_GET_SIZE(known) == 2) {
        PyObject *content = PyTuple_GET_ITEM(known, 0);
        if (PyBytes_Check(content) && PyBytes_GET_SIZE(content) == n &&
            memcmp(PyBytes_AS_STRING(content), PyBytes_AS_STRING(data), n) == 0) {
            rc = pack_pylong(b, PyTuple_GET_ITEM(known, 1));
            Py_DECREF(digest);
            goto done;
        }
    } else if (!known && PyErr_Occurred()) {
        Py_DECREF(digest);
        goto done;
    }
    PyObject *id = PyObject_CallFunctionObjArgs(self->def_blob, data, digest, NULL);
    Py_DECREF(digest);
    if (!id) goto done;
    rc = pack_pylong(b, id);
    Py_DECREF(id);
done:
    Py_DECREF(data);
    return rc;
}

static int pack_value(Recording *self, Buf *b, int kind, PyObject *value) {
    switch (kind) {
    case K_NONE:
        return put_byte(b, 0xC0);
    case K_STR:
    case K_ENUM:
        return pack_interned(b, self->strings, self->def_string, value);
    case K_BYTES:
        return pack_bytes(self, b, value);
    case K_STAT:
        return pack_stat(self, b, value);
    case K_ENTRIES: {
        PyObject *flat = PyObject_CallOneArg(self->entries, value);
        if (!flat) return -1;
        int rc = pack_obj(b, flat, 0);
        Py_DECREF(flat);
        return rc;
    }
    default: /* INT, TIMESTAMP, STRINGS, PAIRS: as they are */
        return pack_obj(b, value, 0);
    }
}

static int pack_args(Recording *self, Buf *b, int op, PyObject *const *args) {
    int n = self->nparams[op];
    if (put_byte(b, (unsigned char)(0x90 | n)) < 0) return -1;
    for (int i = 0; i < n; i++)
        if (pack_value(self, b, self->kinds[op][i], args[i]) < 0) return -1;
    return 0;
}

static int pack_error(Recording *self, Buf *b, PyObject *error) {
    PyObject *code = PyObject_GetAttr(error, self->code_name);
    if (!code) return -1;
    PyObject *index = PyDict_GetItemWithError(self->errors, code);
    Py_DECREF(code);
    if (!index) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "error code not in the table");
        return -1;
    }
    return pack_pylong(b, index);
}

/* Appends a whole event (scratch holds flag placeholder, args, outcome, duration). */
static int commit(Recording *self, Buf *scratch, int flag) {
    scratch->data[0] = (char)flag;
    if (buf_put(&self->events, scratch->data, scratch->len) < 0) return -1;
    self->pending++;
    self->counts[flag]++;
    if (self->pending >= self->chunk_events) {
        PyObject *r = PyObject_CallNoArgs(self->flush);
        if (!r) return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* (the buffer's bytes, count), emptying the buffer. */
static PyObject *take_buf(Buf *b, Py_ssize_t count) {
    PyObject *out = Py_BuildValue("(y#n)", b->data, b->len, count);
    if (out) b->len = 0;
    return out;
}

static PyObject *rec_take(Recording *self, PyObject *unused) {
    PyObject *out = take_buf(&self->events, self->pending);
    if (out) self->pending = 0;
    return out;
}

static PyObject *rec_take_stats(Recording *self, PyObject *unused) {
    PyObject *out = take_buf(&self->stat_defs, self->n_stat_values);
    if (out && reset_bases(self) < 0) Py_CLEAR(out);
    return out;
}

static PyObject *rec_counts(Recording *self, PyObject *unused) {
    PyObject *list = PyList_New(2 * self->n_ops);
    if (!list) return NULL;
    for (int i = 0; i < 2 * self->n_ops; i++) {
        PyObject *n = PyLong_FromUnsignedLongLong(self->counts[i]);
        if (!n) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, n);
    }
    return list;
}

static int check_op(Recording *self, int op) {
    if (op < 0 || op >= self->n_ops) {
        PyErr_Format(PyExc_ValueError, "no operation has code %d", op);
        return -1;
    }
    return 0;
}

/* record(op_code, args, result, error_index, duration_us): one event given as values. */
static PyObject *rec_record(Recording *self, PyObject *args) {
    int op;
    PyObject *values, *result, *error_index;
    long long duration;
    if (!PyArg_ParseTuple(args, "iOOOL", &op, &values, &result, &error_index, &duration))
        return NULL;
    if (check_op(self, op) < 0) return NULL;
    PyObject *fast = PySequence_Fast(values, "args must be a sequence");
    if (!fast) return NULL;
    if (PySequence_Fast_GET_SIZE(fast) != self->nparams[op]) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_TypeError, "operation %d takes %d arguments", op, self->nparams[op]);
        return NULL;
    }
    Buf scratch;
    buf_init(&scratch);
    int failed = error_index != Py_None;
    int rc = put_byte(&scratch, 0);
    if (rc == 0) rc = pack_args(self, &scratch, op, PySequence_Fast_ITEMS(fast));
    Py_DECREF(fast);
    if (rc == 0)
        rc = failed ? pack_pylong(&scratch, error_index)
                    : pack_value(self, &scratch, self->kinds[op][self->nparams[op]], result);
    if (rc == 0) rc = pack_int(&scratch, duration);
    if (rc == 0) rc = commit(self, &scratch, 2 * op + failed);
    buf_free(&scratch);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *rec_recorder(Recording *self, PyObject *args);

static PyObject *rec_get_pending(Recording *self, void *closure) {
    return PyLong_FromSsize_t(self->pending);
}

static PyMethodDef rec_methods[] = {
    {"take", (PyCFunction)rec_take, METH_NOARGS,
     "take() -> (payload, count): the pending events' msgpack items; starts anew."},
    {"take_stats", (PyCFunction)rec_take_stats, METH_NOARGS,
     "take_stats() -> (payload, count): the chunk's stat definitions, as msgpack items."},
    {"counts", (PyCFunction)rec_counts, METH_NOARGS,
     "counts() -> list: events recorded so far, by flag."},
    {"record", (PyCFunction)rec_record, METH_VARARGS,
     "record(op_code, args, result, error_index, duration_us): record one event."},
    {"recorder", (PyCFunction)rec_recorder, METH_VARARGS,
     "recorder(op_code, call, params, wrapped) -> Recorder for one operation."},
    {NULL},
};

static PyObject *rec_get_n_stats(Recording *self, void *closure) {
    return PyLong_FromLongLong(self->n_stats);
}

static PyObject *rec_get_pending_stat_values(Recording *self, void *closure) {
    return PyLong_FromSsize_t(self->n_stat_values);
}

static PyGetSetDef rec_getset[] = {
    {"pending", (getter)rec_get_pending, NULL, "events not yet taken", NULL},
    {"n_stats", (getter)rec_get_n_stats, NULL, "stat ids given so far", NULL},
    {"pending_stat_values", (getter)rec_get_pending_stat_values, NULL,
     "values of the stat definitions not yet taken", NULL},
    {NULL},
};

static PyTypeObject RecordingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tracer._record.Recording",
    .tp_basicsize = sizeof(Recording),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The pending events of one trace writer, encoded as msgpack.",
    .tp_new = rec_new,
    .tp_init = (initproc)rec_init,
    .tp_dealloc = (destructor)rec_dealloc,
    .tp_traverse = (traverseproc)rec_traverse,
    .tp_clear = (inquiry)rec_clear,
    .tp_methods = rec_methods,
    .tp_getset = rec_getset,
};

/* -- Recorder ----------------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    Recording *recording;
    PyObject *call, *params, *wrapped;
    int op;
    vectorcallfunc vectorcall;
} Recorder;

static int rcd_traverse(Recorder *self, visitproc visit, void *arg) {
    Py_VISIT(self->recording);
    Py_VISIT(self->call);
    Py_VISIT(self->params);
    Py_VISIT(self->wrapped);
    return 0;
}

static int rcd_clear(Recorder *self) {
    Py_CLEAR(self->recording);
    Py_CLEAR(self->call);
    Py_CLEAR(self->params);
    Py_CLEAR(self->wrapped);
    return 0;
}

static void rcd_dealloc(Recorder *self) {
    PyObject_GC_UnTrack(self);
    rcd_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static inline long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* the clock of time.perf_counter_ns on Linux */
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Keyword arguments become positional, as a Python function would bind them. */
static int bind(Recorder *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                PyObject **out) {
    Py_ssize_t n = PyTuple_GET_SIZE(self->params);
    if (nargs > n) goto wrong;
    for (Py_ssize_t i = 0; i < n; i++) out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < n && PyUnicode_Compare(PyTuple_GET_ITEM(self->params, i), name) != 0) i++;
        if (i == n || out[i]) goto wrong;
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!out[i]) goto wrong;
    return 0;
wrong:
    /* the Python method with the same signature raises Python's own TypeError */
    {
        PyObject *r = PyObject_Vectorcall(self->wrapped, args, nargs, kwnames);
        Py_XDECREF(r);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "bad call of a recorder");
    }
    return -1;
}

static PyObject *rcd_vectorcall(Recorder *self, PyObject *const *args, size_t nargsf,
                                PyObject *kwnames) {
    Recording *rec = self->recording;
    int op = self->op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *bound[MAX_PARAMS];
    if (kwnames || nargs != rec->nparams[op]) {
        if (bind(self, args, nargs, kwnames, bound) < 0) return NULL;
        args = bound;
        nargs = rec->nparams[op];
        kwnames = NULL;
    }
    Buf scratch;
    buf_init(&scratch);
    PyObject *result = NULL;
    if (put_byte(&scratch, 0) < 0 || pack_args(rec, &scratch, op, args) < 0) goto out;
    long long start = now_ns();
    result = PyObject_Vectorcall(self->call, args, nargs, NULL);
    long long elapsed = (now_ns() - start) / 1000;
    if (result) {
        if (pack_value(rec, &scratch, rec->kinds[op][nargs], result) < 0 ||
            pack_int(&scratch, elapsed) < 0 || commit(rec, &scratch, 2 * op) < 0)
            Py_CLEAR(result);
    } else if (PyErr_ExceptionMatches(rec->wasi_error)) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (value && pack_error(rec, &scratch, value) == 0 && pack_int(&scratch, elapsed) == 0 &&
            commit(rec, &scratch, 2 * op + 1) == 0) {
            PyErr_Restore(type, value, tb); /* the guest sees the error */
        } else {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
        }
    }
    /* any other exception is a bug in the inner backend: nothing recorded, it propagates */
out:
    buf_free(&scratch);
    return result;
}

static PyObject *rcd_call(PyObject *self, PyObject *args, PyObject *kwargs) {
    return PyVectorcall_Call(self, args, kwargs);
}

static PyObject *rcd_repr(Recorder *self) {
    return PyUnicode_FromFormat("<recorder of %R>", self->wrapped);
}

static PyMemberDef rcd_members[] = {
    {"__wrapped__", T_OBJECT, offsetof(Recorder, wrapped), READONLY, NULL},
    {"call", T_OBJECT, offsetof(Recorder, call), READONLY, "the inner backend's method"},
    {NULL},
};

static PyObject *rcd_get_name(Recorder *self, void *closure) {
    return PyObject_GetAttrString(self->wrapped, "__name__");
}

static PyObject *rcd_get_qualname(Recorder *self, void *closure) {
    return PyObject_GetAttrString(self->wrapped, "__qualname__");
}

static PyGetSetDef rcd_getset[] = {
    {"__name__", (getter)rcd_get_name, NULL, NULL, NULL},
    {"__qualname__", (getter)rcd_get_qualname, NULL, NULL, NULL},
    {NULL},
};

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tracer._record.Recorder",
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Calls one operation of an inner backend and records the call.",
    .tp_dealloc = (destructor)rcd_dealloc,
    .tp_traverse = (traverseproc)rcd_traverse,
    .tp_clear = (inquiry)rcd_clear,
    .tp_call = rcd_call,
    .tp_vectorcall_offset = offsetof(Recorder, vectorcall),
    .tp_repr = (reprfunc)rcd_repr,
    .tp_members = rcd_members,
    .tp_getset = rcd_getset,
};

static PyObject *rec_recorder(Recording *self, PyObject *args) {
    int op;
    PyObject *call, *params, *wrapped;
    if (!PyArg_ParseTuple(args, "iOO!O", &op, &call, &PyTuple_Type, &params, &wrapped))
        return NULL;
    if (check_op(self, op) < 0) return NULL;
    if (PyTuple_GET_SIZE(params) != self->nparams[op]) {
        PyErr_SetString(PyExc_ValueError, "params do not match the operation's kinds");
        return NULL;
    }
    Recorder *r = PyObject_GC_New(Recorder, &RecorderType);
    if (!r) return NULL;
    Py_INCREF(self);
    r->recording = self;
    Py_INCREF(call);
    r->call = call;
    Py_INCREF(params);
    r->params = params;
    Py_INCREF(wrapped);
    r->wrapped = wrapped;
    r->op = op;
    r->vectorcall = (vectorcallfunc)rcd_vectorcall;
    PyObject_GC_Track(r);
    return (PyObject *)r;
}

/* -- module ------------------------------------------------------------------------------- */
static struct PyModuleDef record_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tracer._record",
    .m_doc = "The recording hot path in C; see tracer/tracing.py for the Python original.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__record(void) {
    if (PyType_Ready(&RecordingType) < 0 || PyType_Ready(&RecorderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&record_module);
    if (!m) return NULL;
    Py_INCREF(&RecordingType);
    if (PyModule_AddObject(m, "Recording", (PyObject *)&RecordingType) < 0) {
        Py_DECREF(&RecordingType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&RecorderType);
    if (PyModule_AddObject(m, "Recorder", (PyObject *)&RecorderType) < 0) {
        Py_DECREF(&RecorderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
