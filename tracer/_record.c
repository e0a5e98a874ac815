/* tracer._record: the recording hot path in C.
 *
 * The same work as the methods `tracer/tracing.py` generates and `TraceWriter`'s Python path,
 * split in two so that the guest's thread does as little of it as it can:
 *
 *   capture (the guest's thread, holding the GIL): a `Recorder` times the inner call and copies
 *       the event's values into a batch as fixed-size records: ints as 8 bytes, strings, bulk
 *       data and stats as raw bytes; a large bytes result is held by the batch, not copied.
 *       No interning and no encoding.
 *   encode (a worker thread of its own, without the GIL): interns strings, bulk data and stats
 *       in C tables, encodes the chunks, checksums them and writes them to the trace file.
 *
 * The bytes written are exactly those of the Python path (tests/test_native_recorder.py compares
 * them), so the trace format keeps one definition: the Python one in tracer/trace/. Why it exists:
 * a Python frame, clock calls and msgpack objects per event cost more than the 10% of a run that
 * recording may add (docs/dev/record-overhead.md).
 *
 * Two types:
 *   Recording(fd, offset, errors, wasi_error, op_kinds, chunk_events, chunk_bulk_bytes,
 *             inline_bytes, max_strings, max_stats, blob_window, threaded, write_error, path)
 *       the chunks of one TraceWriter after its header, written to `fd` from `offset` on.
 *       record() captures one event given as values; recorder() makes a Recorder; flush()
 *       writes what is pending as a chunk; finish() flushes, stops the worker and says where
 *       the chunks are, for the footer.
 *   Recorder   one operation of one inner backend, as a method of a TracingBackend's class: it
 *       binds like a function and is called with the instance first (not used), then the
 *       operation's arguments; it calls the inner backend and records the call. `__wrapped__`
 *       is the generated Python method with the operation's signature (self first), for
 *       inspect.signature and for error messages.
 *
 * A batch is a sequence of records, each a tag byte then its content, in native byte order:
 *   'V' flag     an event starts (flag 0xFF: dropped at its end, after its values are interned,
 *                as the Python path interns the arguments of a call that then fails)
 *   'A' n        an array of n values        'I' x / 'U' x  an int64 / a uint64 of 2**63 or more
 *   'N'          nil                         'R' n bytes    msgpack as is (lists, bools, "now")
 *   'S' n bytes  a string, stored as its id  'B' n bytes    bytes: inline if short, else a blob id
 *   'T' n bytes  a stat, stored as its id    'P' n pointer  'B' of n bytes held elsewhere
 *   'W'          the event ends
 *   'F'          write what is pending as a chunk
 * where n is a Py_ssize_t and x 8 bytes. A 'T' body is the stat's type (n, UTF-8), a uint16 of
 * flags, then seven 8-byte integers: device, inode, link count, size and three timestamps; flag
 * bit i says integer i is there (not None), bit 8 + i that it is a uint64. The body is also the
 * stat's key in the stat table.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Kinds: the values of tracer.trace.format.Kind. */
enum { K_NONE = 0, K_INT, K_TIMESTAMP, K_STR, K_ENUM, K_BYTES, K_STAT, K_ENTRIES, K_STRINGS,
       K_PAIRS, K_COUNT };

#if defined(__GNUC__)
/* The per-call path is kept together (HOT) and its error paths out of it (COLD, UNLIKELY):
 * between two calls the guest runs enough code to evict it from the instruction cache, so
 * every cache line it spans is a miss on every call. */
#define HOT __attribute__((hot))
#define COLD __attribute__((cold, noinline))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define HOT
#define COLD
#define UNLIKELY(x) (x)
#define LIKELY(x) (x)
#endif

#define MAX_PARAMS 8
#define MAX_OPS 128 /* flags (2 * code + 1) must stay one-byte positive fixints */
#define DROPPED 0xFF
/* A batch goes to the worker after this many events or bytes; at most MAX_BATCHES exist. */
#define BATCH_EVENTS 128
#define BATCH_BYTES (256 * 1024)
#define MAX_BATCHES 16
#define WAKE_QUEUED 4
#define HOLD_BYTES 1024 /* bytes results this large are held, not copied (see cap_bytes) */
#define POLL_MIN_NS 1000000LL
#define POLL_MAX_NS 32000000LL
#define KIND_CHUNK 1
#define STAT_INTS 7
#define STAT_BITS_SIZE (2 + 8 * STAT_INTS)

/* -- growable byte buffer (malloc, so the worker may use it without the GIL) ----------------
 * Functions return -1 on failure and set no Python error: which error it was is the caller's to
 * say (see `fail_memory`). */
typedef struct {
    char *data;
    Py_ssize_t len, cap;
    char local[256];
} Buf;

static void buf_init(Buf *b) {
    b->data = b->local;
    b->len = 0;
    b->cap = sizeof b->local;
}

static void buf_free(Buf *b) {
    if (b->data != b->local) free(b->data);
    buf_init(b);
}

static int buf_grow(Buf *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap;
    while (cap - b->len < need) cap *= 2;
    char *data;
    if (b->data == b->local) {
        data = malloc(cap);
        if (data) memcpy(data, b->local, b->len);
    } else {
        data = realloc(b->data, cap);
    }
    if (!data) return -1;
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

/* On the guest's thread: a -1 from a Buf function with no Python error set was memory. */
COLD static int fail_memory(void) {
    if (!PyErr_Occurred()) PyErr_NoMemory();
    return -1;
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

/* A 128-bit value msgpack can hold (int64 or uint64); -2 if it cannot. */
static int pack_int128(Buf *b, __int128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX) return pack_int(b, (long long)v);
    if (v > 0 && v <= (__int128)UINT64_MAX) return put_be(b, 0xCF, (unsigned long long)v, 8);
    return -2;
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

static int pack_array_header(Buf *b, Py_ssize_t n) {
    return pack_header(b, n, 0x90, 16, 0, 0xDC, 0xDD);
}

static int pack_str(Buf *b, const char *s, Py_ssize_t n) {
    if (pack_header(b, n, 0xA0, 32, 0xD9, 0xDA, 0xDB) < 0) return -1;
    return buf_put(b, s, n);
}

static int pack_bin_header(Buf *b, Py_ssize_t n) {
    if (n <= 0xFF) return put_be(b, 0xC4, (unsigned long long)n, 1);
    return pack_header(b, n, 0, 0, 0, 0xC5, 0xC6);
}

static int pack_bin(Buf *b, const char *data, Py_ssize_t n) {
    return pack_bin_header(b, n) < 0 ? -1 : buf_put(b, data, n);
}

static int pack_obj(Buf *b, PyObject *o, int depth);

static int pack_seq(Buf *b, PyObject *o, int depth) {
    PyObject *fast = PySequence_Fast(o, "a sequence");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **items = PySequence_Fast_ITEMS(fast);
    int rc = pack_array_header(b, n);
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) rc = pack_obj(b, items[i], depth + 1);
    Py_DECREF(fast);
    return rc;
}

/* None, bools, ints, str, bytes-likes and lists/tuples of them: the values that events carry
 * as they are (Kind.INT, TIMESTAMP, STRINGS, PAIRS). Guest's thread only. */
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
        return pack_str(b, s, n);
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

/* -- hashing and checksums ----------------------------------------------------------------- */
static inline uint64_t rd64(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t avalanche(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ULL;
    return x ^ (x >> 33);
}

/* A fast 64-bit hash for the intern tables: four independent lanes over 32-byte blocks, so a
 * 4 KiB read costs a few hundred cycles. Only ever a table key: a hit is confirmed by comparing
 * the bytes, so its quality affects speed, never what is written. */
static uint64_t hash_bytes(const char *p, Py_ssize_t n) {
    const uint64_t k = 0x9FB21C651E98DF25ULL;
    uint64_t a = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n, b = 0x6A09E667F3BCC909ULL;
    uint64_t c = 0xBB67AE8584CAA73BULL, d = 0x3C6EF372FE94F82BULL;
    for (; n >= 32; p += 32, n -= 32) {
        a = rotl((a ^ rd64(p)) * k, 29);
        b = rotl((b ^ rd64(p + 8)) * k, 29);
        c = rotl((c ^ rd64(p + 16)) * k, 29);
        d = rotl((d ^ rd64(p + 24)) * k, 29);
    }
    for (; n >= 8; p += 8, n -= 8) a = rotl((a ^ rd64(p)) * k, 29);
    uint64_t tail = 0;
    memcpy(&tail, p, (size_t)n);
    a = (a ^ tail) * k;
    return avalanche(a ^ rotl(b, 17) ^ rotl(c, 31) ^ rotl(d, 47));
}

/* crc32 as zlib computes it (tracer.trace.format.crc32), eight bytes a step. */
static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0xEDB88320U : c >> 1;
        crc_table[0][i] = c;
    }
    for (int s = 1; s < 8; s++)
        for (int i = 0; i < 256; i++)
            crc_table[s][i] = (crc_table[s - 1][i] >> 8) ^ crc_table[0][crc_table[s - 1][i] & 0xFF];
}

static uint32_t crc32_of(const char *data, Py_ssize_t n) {
    const unsigned char *p = (const unsigned char *)data;
    uint32_t c = 0xFFFFFFFFU;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
            crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^
            crc_table[2][(hi >> 8) & 0xFF] ^ crc_table[1][(hi >> 16) & 0xFF] ^
            crc_table[0][hi >> 24];
    }
    for (; n > 0; p++, n--) c = crc_table[0][(c ^ *p) & 0xFF] ^ (c >> 8);
    return ~c;
}

/* -- intern tables: byte strings to ids, in order of insertion ------------------------------
 * One kind of table for strings (their UTF-8), bulk data (its content) and stats (their 'T'
 * body). Oldest-first order is what lets the bulk-data table forget its oldest entries, as
 * Tables.blob does. Bulk data is keyed by its content here (a hash, then a comparison), where
 * Tables keys it by its xxh3 digest: the two paths differ only for two contents with one
 * digest, which costs the Python path a second definition of the later one. */
typedef struct Entry {
    struct Entry *chain, *later;
    uint64_t hash;
    long long id;
    Py_ssize_t len;
    char data[];
} Entry;

typedef struct {
    Entry **slots;
    size_t mask;
    Py_ssize_t count;
    Entry *oldest, *newest;
} Table;

static Entry *table_find(const Table *t, const char *p, Py_ssize_t n, uint64_t h) {
    if (!t->slots) return NULL;
    for (Entry *e = t->slots[h & t->mask]; e; e = e->chain)
        if (e->hash == h && e->len == n && memcmp(e->data, p, (size_t)n) == 0) return e;
    return NULL;
}

static int table_resize(Table *t, size_t size) {
    Entry **slots = calloc(size, sizeof *slots);
    if (!slots) return -1;
    for (Entry *e = t->oldest; e; e = e->later) {
        e->chain = slots[e->hash & (size - 1)];
        slots[e->hash & (size - 1)] = e;
    }
    free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

static int table_add(Table *t, const char *p, Py_ssize_t n, uint64_t h, long long id) {
    if ((!t->slots || (size_t)t->count >= t->mask) &&
        table_resize(t, t->slots ? 2 * (t->mask + 1) : 64) < 0)
        return -1;
    Entry *e = malloc(sizeof *e + (size_t)n);
    if (!e) return -1;
    memcpy(e->data, p, (size_t)n);
    e->hash = h;
    e->id = id;
    e->len = n;
    e->chain = t->slots[h & t->mask];
    t->slots[h & t->mask] = e;
    e->later = NULL;
    if (t->newest) t->newest->later = e;
    else t->oldest = e;
    t->newest = e;
    t->count++;
    return 0;
}

static void table_drop_oldest(Table *t) {
    Entry *e = t->oldest;
    t->oldest = e->later;
    if (!t->oldest) t->newest = NULL;
    Entry **at = &t->slots[e->hash & t->mask];
    while (*at != e) at = &(*at)->chain;
    *at = e->chain;
    t->count--;
    free(e);
}

static void table_clear(Table *t) {
    for (Entry *e = t->oldest, *next; e; e = next) {
        next = e->later;
        free(e);
    }
    if (t->slots) memset(t->slots, 0, (t->mask + 1) * sizeof *t->slots);
    t->count = 0;
    t->oldest = t->newest = NULL;
}

static void table_free(Table *t) {
    table_clear(t);
    free(t->slots);
    t->slots = NULL;
}

/* -- the encoder: everything the worker owns ------------------------------------------------
 * The same steps in the same order as tracer.trace.writer.Tables and TraceWriter.flush. */
typedef struct Batch {
    Buf buf;
    Py_ssize_t events;
    struct Batch *next;
    /* bytes objects whose data 'P' records point at: held until the batch is reused */
    PyObject **refs;
    Py_ssize_t n_refs, cap_refs;
} Batch;

typedef struct {
    int fd;
    long long offset, seq;
    Py_ssize_t chunk_events, chunk_bulk_bytes, inline_bytes, max_strings, max_stats, blob_window;
    Table strings, blobs, stats;
    long long n_strings, n_blobs, n_stats;
    long long first_string, first_blob, first_stat; /* of the chunk being filled */
    Buf new_strings, new_blobs, stat_defs;           /* its definitions, encoded */
    Py_ssize_t n_new_strings, n_new_blobs, n_stat_values, new_bulk, window;
    __int128 base_device, base_inode, base_time;
    Buf event, events, out; /* the event being encoded, the chunk's events, a frame */
    Py_ssize_t pending;
    long long *index; /* INDEX_FIELDS values a chunk */
    Py_ssize_t index_len, index_cap;
    int err; /* an errno value; EOVERFLOW: a stat field past 64 bits */
} Encoder;

static int write_all(Encoder *e, const char *p, Py_ssize_t n) {
    while (n > 0) {
        ssize_t done = write(e->fd, p, (size_t)n);
        if (done < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += done;
        n -= done;
    }
    return 0;
}

static int note_chunk(Encoder *e) {
    if (e->index_len + 5 > e->index_cap) {
        Py_ssize_t cap = e->index_cap ? 2 * e->index_cap : 320;
        long long *index = realloc(e->index, (size_t)cap * sizeof *index);
        if (!index) return -1;
        e->index = index;
        e->index_cap = cap;
    }
    long long *at = e->index + e->index_len;
    at[0] = e->offset;
    at[1] = e->seq;
    at[2] = e->first_string;
    at[3] = e->first_blob;
    at[4] = e->first_stat;
    e->index_len += 5;
    return 0;
}

/* TraceWriter.flush: the pending events and definitions as one chunk frame, in one write(). */
static int write_chunk(Encoder *e) {
    if (!e->pending && !e->n_new_strings && !e->n_new_blobs && !e->n_stat_values) return 0;
    Buf *o = &e->out;
    o->len = 0;
    static const char head[7] = {(char)0x93, KIND_CHUNK, (char)0xC6, 0, 0, 0, 0};
    Buf ih; /* the events' array header */
    buf_init(&ih);
    if (buf_put(o, head, sizeof head) < 0 || put_byte(o, 0x99) < 0 || pack_int(o, e->seq) < 0 ||
        pack_int(o, e->pending) < 0 || pack_int(o, e->first_string) < 0 ||
        pack_array_header(o, e->n_new_strings) < 0 ||
        buf_put(o, e->new_strings.data, e->new_strings.len) < 0 ||
        pack_int(o, e->first_blob) < 0 || pack_array_header(o, e->n_new_blobs) < 0 ||
        buf_put(o, e->new_blobs.data, e->new_blobs.len) < 0 || pack_int(o, e->first_stat) < 0 ||
        pack_array_header(o, e->n_stat_values) < 0 ||
        buf_put(o, e->stat_defs.data, e->stat_defs.len) < 0 ||
        pack_array_header(&ih, 4 * e->pending) < 0)
        return -1;
    /* the events as one bin: TraceWriter packs their msgpack apart (see its flush) */
    if (pack_bin_header(o, ih.len + e->events.len) < 0 || buf_put(o, ih.data, ih.len) < 0 ||
        buf_put(o, e->events.data, e->events.len) < 0)
        return -1;
    Py_ssize_t body = o->len - (Py_ssize_t)sizeof head;
    if (put_be(o, 0xCE, crc32_of(o->data + sizeof head, body), 4) < 0) return -1;
    for (int i = 0; i < 4; i++) o->data[3 + i] = (char)((unsigned long long)body >> (8 * (3 - i)));
    if (note_chunk(e) < 0) return -1;
    if (write_all(e, o->data, o->len) < 0) {
        e->err = errno;
        return -1;
    }
    e->offset += o->len;
    e->seq += e->pending;
    e->first_string = e->n_strings;
    e->first_blob = e->n_blobs;
    e->first_stat = e->n_stats;
    e->pending = e->n_new_strings = e->n_new_blobs = e->n_stat_values = e->new_bulk = 0;
    e->events.len = e->new_strings.len = e->new_blobs.len = e->stat_defs.len = 0;
    e->base_device = e->base_inode = e->base_time = 0;
    return 0;
}

/* The id of the n bytes at p in `t`; on a miss, the next id (*next) after forgetting what the
 * table must: all of it if it holds `max` entries (strings, stats), or with `window`, its oldest
 * entries while *window bytes are more than `max` (bulk data). *added says it was a miss.
 * -1: out of memory. */
static long long table_intern(Table *t, const char *p, Py_ssize_t n, long long *next,
                              Py_ssize_t max, Py_ssize_t *window, int *added) {
    uint64_t h = hash_bytes(p, n);
    Entry *found = table_find(t, p, n, h);
    *added = !found;
    if (found) return found->id;
    if (window) {
        *window += n;
        while (*window > max && t->oldest) {
            *window -= t->oldest->len;
            table_drop_oldest(t);
        }
    } else if (t->count >= max) {
        table_clear(t);
    }
    long long id = *next;
    if (table_add(t, p, n, h, id) < 0) return -1;
    (*next)++;
    return id;
}

/* Tables.string */
static long long intern_string(Encoder *e, const char *s, Py_ssize_t n) {
    int added;
    long long id = table_intern(&e->strings, s, n, &e->n_strings, e->max_strings, NULL, &added);
    if (!added || id < 0) return id;
    if (pack_str(&e->new_strings, s, n) < 0) return -1;
    e->n_new_strings++;
    return id;
}

/* Tables.data for data of INLINE_BYTES or more, and Tables.blob */
static long long intern_blob(Encoder *e, const char *p, Py_ssize_t n) {
    int added;
    long long id = table_intern(&e->blobs, p, n, &e->n_blobs, e->blob_window, &e->window, &added);
    if (!added || id < 0) return id;
    if (pack_bin(&e->new_blobs, p, n) < 0) return -1;
    e->n_new_blobs++;
    e->new_bulk += n;
    /* as Tables.blob: the chunk goes now, even mid-event; the event using the id follows */
    if (e->new_bulk >= e->chunk_bulk_bytes && write_chunk(e) < 0) return -1;
    return id;
}

/* wrap_delta in tracer/trace/format.py: below int64, plus 2**64. */
static int pack_delta(Encoder *e, Buf *b, __int128 value, __int128 base) {
    __int128 d = value - base;
    if (d < INT64_MIN) d += (__int128)1 << 64;
    int rc = pack_int128(b, d);
    if (rc == -2) e->err = EOVERFLOW;
    return rc < 0 ? -1 : 0;
}

/* Tables.stat: a new stat gets the next id; its fields go to the chunk's definitions, device,
 * inode and timestamps as deltas from the previous definition in the same chunk. */
static long long intern_stat(Encoder *e, const char *body, Py_ssize_t n) {
    int added;
    long long id = table_intern(&e->stats, body, n, &e->n_stats, e->max_stats, NULL, &added);
    if (!added || id < 0) return id;
    Py_ssize_t type_len;
    memcpy(&type_len, body, sizeof type_len);
    const char *bits = body + sizeof type_len + type_len;
    long long type_id = intern_string(e, body + sizeof type_len, type_len);
    if (type_id < 0) return -1;
    uint16_t flags;
    memcpy(&flags, bits, sizeof flags);
    int has[STAT_INTS];
    __int128 v[STAT_INTS];
    for (int i = 0; i < STAT_INTS; i++) {
        uint64_t x;
        memcpy(&x, bits + sizeof flags + 8 * i, 8);
        has[i] = flags >> i & 1;
        v[i] = flags >> (8 + i) & 1 ? (__int128)x : (__int128)(int64_t)x;
    }
    Buf *b = &e->stat_defs;
    /* device, inode, type, link count, size, atime, mtime, ctime */
    if (pack_delta(e, b, v[0], e->base_device) < 0 || pack_delta(e, b, v[1], e->base_inode) < 0 ||
        pack_int(b, type_id) < 0)
        return -1;
    for (int i = 2; i < 4; i++) {
        int rc = has[i] ? pack_int128(b, v[i]) : put_byte(b, 0xC0);
        if (rc == -2) e->err = EOVERFLOW;
        if (rc < 0) return -1;
    }
    for (int i = 4; i < STAT_INTS; i++) {
        if (!has[i]) {
            if (put_byte(b, 0xC0) < 0) return -1;
            continue;
        }
        if (pack_delta(e, b, v[i], e->base_time) < 0) return -1;
        e->base_time = v[i];
    }
    e->base_device = v[0];
    e->base_inode = v[1];
    e->n_stat_values += 8;
    return id;
}

/* Encodes one batch's events; -1 with e->err set (to ENOMEM if nothing more precise). */
static int encode_batch(Encoder *e, const Batch *batch) {
    const char *p = batch->buf.data, *end = p + batch->buf.len;
    Buf *ev = &e->event;
    int flag = DROPPED;
    while (p < end) {
        char tag = *p++;
        Py_ssize_t n = 0;
        uint64_t x;
        long long id = -1; /* for the records stored as an id */
        int rc = 0;
        switch (tag) {
        case 'V':
            flag = (unsigned char)*p++;
            ev->len = 0;
            rc = put_byte(ev, (unsigned char)flag);
            break;
        case 'I':
        case 'U':
            memcpy(&x, p, 8);
            p += 8;
            rc = tag == 'I' ? pack_int(ev, (long long)x) : put_be(ev, 0xCF, x, 8);
            break;
        case 'N':
            rc = put_byte(ev, 0xC0);
            break;
        case 'W':
            if (flag != DROPPED) {
                rc = buf_put(&e->events, ev->data, ev->len);
                if (rc == 0 && ++e->pending >= e->chunk_events) rc = write_chunk(e);
            }
            break;
        case 'F':
            rc = write_chunk(e);
            break;
        case 'A':
        case 'R':
        case 'S':
        case 'B':
        case 'P':
        case 'T':
            memcpy(&n, p, sizeof n);
            p += sizeof n;
            if (tag == 'P') { /* 'B' whose data is elsewhere */
                const char *data;
                memcpy(&data, p, sizeof data);
                p += sizeof data;
                id = intern_blob(e, data, n);
                rc = id < 0 ? -1 : pack_int(ev, id);
                n = 0;
            } else if (tag == 'A') {
                rc = pack_array_header(ev, n);
                n = 0;
            } else if (tag == 'R') {
                rc = buf_put(ev, p, n);
            } else if (tag == 'B' && n < e->inline_bytes) {
                rc = pack_bin(ev, p, n);
            } else {
                id = tag == 'S' ? intern_string(e, p, n)
                     : tag == 'B' ? intern_blob(e, p, n)
                                  : intern_stat(e, p, n);
                rc = id < 0 ? -1 : pack_int(ev, id);
            }
            p += n;
            break;
        default:
            e->err = EINVAL; /* cannot happen: batches are made by this file alone */
            return -1;
        }
        if (rc < 0) {
            if (!e->err) e->err = ENOMEM;
            return -1;
        }
    }
    return 0;
}

/* -- Recording ---------------------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    PyObject *errors, *wasi_error, *code_name, *write_error, *path;
    unsigned char kinds[MAX_OPS][MAX_PARAMS + 1]; /* per op: param kinds, then the result's */
    unsigned char nparams[MAX_OPS];
    int n_ops;
    Batch *cur; /* being filled by the guest's thread */
    long long events;
    unsigned long long counts[2 * MAX_OPS];
    int finished;
    /* the worker, and what it shares with the guest's thread (under `lock`) */
    Encoder enc;
    int threaded, started, stop, busy, asleep, queued, n_batches;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    Batch *queue, *queue_tail, *spare;
} Recording;

/* The worker looks for batches on a timer rather than being woken for each: on a virtual
 * machine, waking a sleeping thread costs the waker some 15 us (docs/dev/record-overhead.md),
 * which a batch a millisecond would make 2% of a call-heavy run. It looks every POLL_MIN_NS
 * while there is work, backs off to POLL_MAX_NS, then sleeps until woken; the guest's thread
 * wakes it only then, or when batches pile up, or to flush. */
static void *worker_main(void *arg) {
    Recording *r = arg;
    long long idle = POLL_MIN_NS;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        Batch *b = r->queue;
        if (!b) {
            if (r->stop) break;
            if (idle > POLL_MAX_NS) {
                r->asleep = 1;
                while (!r->queue && !r->stop) pthread_cond_wait(&r->work, &r->lock);
                r->asleep = 0;
                idle = POLL_MIN_NS;
                continue;
            }
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            long long ns = until.tv_nsec + idle;
            until.tv_sec += ns / 1000000000LL;
            until.tv_nsec = ns % 1000000000LL;
            pthread_cond_timedwait(&r->work, &r->lock, &until);
            if (!r->queue) idle *= 2;
            continue;
        }
        idle = POLL_MIN_NS;
        r->queue = b->next;
        r->queued--;
        if (!r->queue) r->queue_tail = NULL;
        r->busy = 1;
        int failed = r->enc.err != 0;
        pthread_mutex_unlock(&r->lock);
        if (!failed) (void)encode_batch(&r->enc, b); /* an error stays in enc.err */
        b->buf.len = 0;
        b->events = 0;
        pthread_mutex_lock(&r->lock);
        b->next = r->spare;
        r->spare = b;
        r->busy = 0;
        pthread_cond_broadcast(&r->done);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static Batch *batch_new(void) {
    Batch *b = calloc(1, sizeof *b);
    if (b) buf_init(&b->buf);
    return b;
}

/* With the GIL: lets go of the bytes the batch's records pointed at. */
static void batch_release(Batch *b) {
    for (Py_ssize_t i = 0; i < b->n_refs; i++) Py_DECREF(b->refs[i]);
    b->n_refs = 0;
}

static void batch_free(Batch *b) {
    batch_release(b);
    free(b->refs);
    buf_free(&b->buf);
    free(b);
}

/* The worker's error as a Python exception: a failed write as `write_error` (TraceWriteError). */
COLD static int raise_worker_error(PyObject *write_error, PyObject *path, int err) {
    if (err == ENOMEM) {
        PyErr_NoMemory();
    } else if (err == EOVERFLOW) {
        PyErr_SetString(PyExc_OverflowError, "a stat field differs from the last by 2**64 or more");
    } else {
        PyObject *exc = PyObject_CallFunction(write_error, "isO", err, strerror(err), path);
        if (exc) {
            PyErr_SetObject(write_error, exc);
            Py_DECREF(exc);
        }
    }
    return -1;
}

/* Waits, without the GIL, until the worker has nothing queued (and, with `for_spare`, until
 * a spare batch exists). Called with `lock` not held; returns with it held. */
static void wait_worker(Recording *r, int for_spare) {
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&r->lock);
    while (for_spare ? !r->spare : (r->queue || r->busy)) pthread_cond_wait(&r->done, &r->lock);
    pthread_mutex_unlock(&r->lock);
    Py_END_ALLOW_THREADS
    pthread_mutex_lock(&r->lock);
}

/* Hands the current batch to the encoder and starts a fresh one. */
COLD static int handoff(Recording *r) {
    Batch *b = r->cur;
    if (r->finished) {
        /* another thread still recording while finish() waits for the worker without the GIL:
         * after the footer nothing more can be written */
        batch_release(b);
        b->buf.len = 0;
        b->events = 0;
        return 0;
    }
    if (!r->started) {
        int rc = encode_batch(&r->enc, b);
        batch_release(b);
        b->buf.len = 0;
        b->events = 0;
        return rc < 0 ? raise_worker_error(r->write_error, r->path, r->enc.err) : 0;
    }
    Batch *next = NULL;
    if (r->n_batches < MAX_BATCHES) {
        pthread_mutex_lock(&r->lock);
        next = r->spare;
        if (next) r->spare = next->next;
        pthread_mutex_unlock(&r->lock);
        if (next) batch_release(next);
        if (!next) {
            if (!(next = batch_new())) return fail_memory();
            r->n_batches++;
        }
    }
    pthread_mutex_lock(&r->lock);
    b->next = NULL;
    if (r->queue_tail) r->queue_tail->next = b;
    else r->queue = b;
    r->queue_tail = b;
    if (++r->queued >= WAKE_QUEUED || r->asleep) pthread_cond_signal(&r->work);
    if (!next) {
        while (!r->spare) {
            pthread_cond_signal(&r->work);
            pthread_mutex_unlock(&r->lock);
            wait_worker(r, 1);
        }
        next = r->spare;
        r->spare = next->next;
        batch_release(next); /* the worker is done with it; the lock does not stop that */
    }
    int err = r->enc.err;
    pthread_mutex_unlock(&r->lock);
    r->cur = next;
    return err ? raise_worker_error(r->write_error, r->path, err) : 0;
}

/* Everything handed over is encoded and written (or failed). */
static int drain(Recording *r) {
    if (!r->started) return r->enc.err ? raise_worker_error(r->write_error, r->path, r->enc.err) : 0;
    pthread_mutex_lock(&r->lock);
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->lock);
    wait_worker(r, 0);
    int err = r->enc.err;
    pthread_mutex_unlock(&r->lock);
    return err ? raise_worker_error(r->write_error, r->path, err) : 0;
}

static void stop_worker(Recording *r) {
    if (!r->started) return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->work);
    pthread_mutex_unlock(&r->lock);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(r->thread, NULL);
    Py_END_ALLOW_THREADS
    r->started = 0;
}

static int rec_traverse(Recording *self, visitproc visit, void *arg) {
    Py_VISIT(self->errors);
    Py_VISIT(self->wasi_error);
    Py_VISIT(self->write_error);
    Py_VISIT(self->path);
    return 0;
}

static int rec_clear(Recording *self) {
    Py_CLEAR(self->errors);
    Py_CLEAR(self->wasi_error);
    Py_CLEAR(self->write_error);
    Py_CLEAR(self->path);
    return 0;
}

static void encoder_free(Encoder *e) {
    table_free(&e->strings);
    table_free(&e->blobs);
    table_free(&e->stats);
    Buf *bufs[] = {&e->new_strings, &e->new_blobs, &e->stat_defs, &e->event, &e->events, &e->out};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) buf_free(bufs[i]);
    free(e->index);
    e->index = NULL;
}

static void rec_dealloc(Recording *self) {
    PyObject_GC_UnTrack(self);
    stop_worker(self); /* what was handed over is still written */
    rec_clear(self);
    Py_XDECREF(self->code_name);
    for (Batch *b = self->spare, *next; b; b = next) {
        next = b->next;
        batch_free(b);
    }
    if (self->cur) batch_free(self->cur);
    encoder_free(&self->enc);
    if (self->threaded) {
        pthread_mutex_destroy(&self->lock);
        pthread_cond_destroy(&self->work);
        pthread_cond_destroy(&self->done);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *rec_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Recording *self = (Recording *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    Encoder *e = &self->enc;
    Buf *bufs[] = {&e->new_strings, &e->new_blobs, &e->stat_defs, &e->event, &e->events, &e->out};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) buf_init(bufs[i]);
    if (!(self->cur = batch_new())) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->n_batches = 1;
    return (PyObject *)self;
}

static int rec_init(Recording *self, PyObject *args, PyObject *kw) {
    PyObject *errors, *wasi_error, *op_kinds, *write_error, *path;
    int fd, threaded;
    long long offset;
    Py_ssize_t chunk_events, chunk_bulk, inline_bytes, max_strings, max_stats, window;
    if (self->errors) {
        PyErr_SetString(PyExc_TypeError, "a Recording is initialized once");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "iLO!OO!nnnnnnpOU", &fd, &offset, &PyDict_Type, &errors,
                          &wasi_error, &PyList_Type, &op_kinds, &chunk_events, &chunk_bulk,
                          &inline_bytes, &max_strings, &max_stats, &window, &threaded,
                          &write_error, &path))
        return -1;
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
    if (!(self->code_name = PyUnicode_InternFromString("code"))) return -1;
    Py_INCREF(errors);
    self->errors = errors;
    Py_INCREF(wasi_error);
    self->wasi_error = wasi_error;
    self->write_error = Py_NewRef(write_error);
    self->path = Py_NewRef(path);
    self->n_ops = (int)n_ops;
    Encoder *e = &self->enc;
    e->fd = fd;
    e->offset = offset;
    e->chunk_events = chunk_events;
    e->chunk_bulk_bytes = chunk_bulk;
    e->inline_bytes = inline_bytes;
    e->max_strings = max_strings;
    e->max_stats = max_stats;
    e->blob_window = window;
    if (threaded) {
        pthread_mutex_init(&self->lock, NULL);
        pthread_condattr_t monotonic;
        pthread_condattr_init(&monotonic);
        pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
        pthread_cond_init(&self->work, &monotonic);
        pthread_condattr_destroy(&monotonic);
        pthread_cond_init(&self->done, NULL);
        self->threaded = 1;
        /* without a thread, batches are encoded as they are handed over */
        self->started = pthread_create(&self->thread, NULL, worker_main, self) == 0;
    }
    return 0;
}

/* -- capture, on the guest's thread ---------------------------------------------------------
 * Values go into the batch as fixed-size records, to be encoded by the worker: the guest's
 * thread pays for little more than copying them. */
static inline int put_tag_size(Buf *b, char tag, Py_ssize_t n) {
    if (b->cap - b->len < 1 + (Py_ssize_t)sizeof n && buf_grow(b, 1 + sizeof n) < 0) return -1;
    b->data[b->len] = tag;
    memcpy(b->data + b->len + 1, &n, sizeof n);
    b->len += 1 + (Py_ssize_t)sizeof n;
    return 0;
}

static int segment(Buf *b, char tag, const char *p, Py_ssize_t n) {
    return put_tag_size(b, tag, n) < 0 || buf_put(b, p, n) < 0 ? fail_memory() : 0;
}

/* A Python int as 64 bits: returns 0 if it is an int64, 1 if a uint64 of 2**63 or more, -1
 * with the Python error set if it is neither. Small exact ints are read from their digits:
 * most values a guest passes are, and this is every call's cost. */
static inline int int_bits(PyObject *v, uint64_t *out) {
#if PY_VERSION_HEX < 0x030C0000 && PyLong_SHIFT == 30
    if (PyLong_CheckExact(v)) {
        const digit *d = ((PyLongObject *)v)->ob_digit;
        switch (Py_SIZE(v)) {
        case 0:
            *out = 0;
            return 0;
        case 1:
            *out = d[0];
            return 0;
        case -1:
            *out = (uint64_t)-(int64_t)d[0];
            return 0;
        case 2:
            *out = (uint64_t)d[0] | (uint64_t)d[1] << 30;
            return 0;
        case 3:
            if (d[2] < 8) { /* 63 bits: nanosecond timestamps */
                *out = (uint64_t)d[0] | (uint64_t)d[1] << 30 | (uint64_t)d[2] << 60;
                return 0;
            }
        }
    }
#elif PY_VERSION_HEX >= 0x030C0000
    if (PyLong_CheckExact(v) && PyUnstable_Long_IsCompact((PyLongObject *)v)) {
        *out = (uint64_t)PyUnstable_Long_CompactValue((PyLongObject *)v);
        return 0;
    }
#endif
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (!overflow) {
        if (x == -1 && PyErr_Occurred()) return -1;
        *out = (uint64_t)x;
        return 0;
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(v);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        *out = u;
        return 1;
    }
    PyErr_SetString(PyExc_OverflowError, "Integer value out of range");
    return -1;
}

static inline int cap_int(Buf *b, PyObject *v) {
    uint64_t x;
    int high = int_bits(v, &x);
    if (high < 0) return -1;
    if (b->cap - b->len < 9 && buf_grow(b, 9) < 0) return fail_memory();
    b->data[b->len] = high ? 'U' : 'I';
    memcpy(b->data + b->len + 1, &x, 8);
    b->len += 9;
    return 0;
}

COLD static int cap_raw(Buf *b, PyObject *v) {
    Py_ssize_t at = b->len;
    if (put_tag_size(b, 'R', 0) < 0) return fail_memory();
    if (pack_obj(b, v, 0) < 0) return fail_memory();
    Py_ssize_t n = b->len - at - 1 - (Py_ssize_t)sizeof n;
    memcpy(b->data + at + 1, &n, sizeof n);
    return 0;
}

/* The UTF-8 of a str: an ASCII one's own characters, without a call. */
static inline const char *utf8_of(PyObject *v, Py_ssize_t *n) {
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_IS_READY(v) && PyUnicode_IS_ASCII(v)) {
#else
    if (PyUnicode_IS_ASCII(v)) {
#endif
        *n = PyUnicode_GET_LENGTH(v);
        return PyUnicode_DATA(v);
    }
    return PyUnicode_AsUTF8AndSize(v, n);
}

static int cap_str(Buf *b, PyObject *v) {
    if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "expected a str, not %R", (PyObject *)Py_TYPE(v));
        return -1;
    }
    Py_ssize_t n;
    const char *s = utf8_of(v, &n);
    return s ? segment(b, 'S', s, n) : -1;
}

/* Bytes, copied; but a large bytes object going straight into a batch (`hold`) is held there
 * and its data pointed at, so a read's data is not copied on the guest's thread at all. */
static int cap_bytes(Buf *b, PyObject *v, Batch *hold) {
    if (PyBytes_CheckExact(v)) {
        Py_ssize_t n = PyBytes_GET_SIZE(v);
        if (!hold || n < HOLD_BYTES) return segment(b, 'B', PyBytes_AS_STRING(v), n);
        const char *data = PyBytes_AS_STRING(v);
        if (hold->n_refs == hold->cap_refs) {
            Py_ssize_t cap = hold->cap_refs ? 2 * hold->cap_refs : 64;
            PyObject **refs = realloc(hold->refs, (size_t)cap * sizeof *refs);
            if (!refs) return fail_memory();
            hold->refs = refs;
            hold->cap_refs = cap;
        }
        if (put_tag_size(b, 'P', n) < 0 || buf_put(b, &data, sizeof data) < 0)
            return fail_memory();
        hold->refs[hold->n_refs++] = Py_NewRef(v);
        return 0;
    }
    /* a view of guest memory changes after the call: what was passed is copied now */
    Py_buffer view;
    if (PyObject_GetBuffer(v, &view, PyBUF_CONTIG_RO) < 0) return -1;
    int rc = segment(b, 'B', view.buf, view.len);
    PyBuffer_Release(&view);
    return rc;
}

static int cap_stat(Buf *b, PyObject *v) {
    if (!PyTuple_Check(v) || PyTuple_GET_SIZE(v) != 8) {
        PyErr_Format(PyExc_TypeError, "a stat must be a DescriptorStat, not %R", v);
        return -1;
    }
    PyObject **f = &PyTuple_GET_ITEM(v, 0);
    if (!PyUnicode_Check(f[2])) {
        PyErr_Format(PyExc_TypeError, "a stat's type must be a str, not %R", f[2]);
        return -1;
    }
    Py_ssize_t type_len;
    const char *type = utf8_of(f[2], &type_len);
    if (!type) return -1;
    Py_ssize_t body = (Py_ssize_t)sizeof type_len + type_len + STAT_BITS_SIZE;
    if (b->cap - b->len < 1 + (Py_ssize_t)sizeof body + body && buf_grow(b, 1 + sizeof body + body) < 0)
        return fail_memory();
    char *p = b->data + b->len;
    *p++ = 'T';
    memcpy(p, &body, sizeof body);
    p += sizeof body;
    memcpy(p, &type_len, sizeof type_len);
    p += sizeof type_len;
    memcpy(p, type, (size_t)type_len);
    p += type_len;
    static const int fields[STAT_INTS] = {0, 1, 3, 4, 5, 6, 7};
    uint16_t flags = 0;
    uint64_t x[STAT_INTS];
    for (int i = 0; i < STAT_INTS; i++) {
        PyObject *field = f[fields[i]];
        x[i] = 0;
        if (field == Py_None && i >= 2) continue; /* link count, size and times may be None */
        int high = int_bits(field, &x[i]);
        if (high < 0) return -1;
        flags |= (uint16_t)(1u << i | (unsigned)high << (8 + i));
    }
    memcpy(p, &flags, sizeof flags);
    memcpy(p + sizeof flags, x, sizeof x);
    b->len += 1 + (Py_ssize_t)sizeof body + body;
    return 0;
}

static int cap_value(Buf *b, int kind, PyObject *v, Batch *hold);

COLD static int cap_entries(Buf *b, PyObject *v) {
    PyObject *fast = PySequence_Fast(v, "directory entries must be a sequence");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    int rc = put_tag_size(b, 'A', 3 * n) < 0 ? fail_memory() : 0;
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        PyObject *entry = PySequence_Fast(PySequence_Fast_GET_ITEM(fast, i), "an entry");
        if (!entry) {
            rc = -1;
            break;
        }
        if (PySequence_Fast_GET_SIZE(entry) != 3) {
            PyErr_SetString(PyExc_ValueError, "a directory entry is (type, name, inode)");
            rc = -1;
        }
        PyObject **items = PySequence_Fast_ITEMS(entry);
        if (rc == 0) rc = cap_str(b, items[0]);
        if (rc == 0) rc = cap_str(b, items[1]);
        if (rc == 0) rc = cap_value(b, K_INT, items[2], NULL);
        Py_DECREF(entry);
    }
    Py_DECREF(fast);
    return rc;
}

HOT static int cap_value(Buf *b, int kind, PyObject *v, Batch *hold) {
    switch (kind) {
    case K_INT:
    case K_TIMESTAMP:
        return PyLong_CheckExact(v) ? cap_int(b, v) : cap_raw(b, v);
    case K_STR:
    case K_ENUM:
        return cap_str(b, v);
    case K_BYTES:
        return cap_bytes(b, v, hold);
    case K_STAT:
        return cap_stat(b, v);
    case K_ENTRIES:
        return cap_entries(b, v);
    case K_NONE: /* stored as nil, whatever the value */
        return put_byte(b, 'N') < 0 ? fail_memory() : 0;
    default: /* STRINGS, PAIRS: as they are */
        return cap_raw(b, v);
    }
}

/* The start of an event and its arguments, into `scratch`. On failure what was captured before
 * the failing argument stays, for the event to be dropped with its interning done. */
HOT static int cap_args(Recording *r, Buf *b, int op, PyObject *const *args) {
    Py_ssize_t n = r->nparams[op];
    char head[3 + sizeof n] = {'V', (char)DROPPED, 'A'};
    memcpy(head + 3, &n, sizeof n);
    if (UNLIKELY(buf_put(b, head, sizeof head) < 0)) return fail_memory();
    for (int i = 0; i < n; i++) {
        Py_ssize_t mark = b->len;
        if (UNLIKELY(cap_value(b, r->kinds[op][i], args[i], NULL) < 0)) {
            b->len = mark;
            return -1;
        }
    }
    return 0;
}

/* Moves the event in `scratch` to the batch with its outcome: `result` of the op's result
 * kind, or (result NULL) the error index `error`. Any failure drops the event (its interning
 * still done) and returns -1 with the Python error set. */
HOT static int commit(Recording *r, Buf *scratch, int op, int args_ok, PyObject *result,
                  PyObject *error, long long elapsed) {
    Batch *batch = r->cur;
    Buf *b = &batch->buf;
    Py_ssize_t start = b->len;
    if (buf_put(b, scratch->data, scratch->len) < 0) return fail_memory();
    Py_ssize_t mark = b->len;
    int rc = args_ok ? 0 : -1;
    if (rc == 0)
        rc = cap_value(b, result ? r->kinds[op][r->nparams[op]] : K_INT, result ? result : error,
                       batch);
    if (rc == 0 && (b->cap - b->len < 10 && buf_grow(b, 10) < 0)) rc = fail_memory();
    if (rc == 0) {
        b->data[b->len] = 'I';
        memcpy(b->data + b->len + 1, &elapsed, 8);
        b->data[b->len + 9] = 'W';
        b->len += 10;
        int flag = 2 * op + (result ? 0 : 1);
        b->data[start + 1] = (char)flag;
        r->counts[flag]++;
        r->events++;
    } else {
        b->len = mark;
        if (put_byte(b, 'W') < 0) {
            b->len = start; /* not even the end fits: the event is gone, interning too */
            return fail_memory();
        }
    }
    if ((++batch->events >= BATCH_EVENTS || b->len >= BATCH_BYTES) && handoff(r) < 0 && rc == 0)
        rc = -1;
    return rc;
}

static int check_open(Recording *r) {
    if (r->finished) {
        PyErr_SetString(PyExc_ValueError, "the trace writer is closed");
        return -1;
    }
    return 0;
}

static PyObject *rec_flush(Recording *self, PyObject *unused) {
    if (self->finished) Py_RETURN_NONE;
    if (put_byte(&self->cur->buf, 'F') < 0) return PyErr_NoMemory();
    if (handoff(self) < 0 || drain(self) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *rec_next_ids(Recording *self, PyObject *unused) {
    if (!self->finished && (handoff(self) < 0 || drain(self) < 0)) return NULL;
    Encoder *e = &self->enc;
    return Py_BuildValue("(LLL)", e->n_strings, e->n_blobs, e->n_stats);
}

static PyObject *rec_finish(Recording *self, PyObject *unused) {
    if (!self->finished) {
        PyObject *r = rec_flush(self, NULL);
        if (!r) return NULL;
        Py_DECREF(r);
        self->finished = 1; /* first: stop_worker lets other threads run */
        stop_worker(self);
        for (Batch *b = self->spare; b; b = b->next) batch_release(b);
        batch_release(self->cur);
    }
    Encoder *e = &self->enc;
    PyObject *index = PyList_New(e->index_len);
    if (!index) return NULL;
    for (Py_ssize_t i = 0; i < e->index_len; i++) {
        PyObject *v = PyLong_FromLongLong(e->index[i]);
        if (!v) {
            Py_DECREF(index);
            return NULL;
        }
        PyList_SET_ITEM(index, i, v);
    }
    return Py_BuildValue("(LLN)", e->offset, e->seq, index);
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
    if (check_op(self, op) < 0 || check_open(self) < 0) return NULL;
    PyObject *fast = PySequence_Fast(values, "args must be a sequence");
    if (!fast) return NULL;
    if (PySequence_Fast_GET_SIZE(fast) != self->nparams[op]) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_TypeError, "operation %d takes %d arguments", op, self->nparams[op]);
        return NULL;
    }
    Buf scratch;
    buf_init(&scratch);
    int args_ok = cap_args(self, &scratch, op, PySequence_Fast_ITEMS(fast)) == 0;
    Py_DECREF(fast);
    int failed = error_index != Py_None;
    int rc = commit(self, &scratch, op, args_ok, failed ? NULL : result,
                    failed ? error_index : NULL, duration);
    buf_free(&scratch);
    if (rc < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *rec_recorder(Recording *self, PyObject *args);

static PyObject *rec_get_events(Recording *self, void *closure) {
    return PyLong_FromLongLong(self->events);
}

static PyMethodDef rec_methods[] = {
    {"record", (PyCFunction)rec_record, METH_VARARGS,
     "record(op_code, args, result, error_index, duration_us): record one event."},
    {"recorder", (PyCFunction)rec_recorder, METH_VARARGS,
     "recorder(op_code, call, params, wrapped) -> Recorder for one operation."},
    {"flush", (PyCFunction)rec_flush, METH_NOARGS,
     "flush(): write the pending events and definitions as a chunk, and wait until it is."},
    {"next_ids", (PyCFunction)rec_next_ids, METH_NOARGS,
     "next_ids() -> (strings, blobs, stats): the ids the next definitions will get."},
    {"finish", (PyCFunction)rec_finish, METH_NOARGS,
     "finish() -> (offset, events, index): flush, stop, and where the chunks are."},
    {"counts", (PyCFunction)rec_counts, METH_NOARGS,
     "counts() -> list: events recorded so far, by flag."},
    {NULL},
};

static PyGetSetDef rec_getset[] = {
    {"events", (getter)rec_get_events, NULL, "events recorded so far", NULL},
    {NULL},
};

static PyTypeObject RecordingType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tracer._record.Recording",
    .tp_basicsize = sizeof(Recording),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The chunks of one trace writer, encoded and written by a worker thread.",
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
    PyObject *func, *self; /* `call`'s function and instance, when it is a bound method */
    vectorcallfunc func_call; /* how to call `func`, looked up once */
    int op;
    vectorcallfunc vectorcall;
} Recorder;

static int rcd_traverse(Recorder *self, visitproc visit, void *arg) {
    Py_VISIT(self->recording);
    Py_VISIT(self->call);
    Py_VISIT(self->params);
    Py_VISIT(self->wrapped);
    Py_VISIT(self->func);
    Py_VISIT(self->self);
    return 0;
}

static int rcd_clear(Recorder *self) {
    Py_CLEAR(self->recording);
    Py_CLEAR(self->call);
    Py_CLEAR(self->params);
    Py_CLEAR(self->wrapped);
    Py_CLEAR(self->func);
    Py_CLEAR(self->self);
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

/* A call of the method as a Python function would bind it: `args[0]` the instance (not used), the
 * rest, positional or by keyword, into `out` in parameter order. */
COLD static int bind(Recorder *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                PyObject **out) {
    Py_ssize_t n = PyTuple_GET_SIZE(self->params);
    if (nargs < 1 || nargs > n + 1) goto wrong;
    for (Py_ssize_t i = 0; i < n; i++) out[i] = i + 1 < nargs ? args[i + 1] : NULL;
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

/* No event, but the interning of the arguments captured, as in the Python path; the Python
 * error set stays set. */
COLD static void drop_event(Recording *rec, Buf *scratch, int op) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    (void)commit(rec, scratch, op, 0, NULL, NULL, 0);
    PyErr_Restore(type, value, tb);
}

/* The inner call raised: a WasiError is recorded and re-raised (the guest sees it); any other
 * exception is a bug in the inner backend, which drops the event, and it propagates. */
COLD static void failed(Recording *rec, Buf *scratch, int op, long long elapsed) {
    if (!PyErr_ExceptionMatches(rec->wasi_error)) {
        drop_event(rec, scratch, op);
        return;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *code = value ? PyObject_GetAttr(value, rec->code_name) : NULL;
    PyObject *index = code ? PyDict_GetItemWithError(rec->errors, code) : NULL;
    Py_XDECREF(code);
    if (!index && !PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "error code not in the table");
    if (index && commit(rec, scratch, op, 1, NULL, index, elapsed) == 0) {
        PyErr_Restore(type, value, tb);
    } else {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
}

/* A Recorder is a method of a TracingBackend's class: `args[0]` is the TracingBackend (the
 * recorder already holds what it needs), the operation's arguments follow. */
HOT static PyObject *rcd_vectorcall(Recorder *self, PyObject *const *args, size_t nargsf,
                                PyObject *kwnames) {
    Recording *rec = self->recording;
    int op = self->op;
    Py_ssize_t n = rec->nparams[op];
    /* stack[0] is the free slot a vectorcall may use, stack[1] the inner method's instance */
    PyObject *stack[2 + MAX_PARAMS];
    PyObject **params = stack + 2;
    if (LIKELY(!kwnames && PyVectorcall_NARGS(nargsf) == n + 1)) {
        memcpy(params, args + 1, n * sizeof *args);
    } else if (bind(self, args, PyVectorcall_NARGS(nargsf), kwnames, params) < 0) {
        return NULL;
    }
    if (UNLIKELY(check_open(rec) < 0)) return NULL;
    Buf scratch;
    buf_init(&scratch);
    PyObject *result = NULL;
    if (UNLIKELY(cap_args(rec, &scratch, op, params) < 0)) {
        /* as the Python path: no call, and the arguments interned before the failing one */
        drop_event(rec, &scratch, op);
        goto out;
    }
    long long start = now_ns();
    if (self->func) {
        /* a bound method: its function called with its instance first, as the method object
         * would call it, without a copy of its own */
        stack[1] = self->self;
        result = self->func_call(self->func, stack + 1, (n + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                 NULL);
    } else {
        result = PyObject_Vectorcall(self->call, params, n | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                     NULL);
    }
    long long elapsed = (now_ns() - start) / 1000;
    if (LIKELY(result != NULL)) {
        if (UNLIKELY(commit(rec, &scratch, op, 1, result, NULL, elapsed) < 0)) Py_CLEAR(result);
    } else {
        failed(rec, &scratch, op, elapsed);
    }
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

/* As a class attribute it binds like a function: the interpreter then calls it as a method,
 * with the instance first, and specializes the call site as for any method. */
static PyObject *rcd_descr_get(PyObject *self, PyObject *obj, PyObject *type) {
    if (obj == NULL || obj == Py_None) return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static PyGetSetDef rcd_getset[] = {
    {"__name__", (getter)rcd_get_name, NULL, NULL, NULL},
    {"__qualname__", (getter)rcd_get_qualname, NULL, NULL, NULL},
    {NULL},
};

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tracer._record.Recorder",
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "A method that calls one operation of an inner backend and records the call.",
    .tp_descr_get = rcd_descr_get,
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
    r->func = r->self = NULL;
    r->func_call = NULL;
    if (PyMethod_Check(call)) {
        r->func = Py_NewRef(PyMethod_GET_FUNCTION(call));
        r->self = Py_NewRef(PyMethod_GET_SELF(call));
        /* a Python function's own entry skips the generic dispatch and its result check, which
         * a Python function never fails */
        r->func_call = PyFunction_Check(r->func) ? PyVectorcall_Function(r->func) : NULL;
        if (!r->func_call) r->func_call = PyObject_Vectorcall;
    }
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
    crc_init();
    if (PyType_Ready(&RecordingType) < 0 || PyType_Ready(&RecorderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&record_module);
    if (!m) return NULL;
    Py_INCREF(&RecordingType);
    if (PyModule_AddObject(m, "Recording", (PyObject *)&RecordingType) < 0) {
        Py_DECREF(&RecordingType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
